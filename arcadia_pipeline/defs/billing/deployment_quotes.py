"""deployment_quotes: the month-to-date quote of every deployment, and its check (the quotes
add up)."""

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.billing.quotes import QuotedDay, replace_quotes_day
from arcadia_pipeline.flow import DEPLOYMENT_QUOTES
from arcadia_pipeline.orchestration.assets import daily_step_definitions
from arcadia_pipeline.orchestration.day_runs import replace_days
from arcadia_pipeline.orchestration.metadata import markdown_table
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.pricing.rules import money_text


def quoted_metadata(quoted: QuotedDay) -> dict:
    return {
        "quotes": MetadataValue.int(quoted.quotes),
        "base_usd": MetadataValue.float(float(quoted.base_usd)),
        "overage_usd": MetadataValue.float(float(quoted.overage_usd)),
        "minimum_true_up_usd": MetadataValue.float(float(quoted.minimum_true_up_usd)),
        "total_usd": MetadataValue.float(float(quoted.total_usd)),
        "spend_thresholds_reached": MetadataValue.int(quoted.spend_thresholds_reached),
        "top_quotes": markdown_table(
            ["deployment", "plan", "base USD", "overage USD", "true-up USD", "total USD"],
            [
                [r["deployment_id"], r["plan_code"], money_text(r["base_usd"]),
                 money_text(r["overage_usd"]), money_text(r["minimum_true_up_usd"]),
                 money_text(r["total_usd"])]
                for r in quoted.top
            ],
            right={2, 3, 4, 5},
        ),
    }  # fmt: skip


def quote_deployments(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Each day's quotes from its aggregates and the plans of its inventory, on the catalog's
    terms (pricing/lines.py)."""
    replace_days(context, warehouse, DEPLOYMENT_QUOTES, replace_quotes_day, quoted_metadata)
    return MaterializeResult()


@dg.definitions
def defs() -> dg.Definitions:
    return daily_step_definitions(DEPLOYMENT_QUOTES, quote_deployments, group_name="billing")
