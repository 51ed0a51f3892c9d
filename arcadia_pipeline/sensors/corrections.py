"""Late corrections: the Arcadia app re-writes history (a sync catches up, a resize is
back-dated). Versions recorded after a day's inventory snapshot was taken make that day's
records stale; this sensor re-meters exactly those days, and refreshes the month-to-date
aggregates and quotes of the later metered days of the same months."""

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
from sqlalchemy import Connection, Engine, text

from arcadia_pipeline.automation import SENSOR_STATUS
from arcadia_pipeline.days import contiguous_ranges, range_tags
from arcadia_pipeline.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.schedules import daily_metering_job

DEFAULT_LOOKBACK_DAYS = 35
# Rows committed late with an earlier recorded_at are still seen: each tick re-reads this
# much before the cursor (days already re-metered drop out by their snapshot time).
CURSOR_OVERLAP = timedelta(minutes=10)
BILLING_ASSETS = [AssetKey("usage_period_aggregates"), AssetKey("deployment_quotes")]
# dagster.yaml limits this tag to one run at a time, so the billing refresh of the later
# days runs after the re-metering it depends on (the queue starts runs in creation order).
CORRECTION_TAGS = {"arcadia/trigger": "correction", "arcadia/serial": "corrections"}

# Days (of those metered, with their snapshot times passed in) that a version recorded
# after the day's snapshot overlaps; and the newest recorded_at, for the cursor.
STALE_DAYS_SQL = text(
    """
    WITH snapshots AS (
      SELECT day, taken_at, (day::timestamp AT TIME ZONE 'UTC') AS day_start
      FROM unnest(CAST(:days AS date[]), CAST(:taken AS timestamptz[])) AS s(day, taken_at)
    )
    SELECT DISTINCT s.day
    FROM arcadia.resource_versions v
    JOIN snapshots s
      ON v.valid_from < s.day_start + interval '1 day'
     AND (v.valid_to IS NULL OR v.valid_to > s.day_start)
     AND v.recorded_at > s.taken_at
    WHERE v.recorded_at > :since
    """
)
NEWEST_RECORDED_SQL = text(
    "SELECT max(recorded_at) FROM arcadia.resource_versions WHERE recorded_at > :since"
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
    source: Engine, snapshots: dict[date, datetime], since: datetime
) -> tuple[set[date], datetime | None]:
    """Metered days touched by a version recorded after their snapshot, and the newest
    recorded_at after `since` (None when nothing new)."""
    with source.connect() as connection:
        newest = connection.execute(NEWEST_RECORDED_SQL, {"since": since}).scalar_one()
        if newest is None or not snapshots:
            return set(), newest
        days = connection.execute(
            STALE_DAYS_SQL,
            {"days": list(snapshots), "taken": list(snapshots.values()), "since": since},
        ).scalars()
        return set(days), newest


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
    """Re-meter days whose source versions were recorded or corrected after they were
    metered (look-back ARCADIA_CORRECTIONS_LOOKBACK_DAYS, default 35 days)."""
    previous = datetime.fromisoformat(context.cursor) if context.cursor else None
    since = previous - CURSOR_OVERLAP if previous else datetime(1970, 1, 1, tzinfo=UTC)
    today = datetime.now(UTC).date()
    with warehouse.engine.connect() as connection:
        snapshots = snapshot_times(
            connection, today - timedelta(days=lookback_days()), today - timedelta(days=1)
        )
    stale, newest = stale_days(arcadia_source.engine, snapshots, since)
    cursor = max(filter(None, [previous, newest]), default=None)
    if not stale:
        return SensorResult(
            skip_reason=SkipReason("no corrections of metered days"),
            cursor=cursor.isoformat() if cursor else None,
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
