"""monthly_usage_statements: one final usage statement per deployment and billing month, and
every later change as an explicit adjustment (what the quote engine and finance invoice)."""

import warnings
from datetime import date, datetime

from dagster import (
    AssetDep,
    AssetExecutionContext,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
)
from sqlalchemy import Connection

from arcadia_pipeline.db import schema
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.inventory.assets import resource_inventory
from arcadia_pipeline.metering.assets import usage_records
from arcadia_pipeline.orchestration.day_runs import failures_named
from arcadia_pipeline.orchestration.metadata import markdown_table
from arcadia_pipeline.orchestration.partitions import monthly_asset, months_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.run_launcher import tag_worker
from arcadia_pipeline.statements import closing
from arcadia_pipeline.statements.sql import (
    PricedMonth,
    close_drafts,
    closed_at,
    hold_month,
    mark_priced,
    price_month,
    summarise_month,
    write_adjustments,
    write_drafts,
)

# A month reads its days: the UI draws the lineage from the month to them. The month in
# progress reads days that are not partitions yet (beta or not, that is the design).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    DAYS_OF_THE_MONTH = TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)


class MonthNotReady(Exception):
    """A month due to close (or closed) whose days are not all metered, checked and fresh."""


def _priced_metadata(priced: PricedMonth) -> dict:
    return {
        "status": MetadataValue.text(priced.status),
        "closed": MetadataValue.int(int(priced.status == "closed")),
        "statements": MetadataValue.int(priced.statements),
        "base_usd": MetadataValue.float(float(priced.base_usd)),
        "total_usd": MetadataValue.float(float(priced.total_usd)),
        "adjustments": MetadataValue.int(priced.adjustments),
        "adjustments_usd": MetadataValue.float(float(priced.adjustments_usd)),
        "adjustments_added": MetadataValue.int(priced.adjustments_added),
        "total_with_adjustments_usd": MetadataValue.float(
            float(priced.total_usd + priced.adjustments_usd)
        ),
        "largest_statements": markdown_table(
            ["deployment", "plan", "status", "total USD", "adjustments USD",
             "total with adjustments USD"],
            [
                [r["deployment_id"], r["plan_code"], r["status"], r["total_usd"],
                 r["adjustments_usd"], r["total_with_adjustments_usd"]]
                for r in priced.top
            ],
        ),
    }  # fmt: skip


@monthly_asset(
    deps=[
        AssetDep(resource_inventory, partition_mapping=DAYS_OF_THE_MONTH),
        AssetDep(usage_records, partition_mapping=DAYS_OF_THE_MONTH),
    ],
    group_name="statements",
)
def monthly_usage_statements(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """Per deployment and UTC billing month: the plan, usage per billing kind over the whole
    month, included and overage quantities, unit prices, line amounts (the quote rule), base
    fee and total.

    Before the month's end plus ARCADIA_CLOSE_GRACE_DAYS the statements are drafts, replaced
    on every run. The first run after it closes them, once every day of the month is metered
    with its checks passing (else it fails naming the days, writing nothing); closed
    statements never change. A closed month run again is re-priced from its current usage
    and each line that changed gets one adjustment (a negative amount is a credit).
    """
    asset = context.asset_key.to_user_string()
    now = closing.utc_now()
    months = months_in_window(context.partition_time_window)
    with warehouse.engine.connect() as connection:
        tag_worker(context)
        for month in months:
            failing = failures_named(f"{asset} failed on {closing.month_text(month)}")
            with failing, connection.begin():
                priced = _price(context, connection, month, now)
            context.log.info(
                f"{asset}: {closing.month_text(month)} {priced.status}, "
                f"{priced.adjustments_added} adjustment(s) added"
            )
            context.add_asset_metadata(_priced_metadata(priced), partition_key=month.isoformat())
        analyze_written(connection, schema.STATEMENT_TABLES, months)
    return MaterializeResult(metadata={"months_in_run": len(months)})


def _price(
    context: AssetExecutionContext, connection: Connection, month: date, now: datetime
) -> PricedMonth:
    """One month in its transaction: a draft replaced, a month closed, or a closed month
    adjusted."""
    read_at = hold_month(connection, month)
    closed = closed_at(connection, month)
    closes = closed is None and closing.due_to_close(month, now)
    expired = closing.past_retention(connection, month, now.date())
    if expired:
        raise MonthNotReady(f"cannot price {closing.month_text(month)}: {expired}")
    if closed is not None or closes:
        unready = closing.unready_days(context.instance, connection, month)
        if unready:
            verb = "close" if closes else "adjust closed"
            raise MonthNotReady(
                f"cannot {verb} {closing.month_text(month)}, its days are not final: "
                + "; ".join(unready)
            )
    price_month(connection, month)
    added = 0
    if closed is not None:
        added = write_adjustments(connection, month, context.run_id, now)
    else:
        write_drafts(connection, month, context.run_id)
        if closes:
            close_drafts(connection, month, now)
    mark_priced(connection, month, read_at, context.run_id, now if closes else None)
    return summarise_month(connection, month, added)
