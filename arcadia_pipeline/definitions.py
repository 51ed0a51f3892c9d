"""Everything Dagster loads: `dagster dev -m arcadia_pipeline.definitions` (or workspace.yaml)."""

import os

from dagster import Definitions, EnvVar, in_process_executor

from arcadia_pipeline.billing.assets import deployment_quotes, usage_period_aggregates
from arcadia_pipeline.billing.checks import aggregates_equal_usage_records, quote_totals_add_up
from arcadia_pipeline.inventory.assets import resource_inventory
from arcadia_pipeline.metering.assets import usage_records
from arcadia_pipeline.metering.checks import (
    usage_records_complete,
    usage_records_month_closure,
    usage_records_within_bounds,
)
from arcadia_pipeline.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.retention.jobs import retention_job, retention_schedule
from arcadia_pipeline.schedules import daily_metering_job, daily_metering_schedule
from arcadia_pipeline.sensors.catchup import missed_days_sensor
from arcadia_pipeline.sensors.corrections import late_corrections_sensor

# The source defaults to the warehouse's own database.
_SOURCE_URL_VAR = (
    "ARCADIA_SOURCE_DATABASE_URL"
    if os.getenv("ARCADIA_SOURCE_DATABASE_URL")
    else "ARCADIA_DATABASE_URL"
)

defs = Definitions(
    assets=[resource_inventory, usage_records, usage_period_aggregates, deployment_quotes],
    asset_checks=[
        usage_records_complete,
        usage_records_within_bounds,
        usage_records_month_closure,
        aggregates_equal_usage_records,
        quote_totals_add_up,
    ],
    jobs=[daily_metering_job, retention_job],
    schedules=[daily_metering_schedule, retention_schedule],
    sensors=[missed_days_sensor, late_corrections_sensor],
    # Steps run strictly one after another (each check blocks the next asset), so a process
    # per step would only add seconds of imports on a 2-core machine.
    executor=in_process_executor,
    resources={
        "warehouse": WarehouseResource(database_url=EnvVar("ARCADIA_DATABASE_URL")),
        "arcadia_source": ArcadiaSourceResource(database_url=EnvVar(_SOURCE_URL_VAR)),
    },
)
