"""Everything Dagster loads: `dagster dev -m arcadia_pipeline.definitions` (or workspace.yaml)."""

import os

from dagster import Definitions, EnvVar

from arcadia_pipeline.billing.assets import deployment_quotes, usage_period_aggregates
from arcadia_pipeline.inventory.assets import resource_inventory
from arcadia_pipeline.metering.assets import usage_records
from arcadia_pipeline.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.schedules import daily_metering_job, daily_metering_schedule

# The source defaults to the warehouse's own database.
_SOURCE_URL_VAR = (
    "ARCADIA_SOURCE_DATABASE_URL"
    if os.getenv("ARCADIA_SOURCE_DATABASE_URL")
    else "ARCADIA_DATABASE_URL"
)

defs = Definitions(
    assets=[resource_inventory, usage_records, usage_period_aggregates, deployment_quotes],
    jobs=[daily_metering_job],
    schedules=[daily_metering_schedule],
    resources={
        "warehouse": WarehouseResource(database_url=EnvVar("ARCADIA_DATABASE_URL")),
        "arcadia_source": ArcadiaSourceResource(database_url=EnvVar(_SOURCE_URL_VAR)),
    },
)
