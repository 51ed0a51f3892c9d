"""Missed days catch up: Dagster's partitioned schedule only ever targets the day before
its tick, so days missed while the daemon was down would stay unmetered. This sensor asks
for every unmetered day in a look-back window, as single-run ranges."""

import os
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetKey,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from arcadia_pipeline.automation import SENSOR_STATUS
from arcadia_pipeline.days import contiguous_ranges, range_tags
from arcadia_pipeline.partitions import metering_start_date
from arcadia_pipeline.schedules import daily_metering_job

DEFAULT_LOOKBACK_DAYS = 7
# Yesterday belongs to the 01:10 schedule; the sensor only takes it over after this grace.
SCHEDULE_GRACE = time(3, 10)
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def lookback_days() -> int:
    value = os.getenv("ARCADIA_CATCHUP_LOOKBACK_DAYS", str(DEFAULT_LOOKBACK_DAYS))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"ARCADIA_CATCHUP_LOOKBACK_DAYS must be a positive integer: {value!r}")
    return int(value)


def days_due(now: datetime, lookback: int) -> list[date]:
    """The days in the look-back that should be metered by now (within the partitions)."""
    now = now.astimezone(UTC)
    last = now.date() - timedelta(days=1)
    if now.time() < SCHEDULE_GRACE:
        last -= timedelta(days=1)  # yesterday's scheduled run may still be on its way
    first = max(now.date() - timedelta(days=lookback), date.fromisoformat(metering_start_date()))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@sensor(job=daily_metering_job, minimum_interval_seconds=600, default_status=SENSOR_STATUS)
def missed_days_sensor(context: SensorEvaluationContext):
    """Request every day of the look-back (ARCADIA_CATCHUP_LOOKBACK_DAYS, default 7) whose
    quotes were never materialised, one single run per contiguous range."""
    instance = context.instance
    if instance.get_runs_count(RunsFilter(job_name=daily_metering_job.name, statuses=IN_FLIGHT)):
        return SkipReason("a metering run is in flight; catch-up waits for it")
    materialized = instance.get_materialized_partitions(AssetKey("deployment_quotes"))
    due = days_due(datetime.now(UTC), lookback_days())
    missing = [day for day in due if day.isoformat() not in materialized]
    if not missing:
        return SkipReason("every day in the look-back is metered")
    return [
        RunRequest(
            run_key=f"catchup:{first}:{last}",
            tags={**range_tags(first, last), "arcadia/trigger": "catchup"},
        )
        for first, last in contiguous_ranges(missing)
    ]
