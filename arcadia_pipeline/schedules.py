"""The nightly job and its schedule: yesterday's UTC partition at 01:10 UTC."""

from dagster import AssetKey, AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from arcadia_pipeline.automation import SCHEDULE_STATUS
from arcadia_pipeline.partitions import daily_partitions

METERING_ASSET_KEYS = [
    AssetKey("resource_inventory"),
    AssetKey("usage_records"),
    AssetKey("usage_period_aggregates"),
    AssetKey("deployment_quotes"),
]
METERING_ASSETS = AssetSelection.assets(*METERING_ASSET_KEYS)

daily_metering_job = define_asset_job(
    "daily_metering_job",
    selection=METERING_ASSETS,
    partitions_def=daily_partitions,
    description="Meter one UTC day (or a range): inventory -> usage -> aggregates -> quotes.",
)

# The partitions end at yesterday (end_offset=0), so the tick at 01:10 on day D targets
# D-1, which is fully over.
daily_metering_schedule = build_schedule_from_partitioned_job(
    daily_metering_job,
    name="daily_metering_schedule",
    hour_of_day=1,
    minute_of_hour=10,
    default_status=SCHEDULE_STATUS,
)
