"""The daily metering job over the daily flow's assets, and its schedule: yesterday at 01:10
UTC, the run tagged with its day."""

from datetime import UTC, date, timedelta

import dagster as dg
from dagster import RunRequest, ScheduleEvaluationContext, SkipReason

from arcadia_pipeline import utc
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.assets import job_selection
from arcadia_pipeline.orchestration.automation import schedule_status
from arcadia_pipeline.orchestration.partitions import daily_partitions, days_request
from arcadia_pipeline.settings import settings

DAILY_JOB = "daily_metering_job"


def meter_yesterday(context: ScheduleEvaluationContext, first_day: date) -> RunRequest | SkipReason:
    """Yesterday's UTC day at 01:10 UTC (fully over by then), one run per day (its run key),
    tagged with the day (arcadia/days); nothing before the first partition, `first_day`."""
    at = context.scheduled_execution_time or utc.now()
    day = at.astimezone(UTC).date() - timedelta(days=1)
    if day < first_day:
        return SkipReason(f"{day.isoformat()} is before the first partition, {first_day}")
    key = day.isoformat()
    return days_request(day, day, run_key=key)


@dg.definitions
def defs() -> dg.Definitions:
    loaded = settings()
    job = dg.define_asset_job(
        DAILY_JOB,
        selection=job_selection({s.asset: tuple(c.name for c in s.checks) for s in DAILY_FLOW}),
        partitions_def=daily_partitions(loaded),
        description="Meter one UTC day (or a range): "
        + " -> ".join(step.asset for step in DAILY_FLOW),
    )

    # Dagster's build_schedule_from_partitioned_job cannot tag a run with its day: this is
    # the same tick (01:10 UTC, yesterday's partition, run key the day) with the tag.
    @dg.schedule(
        name="daily_metering_schedule",
        job=job,
        cron_schedule="10 1 * * *",
        execution_timezone="UTC",
        default_status=schedule_status(loaded),
        description=meter_yesterday.__doc__,
    )
    def daily_metering_schedule(context: ScheduleEvaluationContext):
        return meter_yesterday(context, loaded.metering_start_date)

    return dg.Definitions(jobs=[job], schedules=[daily_metering_schedule])
