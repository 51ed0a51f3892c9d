"""usage_records: exact usage per (deployment, resource, period, granularity)."""

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.retry import DATABASE_RETRY_POLICY
from arcadia_pipeline.inventory.assets import resource_inventory
from arcadia_pipeline.metadata import per_kind
from arcadia_pipeline.metering.sql import replace_usage_day
from arcadia_pipeline.partitions import daily_partitions, days_in_window
from arcadia_pipeline.resources import WarehouseResource
from arcadia_pipeline.run_days import day_transaction


@asset(
    deps=[resource_inventory],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=DATABASE_RETRY_POLICY,
    group_name="metering",
    kinds={"postgres"},
)
def usage_records(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """One record per (deployment, resource, period, granularity) with its exact qty,
    time-weighted by the second from the day's inventory snapshot (DESIGN.md's accrual).

    Each day is replaced whole in its own transaction, whatever granularity its records had,
    so re-runs, granularity flips and re-attributions never double count.
    """
    days = days_in_window(context.partition_time_window)
    records = 0
    with warehouse.engine.connect() as connection:
        with connection.begin():
            ensure_month_partitions(connection, days[0], days[-1])
        for day in days:
            with day_transaction(context, connection, "usage_records", day):
                metered = replace_usage_day(connection, day, context.run_id)
            records += sum(metered.records.values())
            context.add_asset_metadata(
                {
                    "records": MetadataValue.int(sum(metered.records.values())),
                    "deployments_metered": MetadataValue.int(metered.deployments),
                    "unattributed_resources_skipped": MetadataValue.int(
                        metered.unattributed_resources
                    ),
                    "inventory_snapshot_id": MetadataValue.int(metered.snapshot_id or 0),
                    **per_kind("records", metered.records),
                    **per_kind("qty", metered.qty),
                },
                partition_key=day.isoformat(),
            )
    return MaterializeResult(metadata={"days_in_run": len(days), "records_in_run": records})
