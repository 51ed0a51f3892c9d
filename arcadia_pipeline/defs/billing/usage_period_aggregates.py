"""usage_period_aggregates: what the quote engine reads, and its check (the aggregates equal
the records)."""

from functools import partial

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.billing.aggregates import AggregatedDay, replace_aggregates_day
from arcadia_pipeline.flow import USAGE_PERIOD_AGGREGATES
from arcadia_pipeline.orchestration.assets import daily_step_definitions
from arcadia_pipeline.orchestration.day_runs import replace_days
from arcadia_pipeline.orchestration.metadata import per_kind
from arcadia_pipeline.orchestration.resources import WarehouseResource


def _aggregated_metadata(aggregated: AggregatedDay) -> dict:
    return {
        "deployments": MetadataValue.int(aggregated.deployments),
        **per_kind("period_qty", aggregated.qty),
    }


def aggregate_usage(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Each day is the day before's totals plus its own day of records (the day before is
    carried only while current: days.locks.is_current), so a day costs the same on the 31st
    as on the 1st; the check re-sums the raw records to prove it."""
    # Each day reads its month's usage days in its own transaction, under their locks.
    replace = partial(replace_aggregates_day, step=USAGE_PERIOD_AGGREGATES)
    replace_days(context, warehouse, USAGE_PERIOD_AGGREGATES, replace, _aggregated_metadata)
    return MaterializeResult()


@dg.definitions
def defs() -> dg.Definitions:
    return daily_step_definitions(USAGE_PERIOD_AGGREGATES, aggregate_usage, group_name="billing")
