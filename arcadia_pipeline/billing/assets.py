"""usage_period_aggregates and deployment_quotes: what the quote engine and finance read."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.billing.sql import (
    AggregatedDay,
    QuotedDay,
    replace_aggregates_day,
    replace_quotes_day,
    stage_daily_usage,
)
from arcadia_pipeline.db import schema
from arcadia_pipeline.metering.assets import usage_records
from arcadia_pipeline.orchestration.day_lineage import lock_reads
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
    as of each day: what `usage_for_period(deployment, month start, day)` returns."""
    days = days_in_window(context.partition_time_window)
    asset = schema.usage_period_aggregates
    with working_on(context, days), warehouse.engine.connect() as connection:
        with connection.begin():  # the month-to-date records, fixed while they are staged
            read_at = lock_reads(connection, asset.name, days)
            stage_daily_usage(connection, days[0], days[-1])
        replace_each_day(
            context, connection, [asset], days, replace_aggregates_day, _aggregated_metadata,
            read_at=read_at,
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
