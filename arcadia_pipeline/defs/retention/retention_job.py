"""The retention job and its own daily schedule (03:30 UTC, clear of the 01:10 metering)."""

import dagster as dg
from dagster import (
    AssetKey,
    AssetObservation,
    MetadataValue,
    OpExecutionContext,
    Output,
)

from arcadia_pipeline import utc
from arcadia_pipeline.flow import RESOURCE_INVENTORY, USAGE_RECORDS
from arcadia_pipeline.orchestration.automation import schedule_status
from arcadia_pipeline.orchestration.failures import failures_named
from arcadia_pipeline.orchestration.metadata import per_kind
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.retry import DATABASE_RETRY_POLICY
from arcadia_pipeline.retention.expiry import (
    InventoryRetention,
    apply_retention,
    remove_inventory_before,
)
from arcadia_pipeline.settings import settings


@dg.op(retry_policy=DATABASE_RETRY_POLICY)
def remove_expired_usage_records(context: OpExecutionContext, warehouse: WarehouseResource):
    """Delete usage records older than their kind's retention_days, never any in the open
    or the previous billing month nor in a month that has not closed (it waits, and says
    so), and the inventory snapshots of the days none is kept for; record what was removed
    per month and kind, and report the rows removed per kind."""
    today = utc.now().date()
    # An invalid metering_config or a bug fails at once; a lost connection is retried.
    with failures_named("retention failed"):
        with warehouse.engine.begin() as connection:
            result = apply_retention(connection, today, context.run_id)
        inventory = InventoryRetention(0, [])
        if result.inventory_kept_from is not None:
            with warehouse.engine.begin() as connection:
                inventory = remove_inventory_before(connection, result.inventory_kept_from)
        dropped = result.dropped_partitions + inventory.dropped_partitions
        metadata = {
            "rows_removed": MetadataValue.int(sum(result.removed.values())),
            **per_kind("rows_removed", result.removed),
            "inventory_rows_removed": MetadataValue.int(inventory.rows_removed),
            "dropped_partitions": MetadataValue.text(", ".join(dropped) or "-"),
            "waiting_for_close": MetadataValue.text("; ".join(result.waiting) or "-"),
        }
        context.log_event(
            AssetObservation(asset_key=AssetKey(USAGE_RECORDS.asset), metadata=metadata)
        )
        context.log_event(
            AssetObservation(
                asset_key=AssetKey(RESOURCE_INVENTORY.asset),
                metadata={
                    "rows_removed": MetadataValue.int(inventory.rows_removed),
                    "kept_from": MetadataValue.text(str(result.inventory_kept_from or "-")),
                },
            )
        )
        context.log.info(f"retention removed {result.removed}")
        for waiting in result.waiting:
            context.log.warning(f"retention waits: {waiting}")
    return Output(result.removed, metadata=metadata)


@dg.job(
    description="Remove usage records past their billing kind's retention_days, and the "
    "inventory snapshots of the days no kind keeps."
)
def retention_job():
    remove_expired_usage_records()


@dg.definitions
def defs() -> dg.Definitions:
    schedule = dg.ScheduleDefinition(
        name="retention_schedule",
        job=retention_job,
        cron_schedule="30 3 * * *",
        execution_timezone="UTC",
        default_status=schedule_status(settings()),
    )
    return dg.Definitions(jobs=[retention_job], schedules=[schedule])
