"""monthly_usage_statements: one final usage statement per deployment and billing month, and
every later change as an explicit adjustment (what the quote engine and finance invoice),
with its check: what a month has billed equals the month priced now, to the cent."""

import warnings

import dagster as dg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
)

from arcadia_pipeline import utc
from arcadia_pipeline.days.steps import Problems
from arcadia_pipeline.db import schema
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.defs.statements.tables import (
    all_adjustments,
    billing_months_table,
    largest_statements,
)
from arcadia_pipeline.flow import STATEMENT_READS
from arcadia_pipeline.orchestration.assets import monthly_asset, monthly_check
from arcadia_pipeline.orchestration.checks import failing_ids
from arcadia_pipeline.orchestration.failures import failures_named
from arcadia_pipeline.orchestration.partitions import months_in_window, run_months
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.run_launcher import tag_worker
from arcadia_pipeline.retention.expiry import removed_by_retention
from arcadia_pipeline.settings import settings
from arcadia_pipeline.statements import closing
from arcadia_pipeline.statements.balance import month_mismatches
from arcadia_pipeline.statements.ledger import MonthSummary
from arcadia_pipeline.statements.month import (
    ASSET,
    CHECK,
    hold_month,
    repriced_at,
    written_since_priced,
)
from arcadia_pipeline.statements.overview import BillingMonth, billing_months
from arcadia_pipeline.utc import month_text


def _summary_metadata(summary: MonthSummary, months: list[BillingMonth]) -> dict:
    """The month's figures (plotted across months; `closed` 1 once closed), its largest
    statements, every adjustment, and every billing month's standing as of this run."""
    return {
        "status": MetadataValue.text(summary.status),
        "closed": MetadataValue.int(int(summary.status == "closed")),
        "statements": MetadataValue.int(summary.statements),
        "base_usd": MetadataValue.float(float(summary.base_usd)),
        "total_usd": MetadataValue.float(float(summary.total_usd)),
        "adjustments": MetadataValue.int(summary.adjustments),
        "adjustments_usd": MetadataValue.float(float(summary.adjustments_usd)),
        "adjustments_added": MetadataValue.int(summary.adjustments_added),
        "total_with_adjustments_usd": MetadataValue.float(
            float(summary.total_usd + summary.adjustments_usd)
        ),
        "largest_statements": largest_statements(summary),
        "all_adjustments": all_adjustments(summary),
        "billing_months": billing_months_table(months),
    }


def price_months(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Per deployment and UTC billing month: the plan, usage per billing kind over the whole
    month, included and overage quantities, unit prices, line amounts (the quote rule), base
    fee and total.

    Before the month's end plus ARCADIA_CLOSE_GRACE_DAYS the statements are drafts, replaced
    on every run. The first run after it closes them, once every day of the month is metered
    with its checks passing (else it fails naming the days, writing nothing); closed
    statements never change. A closed month run again is re-priced from its current usage
    and each line that changed gets one adjustment (a negative amount is a credit).
    """
    now = utc.now()
    months = run_months(context)
    with warehouse.engine.connect() as connection:
        tag_worker(context)
        for month in months:
            with failures_named(f"{ASSET} failed on {month_text(month)}"), connection.begin():
                summary = closing.price_and_book(connection, month, now, context.run_id)
            context.log.info(
                f"{ASSET}: {month_text(month)} {summary.status}, "
                f"{summary.adjustments_added} adjustment(s) added"
            )
            with connection.begin():
                standing = billing_months(connection)
            context.add_asset_metadata(
                _summary_metadata(summary, standing), partition_key=month.isoformat()
            )
        analyze_written(connection, schema.STATEMENT_TABLES, months)
    context.log.info(f"{ASSET}: {len(months)} month(s) priced")
    return MaterializeResult()


def check_months(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """For every deployment and line, the statement plus its adjustments equals the month
    priced now from its current usage, to the cent (a draft: the statement alone); each
    statement's total is its base plus its lines, each line priced by the quote rule.

    A month whose days were re-written after it was priced is stale, not wrong (the sensor
    re-prices it), and one some of whose records retention removed is never priced again:
    both are skipped."""
    months = months_in_window(context.partition_time_window)
    problems, skipped = Problems(), 0
    with warehouse.engine.connect() as connection:
        for month in months:
            with connection.begin():
                hold_month(connection, month, shared=True)
                if repriced_at(connection, month) is None:
                    problems += Problems([f"{month_text(month)}: never priced"])
                    continue
                removed = removed_by_retention(connection, month)
                if removed or month in written_since_priced(connection):
                    skipped += 1
                    continue
                found = month_mismatches(connection, month)
                problems += found.prefixed(f"{month_text(month)} ")
    return failing_ids(problems, checked=len(months) - skipped, skipped=skipped, unit="month")


@dg.definitions
def defs() -> dg.Definitions:
    loaded = settings()
    # A month reads its days: the UI draws the lineage from the month to them. The month in
    # progress reads days that are not partitions yet (beta or not, that is the design).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        days_of_the_month = TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
    statements = monthly_asset(
        ASSET,
        loaded,
        price_months,
        deps=[
            AssetDep(step.asset, partition_mapping=days_of_the_month)
            for step in reversed(STATEMENT_READS)
        ],
        group_name="statements",
    )
    check = monthly_check(ASSET, loaded, check_months, name=CHECK)
    return dg.Definitions(assets=[statements], asset_checks=[check])
