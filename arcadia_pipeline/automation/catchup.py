"""Missed days catch up: Dagster's partitioned schedule only ever targets the day before
its tick, so days missed while the daemon was down would stay unmetered. This sensor asks
for every day in a look-back window that is not fully metered (never run, or its last run
failed part-way), as single-run ranges."""

from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetPartitionStatus,
    DagsterInstance,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from arcadia_pipeline.automation.daily_job import METERING_ASSET_KEYS, daily_metering_job
from arcadia_pipeline.automation.status import SENSOR_STATUS
from arcadia_pipeline.orchestration.partitions import daily_partitions, range_tags
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import contiguous_ranges, iter_days

# A range whose run failed is asked for again in the next such period: not on every tick
# (bad data fails the same way; the assets already retry transient errors) nor never (a
# run key Dagster has seen is not launched again).
RETRY_EVERY = timedelta(hours=6)
# Yesterday belongs to the 01:10 schedule; the sensor only takes it over after this grace.
SCHEDULE_GRACE = time(3, 10)


def utc_now() -> datetime:
    """The sensor's one reading of the clock (tests hold it still)."""
    return datetime.now(UTC)


def days_due(now: datetime, lookback: int) -> list[date]:
    """The days in the look-back that should be metered by now (within the partitions)."""
    now = now.astimezone(UTC)
    last = now.date() - timedelta(days=1)
    if now.time() < SCHEDULE_GRACE:
        last -= timedelta(days=1)  # yesterday's scheduled run may still be on its way
    first = max(now.date() - timedelta(days=lookback), settings().metering_start_date)
    return list(iter_days(first, last))


def days_to_meter(instance: DagsterInstance, due: list[date]) -> list[date]:
    """The due days some asset has not materialised since its last run on them (never run,
    or failed), leaving out the days a queued or running run already covers."""
    keys = [day.isoformat() for day in due]
    statuses = [
        instance.get_status_by_partition(asset, keys, daily_partitions) or {}
        for asset in METERING_ASSET_KEYS
    ]
    missing = []
    for day, key in zip(due, keys, strict=True):
        of_day = [status.get(key) for status in statuses]
        if AssetPartitionStatus.IN_PROGRESS in of_day:
            continue
        if any(s != AssetPartitionStatus.MATERIALIZED for s in of_day):
            missing.append(day)
    return missing


@sensor(job=daily_metering_job, minimum_interval_seconds=600, default_status=SENSOR_STATUS)
def missed_days_sensor(context: SensorEvaluationContext):
    """Request every day of the look-back (ARCADIA_CATCHUP_LOOKBACK_DAYS, default 7) not
    fully metered, one single run per contiguous range."""
    now = utc_now()
    missing = days_to_meter(context.instance, days_due(now, settings().catchup_lookback_days))
    if not missing:
        return SkipReason("every day in the look-back is metered or being metered")
    period = RETRY_EVERY.total_seconds()
    attempt = datetime.fromtimestamp(now.timestamp() // period * period, UTC)
    return [
        RunRequest(
            run_key=f"catchup:{first}:{last}:{attempt:%Y-%m-%dT%H}",
            tags={**range_tags(first, last), "arcadia/trigger": "catchup"},
        )
        for first, last in contiguous_ranges(missing)
    ]
