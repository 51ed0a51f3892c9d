"""Late corrections: the Arcadia app re-writes history (a sync catches up, a resize is
back-dated). A day is stale when the source, as it is now, no longer gives the inventory
its snapshot holds; this sensor re-meters exactly those days, and refreshes the
month-to-date aggregates and quotes of the later metered days of the same months."""

import os
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetKey,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import Column, Connection, Engine, MetaData, Table, Text, text

from arcadia_pipeline.automation import SENSOR_STATUS
from arcadia_pipeline.days import contiguous_ranges, day_start, range_tags
from arcadia_pipeline.db.staging import stage_query, version_columns
from arcadia_pipeline.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.schedules import daily_metering_job

DEFAULT_LOOKBACK_DAYS = 35
# Rows committed late with an earlier recorded_at, and clocks that differ between the app
# and the warehouse, are still seen: each tick re-reads this much before the cursor.
CURSOR_OVERLAP = timedelta(minutes=10)
BILLING_ASSETS = [AssetKey("usage_period_aggregates"), AssetKey("deployment_quotes")]
# dagster.yaml limits this tag to one run at a time, so the billing refresh of the later
# days runs after the re-metering it depends on (the queue starts runs in creation order).
CORRECTION_TAGS = {"arcadia/trigger": "correction", "arcadia/serial": "corrections"}

# A tick reads at most this many versions past its cursor (ties on recorded_at included), so
# a first tick or a large sync is worked off over several ticks, each well inside the
# sensor's time limit.
MAX_VERSIONS_PER_TICK = 50_000
BATCH_END_SQL = text(
    "SELECT max(recorded_at) FROM (SELECT recorded_at FROM arcadia.resource_versions "
    "WHERE recorded_at > :after ORDER BY recorded_at LIMIT :n) AS batch"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The resources with a version recorded in the tick's (since, until], and all their versions
# that overlap the look-back: the source side of the comparison.
CHANGED_RESOURCES_SQL = (
    "SELECT DISTINCT resource_id FROM arcadia.resource_versions "
    "WHERE recorded_at > %(since)s AND recorded_at <= %(until)s"
)
CHANGED_VERSIONS_SQL = f"""
SELECT resource_id, deployment_id, inventory_kind, size_gb, status, valid_from, valid_to
FROM arcadia.resource_versions
WHERE resource_id IN ({CHANGED_RESOURCES_SQL})
  AND valid_from < %(window_end)s
  AND (valid_to IS NULL OR valid_to > %(window_start)s)
"""
NEWEST_RECORDED_SQL = text(
    "SELECT max(recorded_at) FROM arcadia.resource_versions WHERE recorded_at > :since"
)
_staging = MetaData()
changed_resources = Table(
    "changed_resources", _staging, Column("resource_id", Text), prefixes=["TEMPORARY"]
)
changed_versions = Table("changed_versions", _staging, *version_columns(), prefixes=["TEMPORARY"])
# Metered days of the look-back where the changed resources, clipped to the day, differ
# from the day's snapshot of them (in either direction: added, removed or altered).
STALE_DAYS_SQL = text(
    """
    WITH days AS (
      SELECT day, (day::timestamp AT TIME ZONE 'UTC') AS d0,
             (day::timestamp AT TIME ZONE 'UTC') + interval '24 hours' AS d1
      FROM metering.inventory_snapshots WHERE day BETWEEN :first AND :last
    ),
    source_now AS (
      SELECT d.day, v.resource_id, v.deployment_id, v.inventory_kind, v.size_gb, v.status,
             greatest(v.valid_from, d.d0) AS starts_at,
             least(coalesce(v.valid_to, d.d1), d.d1) AS ends_at
      FROM changed_versions v
      JOIN days d ON v.valid_from < d.d1 AND (v.valid_to IS NULL OR v.valid_to > d.d0)
      -- the two source reads are separate statements: compare the same resources
      WHERE v.resource_id IN (SELECT resource_id FROM changed_resources)
    ),
    snapshot AS (
      SELECT i.day, i.resource_id, i.deployment_id, i.inventory_kind, i.size_gb, i.status,
             i.starts_at, i.ends_at
      FROM metering.resource_inventory i
      JOIN days d ON d.day = i.day
      WHERE i.resource_id IN (SELECT resource_id FROM changed_resources)
    )
    SELECT day FROM (SELECT * FROM source_now EXCEPT ALL SELECT * FROM snapshot) added
    UNION
    SELECT day FROM (SELECT * FROM snapshot EXCEPT ALL SELECT * FROM source_now) removed
    """
)


def lookback_days() -> int:
    value = os.getenv("ARCADIA_CORRECTIONS_LOOKBACK_DAYS", str(DEFAULT_LOOKBACK_DAYS))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"ARCADIA_CORRECTIONS_LOOKBACK_DAYS must be a positive integer: {value!r}")
    return int(value)


def snapshot_times(warehouse: Connection, first: date, last: date) -> dict[date, datetime]:
    rows = warehouse.execute(
        text(
            "SELECT day, taken_at FROM metering.inventory_snapshots "
            "WHERE day BETWEEN :first AND :last"
        ),
        {"first": first, "last": last},
    ).all()
    return {day: taken_at for day, taken_at in rows}


def stale_days(
    warehouse: Connection,
    source: Engine | None,
    snapshots: dict[date, datetime],
    since: datetime,
    until: datetime,
) -> set[date]:
    """Metered days (those of `snapshots`) whose inventory the versions recorded in
    (since, until] change (caller holds the transaction). `source=None`: the source
    relations are in the warehouse database."""
    if not snapshots:
        return set()
    first, last = min(snapshots), max(snapshots)
    params = {
        "since": since,
        "until": until,
        "window_start": day_start(first),
        "window_end": day_start(last + timedelta(days=1)),
    }
    for table in (changed_resources, changed_versions):
        table.drop(warehouse, checkfirst=True)
        table.create(warehouse)
    stage_query(warehouse, source, CHANGED_RESOURCES_SQL, params, "changed_resources")
    stage_query(warehouse, source, CHANGED_VERSIONS_SQL, params, "changed_versions")
    warehouse.exec_driver_sql("ANALYZE changed_resources")
    days = warehouse.execute(STALE_DAYS_SQL, {"first": first, "last": last}).scalars()
    return set(days)


def tick_window(
    source: Connection, previous: datetime | None, snapshots: dict[date, datetime]
) -> tuple[datetime, datetime | None]:
    """The recorded_at window (since, until] a tick compares; until is None when nothing
    was recorded in it. It re-reads CURSOR_OVERLAP before the cursor (rows committed late
    with an earlier recorded_at, clocks that differ) but nothing before every snapshot of
    the look-back (those versions are in all of them), and stops MAX_VERSIONS_PER_TICK
    versions past the cursor."""
    floor = min(snapshots.values()) - CURSOR_OVERLAP if snapshots else EPOCH
    since = max(previous - CURSOR_OVERLAP, floor) if previous else floor
    if source.execute(NEWEST_RECORDED_SQL, {"since": since}).scalar_one() is None:
        return since, None
    batch_end = source.execute(
        BATCH_END_SQL, {"after": max(filter(None, [previous, since])), "n": MAX_VERSIONS_PER_TICK}
    ).scalar_one()
    return since, max(filter(None, [batch_end, previous]))


def billing_tail(stale: set[date], metered: set[date]) -> set[date]:
    """Later metered days of each stale day's month: their month-to-date totals include it."""
    tail: set[date] = set()
    for day in stale:
        tail |= {d for d in metered if d > day and d.month == day.month and d.year == day.year}
    return tail - stale


@sensor(job=daily_metering_job, minimum_interval_seconds=300, default_status=SENSOR_STATUS)
def late_corrections_sensor(
    context: SensorEvaluationContext,
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
):
    """Re-meter the days whose inventory versions recorded or corrected since the last tick
    change (look-back ARCADIA_CORRECTIONS_LOOKBACK_DAYS, default 35 days)."""
    previous = datetime.fromisoformat(context.cursor) if context.cursor else None
    today = datetime.now(UTC).date()
    with warehouse.engine.connect() as connection:
        snapshots = snapshot_times(
            connection, today - timedelta(days=lookback_days()), today - timedelta(days=1)
        )
    with arcadia_source.engine.connect() as connection:
        since, until = tick_window(connection, previous, snapshots)
    stale: set[date] = set()
    if until is not None:
        same_database = arcadia_source.database_url == warehouse.database_url
        with warehouse.engine.begin() as connection:
            source = None if same_database else arcadia_source.engine
            stale = stale_days(connection, source, snapshots, since, until)
    # Nothing new: everything up to `since` is in the snapshots or was compared already.
    cursor = max(filter(None, [previous, until, since]))
    if not stale:
        return SensorResult(
            skip_reason=SkipReason("no corrections of metered days"),
            cursor=cursor.isoformat(),
        )
    requests = [
        RunRequest(
            run_key=f"correction:{first}:{last}:{cursor.isoformat()}",
            tags={**range_tags(first, last), **CORRECTION_TAGS},
        )
        for first, last in contiguous_ranges(stale)
    ]
    requests += [
        RunRequest(
            run_key=f"correction-billing:{first}:{last}:{cursor.isoformat()}",
            asset_selection=BILLING_ASSETS,
            tags={**range_tags(first, last), **CORRECTION_TAGS},
        )
        for first, last in contiguous_ranges(billing_tail(stale, set(snapshots)))
    ]
    context.log.info(f"stale days: {', '.join(sorted(d.isoformat() for d in stale))}")
    return SensorResult(run_requests=requests, cursor=cursor.isoformat())
