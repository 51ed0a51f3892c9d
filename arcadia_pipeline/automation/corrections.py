"""Late corrections: the Arcadia app re-writes history (a sync catches up, a resize is
back-dated). A day is stale when the source, as it is now, no longer gives the inventory
its snapshot holds; this sensor re-meters exactly those days. The month-to-date aggregates
and quotes of the later days of their months then read older records than there are, and
missed_days_sensor refreshes them (orchestration/day_lineage.py)."""

from datetime import UTC, date, datetime, timedelta

from dagster import (
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import Connection

from arcadia_pipeline.automation.daily_job import daily_metering_job
from arcadia_pipeline.automation.status import SENSOR_STATUS
from arcadia_pipeline.inventory.changes import (
    batch_end,
    newest_recorded,
    snapshot_times,
    stale_days,
)
from arcadia_pipeline.orchestration.partitions import range_tags
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import contiguous_ranges

# Rows committed late with an earlier recorded_at, and clocks that differ between the app
# and the warehouse, are still seen: each tick re-reads this much before the cursor.
CURSOR_OVERLAP = timedelta(minutes=10)
# dagster.yaml limits this tag to one run at a time: corrections queue in the order the
# sensor asked for them instead of crowding the two run slots.
CORRECTION_TAGS = {"arcadia/trigger": "correction", "arcadia/serial": "corrections"}

# A tick reads at most this many versions past its cursor (ties on recorded_at included), so
# a first tick or a large sync is worked off over several ticks, each well inside the
# sensor's time limit.
MAX_VERSIONS_PER_TICK = 50_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    if newest_recorded(source, since) is None:
        return since, None
    end = batch_end(source, max(filter(None, [previous, since])), MAX_VERSIONS_PER_TICK)
    return since, max(filter(None, [end, previous]))


def stale_since(
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
    previous: datetime | None,
    today: date,
) -> tuple[set[date], datetime]:
    """One tick's work: the metered days of the look-back before `today` that the versions
    recorded since the cursor `previous` change, and the next cursor."""
    with warehouse.engine.connect() as connection:
        lookback = timedelta(days=settings().corrections_lookback_days)
        snapshots = snapshot_times(connection, today - lookback, today - timedelta(days=1))
    with arcadia_source.engine.connect() as connection:
        since, until = tick_window(connection, previous, snapshots)
    stale: set[date] = set()
    if until is not None:
        same_database = arcadia_source.database_url == warehouse.database_url
        with warehouse.engine.begin() as connection:
            source = None if same_database else arcadia_source.engine
            stale = stale_days(connection, source, snapshots, since, until)
    # Nothing new: everything up to `since` is in the snapshots or was compared already.
    return stale, max(filter(None, [previous, until, since]))


@sensor(job=daily_metering_job, minimum_interval_seconds=300, default_status=SENSOR_STATUS)
def late_corrections_sensor(
    context: SensorEvaluationContext,
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
):
    """Re-meter the days whose inventory versions recorded or corrected since the last tick
    change (look-back ARCADIA_CORRECTIONS_LOOKBACK_DAYS, default 35 days)."""
    previous = datetime.fromisoformat(context.cursor) if context.cursor else None
    stale, cursor = stale_since(warehouse, arcadia_source, previous, datetime.now(UTC).date())
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
    context.log.info(f"stale days: {', '.join(sorted(d.isoformat() for d in stale))}")
    return SensorResult(run_requests=requests, cursor=cursor.isoformat())
