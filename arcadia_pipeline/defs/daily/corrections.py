"""Late corrections: the Arcadia app re-writes history (a sync catches up, a resize is
back-dated). A day is changed when the source, as it is now, no longer gives the inventory
its snapshot holds (inventory/changes.py); this sensor re-meters exactly those days. The
month-to-date aggregates and quotes of the later days of their months then read older
records than there are, and missed_days_sensor refreshes them (days/staleness.py)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster import SensorEvaluationContext, SensorResult, SkipReason
from sqlalchemy import Connection

from arcadia_pipeline import utc
from arcadia_pipeline.defs.alerts.incidents import alert_future_versions
from arcadia_pipeline.defs.daily.metering_job import DAILY_JOB
from arcadia_pipeline.inventory.changes import (
    batch_end,
    changed_days,
    future_versions,
    newest_recorded,
    snapshot_times,
)
from arcadia_pipeline.orchestration.automation import sensor_status
from arcadia_pipeline.orchestration.partitions import days_request
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import contiguous_ranges

# dagster.yaml limits this tag to one run at a time: corrections queue in the order the
# sensor asked for them instead of crowding the two run slots.
CORRECTION_TAGS = {"arcadia/trigger": "correction", "arcadia/serial": "corrections"}

# A tick reads at most this many versions past its cursor (ties on recorded_at included), so
# a first tick or a large sync is worked off over several ticks, each well inside the
# sensor's time limit.
MAX_VERSIONS_PER_TICK = 50_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tick_window(
    source: Connection,
    previous: datetime | None,
    snapshots: dict[date, datetime],
    overlap: timedelta,
) -> tuple[datetime, datetime | None]:
    """The recorded_at window (since, until] a tick compares; until is None when nothing
    was recorded in it. It re-reads `overlap` (ARCADIA_LATE_COMMIT_WINDOW_MINUTES) before
    the cursor (rows committed late with an earlier recorded_at, clocks that differ) but
    nothing before every snapshot of the look-back (those versions are in all of them), and
    stops MAX_VERSIONS_PER_TICK versions past the cursor."""
    floor = min(snapshots.values()) - overlap if snapshots else EPOCH
    since = max(previous - overlap, floor) if previous else floor
    if newest_recorded(source, since) is None:
        return since, None
    end = batch_end(source, max(filter(None, [previous, since])), MAX_VERSIONS_PER_TICK)
    return since, max(filter(None, [end, previous]))


@dataclass(frozen=True)
class Tick:
    """One tick's findings: the metered days to re-meter, the next cursor (never after
    now) and the versions recorded in the future, named."""

    changed: set[date]
    cursor: datetime
    future: list[str]


def changed_since(
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
    previous: datetime | None,
    now: datetime,
    lookback_days: int | None = None,
) -> Tick:
    """One tick's work: the metered days of the look-back before `now`'s day (default
    ARCADIA_CORRECTIONS_LOOKBACK_DAYS) that the versions recorded since the cursor
    `previous` change, and the next cursor.

    The cursor never moves past `now`: a version recorded in the future (a clock ahead) is
    compared on every tick until its time comes (it changes nothing once its day is
    re-metered), and named, instead of hiding every correction recorded before it."""
    loaded = settings()
    lookback = timedelta(days=lookback_days or loaded.corrections_lookback_days)
    overlap = timedelta(minutes=loaded.late_commit_window_minutes)
    today = now.date()
    previous = min(previous, now) if previous else None  # a cursor from before this rule
    with warehouse.engine.connect() as connection:
        snapshots = snapshot_times(connection, today - lookback, today - timedelta(days=1))
    with arcadia_source.engine.connect() as connection:
        since, until = tick_window(connection, previous, snapshots, overlap)
        future = future_versions(connection, now)
    changed: set[date] = set()
    if until is not None:
        same_database = arcadia_source.database_url == warehouse.database_url
        with warehouse.engine.begin() as connection:
            source = None if same_database else arcadia_source.engine
            changed = changed_days(connection, source, snapshots, since, until)
    # Nothing new: everything up to `since` is in the snapshots or was compared already.
    cursor = min(max(filter(None, [previous, until, since])), now)
    return Tick(changed, cursor, future)


def re_meter_corrections(
    context: SensorEvaluationContext,
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
    lookback_days: int,
):
    """Re-meter the days whose inventory versions recorded or corrected since the last tick
    change (look-back ARCADIA_CORRECTIONS_LOOKBACK_DAYS, default 35 days)."""
    previous = datetime.fromisoformat(context.cursor) if context.cursor else None
    tick = changed_since(warehouse, arcadia_source, previous, utc.now(), lookback_days)
    changed, cursor = tick.changed, tick.cursor
    if tick.future:
        context.log.warning(
            "recorded_at in the future (a clock ahead; not trusted as the cursor): "
            + "; ".join(tick.future)
        )
        alert_future_versions(warehouse, tick.future)  # once per row
    if not changed:
        return SensorResult(
            skip_reason=SkipReason("no corrections of metered days"),
            cursor=cursor.isoformat(),
        )
    requests = [
        days_request(
            first,
            last,
            run_key=f"correction:{first}:{last}:{cursor.isoformat()}",
            tags=CORRECTION_TAGS,
        )
        for first, last in contiguous_ranges(changed)
    ]
    context.log.info(f"changed days: {', '.join(sorted(d.isoformat() for d in changed))}")
    return SensorResult(run_requests=requests, cursor=cursor.isoformat())


@dg.definitions
def defs() -> dg.Definitions:
    loaded = settings()

    @dg.sensor(
        name="late_corrections_sensor",
        job_name=DAILY_JOB,
        minimum_interval_seconds=300,
        default_status=sensor_status(loaded),
        description=re_meter_corrections.__doc__,
    )
    def late_corrections_sensor(
        context: SensorEvaluationContext,
        warehouse: WarehouseResource,
        arcadia_source: ArcadiaSourceResource,
    ):
        return re_meter_corrections(
            context, warehouse, arcadia_source, loaded.corrections_lookback_days
        )

    return dg.Definitions(sensors=[late_corrections_sensor])
