"""Everything Dagster loads (`dg dev`, `dagster dev -w workspace.yaml`): read this first."""

from dagster import Definitions, EnvVar, in_process_executor

from arcadia_pipeline.automation.catchup import missed_days_sensor
from arcadia_pipeline.automation.corrections import late_corrections_sensor
from arcadia_pipeline.automation.daily_job import (
    METERING_ASSETS,
    daily_metering_job,
    daily_metering_schedule,
)
from arcadia_pipeline.billing.checks import aggregates_equal_usage_records, quote_totals_add_up
from arcadia_pipeline.metering.checks import (
    usage_records_complete,
    usage_records_month_closure,
    usage_records_within_bounds,
)
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.retention.jobs import retention_job, retention_schedule
from arcadia_pipeline.settings import WAREHOUSE_URL_VAR, source_url_var
from arcadia_pipeline.statements.assets import monthly_usage_statements
from arcadia_pipeline.statements.automation import (
    month_close_schedule,
    monthly_statements_job,
    statement_months_sensor,
)
from arcadia_pipeline.statements.checks import statements_equal_the_month_priced_now

defs = Definitions(
    assets=[*METERING_ASSETS, monthly_usage_statements],
    asset_checks=[
        usage_records_complete,
        usage_records_within_bounds,
        usage_records_month_closure,
        aggregates_equal_usage_records,
        quote_totals_add_up,
        statements_equal_the_month_priced_now,
    ],
    jobs=[daily_metering_job, monthly_statements_job, retention_job],
    schedules=[daily_metering_schedule, month_close_schedule, retention_schedule],
    sensors=[missed_days_sensor, late_corrections_sensor, statement_months_sensor],
    # Steps run strictly one after another (each check blocks the next asset), so a process
    # per step would only add seconds of imports on a 2-core machine.
    executor=in_process_executor,
    resources={
        "warehouse": WarehouseResource(database_url=EnvVar(WAREHOUSE_URL_VAR)),
        "arcadia_source": ArcadiaSourceResource(database_url=EnvVar(source_url_var())),
    },
)
