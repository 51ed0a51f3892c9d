"""projected_quotes: each deployment's quote projected to its month's end, and its checks
(the projections add up, and equal the quotes on a month's last day)."""

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult

from arcadia_pipeline.billing.projection import replace_projection_day
from arcadia_pipeline.defs.billing.deployment_quotes import quoted_metadata
from arcadia_pipeline.flow import PROJECTED_QUOTES
from arcadia_pipeline.orchestration.assets import daily_step_definitions
from arcadia_pipeline.orchestration.day_runs import replace_days
from arcadia_pipeline.orchestration.resources import WarehouseResource


def project_quotes(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Each day's quotes projected to the month's end: the day's aggregates plus what the
    resource versions open at the day's end accrue to the month's end, priced as the quotes
    are (billing/projection.py); spend thresholds a projection reaches are recorded."""
    replace_days(context, warehouse, PROJECTED_QUOTES, replace_projection_day, quoted_metadata)
    return MaterializeResult()


@dg.definitions
def defs() -> dg.Definitions:
    return daily_step_definitions(PROJECTED_QUOTES, project_quotes, group_name="billing")
