"""The daily metering job over the daily flow's assets, and its schedule: yesterday at 01:10
UTC."""

import dagster as dg

from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.assets import job_selection
from arcadia_pipeline.orchestration.automation import schedule_status
from arcadia_pipeline.orchestration.partitions import daily_partitions
from arcadia_pipeline.settings import settings

DAILY_JOB = "daily_metering_job"


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
    # The partitions end at yesterday (end_offset=0), so the tick at 01:10 on day D targets
    # D-1, which is fully over.
    schedule = dg.build_schedule_from_partitioned_job(
        job,
        name="daily_metering_schedule",
        hour_of_day=1,
        minute_of_hour=10,
        default_status=schedule_status(loaded),
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])
