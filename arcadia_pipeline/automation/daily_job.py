"""The daily metering job over the four assets, and its schedule: yesterday at 01:10 UTC."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from arcadia_pipeline.automation.status import SCHEDULE_STATUS
from arcadia_pipeline.billing.assets import deployment_quotes, usage_period_aggregates
from arcadia_pipeline.inventory.assets import resource_inventory
from arcadia_pipeline.metering.assets import usage_records
from arcadia_pipeline.orchestration.partitions import daily_partitions

# The daily assets in the order they run: the one list the job, the catch-up sensor, the
# tests and the benchmarks select.
METERING_ASSETS = (resource_inventory, usage_records, usage_period_aggregates, deployment_quotes)
METERING_ASSET_KEYS = tuple(asset.key for asset in METERING_ASSETS)

daily_metering_job = define_asset_job(
    "daily_metering_job",
    selection=AssetSelection.assets(*METERING_ASSETS),
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
