"""usage_period_aggregates and deployment_quotes: what the quote engine and finance read."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.billing.sql import (
    AggregatedDay,
    QuotedDay,
    replace_aggregates_day,
    replace_quotes_day,
)
from arcadia_pipeline.db import schema
from arcadia_pipeline.metering.assets import usage_records
from arcadia_pipeline.orchestration.day_runs import replace_each_day, working_on
from arcadia_pipeline.orchestration.metadata import markdown_table, per_kind
from arcadia_pipeline.orchestration.partitions import daily_asset, days_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource


def _aggregated_metadata(aggregated: AggregatedDay) -> dict:
    return {
        "deployments": MetadataValue.int(aggregated.deployments),
        **per_kind("period_qty", aggregated.qty),
    }


def _quoted_metadata(quoted: QuotedDay) -> dict:
    return {
        "quotes": MetadataValue.int(quoted.quotes),
        "base_usd": MetadataValue.float(float(quoted.base_usd)),
        "overage_usd": MetadataValue.float(float(quoted.overage_usd)),
        "total_usd": MetadataValue.float(float(quoted.total_usd)),
        "top_quotes": markdown_table(
            ["deployment", "plan", "base USD", "overage USD", "total USD"],
            [
                [r["deployment_id"], r["plan_code"], r["base_usd"], r["overage_usd"],
                 r["total_usd"]]
                for r in quoted.top
            ],
        ),
    }  # fmt: skip


@daily_asset(deps=[usage_records], group_name="billing")
def usage_period_aggregates(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Billing-period (UTC calendar month) to date SUM(qty) per (deployment, billing kind)
    as of each day: what `usage_for_period(deployment, month start, day)` returns.

    Each day is the day before's totals plus its own day of records (the day before is
    carried only while current: day_lineage.is_current), so a day costs the same on the
    31st as on the 1st; the check re-sums the raw records to prove it."""
    days = days_in_window(context.partition_time_window)
    with working_on(context, days), warehouse.engine.connect() as connection:
        # Each day reads its month's usage days in its own transaction, under their locks.
        replace_each_day(
            context, connection, [schema.usage_period_aggregates], days, replace_aggregates_day,
            _aggregated_metadata,
        )  # fmt: skip
    return MaterializeResult(metadata={"days_in_run": len(days)})


@daily_asset(deps=[usage_period_aggregates], group_name="billing")
def deployment_quotes(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Month-to-date quote per deployment as of each day: plan base (not prorated) plus a
    line per billing kind, overage rounded half-up to the cent (billing/pricing.py)."""
    days = days_in_window(context.partition_time_window)
    with working_on(context, days), warehouse.engine.connect() as connection:
        replace_each_day(
            context,
            connection,
            [schema.deployment_quotes, schema.deployment_quote_lines],
            days,
            replace_quotes_day,
            _quoted_metadata,
        )
    return MaterializeResult(metadata={"days_in_run": len(days)})
