"""usage_records: exact usage per (deployment, resource, period, granularity)."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.db import schema
from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.inventory.assets import resource_inventory
from arcadia_pipeline.metering.sql import MeteredDay, replace_usage_day
from arcadia_pipeline.orchestration.day_runs import replace_each_day, working_on
from arcadia_pipeline.orchestration.metadata import per_kind
from arcadia_pipeline.orchestration.partitions import daily_asset, days_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource


def _metered_metadata(metered: MeteredDay) -> dict:
    return {
        "records": MetadataValue.int(sum(metered.records.values())),
        "deployments_metered": MetadataValue.int(metered.deployments),
        "unattributed_resources_skipped": MetadataValue.int(metered.unattributed_resources),
        "inventory_snapshot_id": MetadataValue.int(metered.snapshot_id or 0),
        **per_kind("records", metered.records),
        **per_kind("qty", metered.qty),
    }


@daily_asset(deps=[resource_inventory], group_name="metering")
def usage_records(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """One record per (deployment, resource, period, granularity) with its exact qty,
    time-weighted by the second from the day's inventory snapshot (metering/accrual.py).

    Each day is replaced whole in its own transaction, whatever granularity its records had,
    so re-runs, granularity flips and re-attributions never double count.
    """
    days = days_in_window(context.partition_time_window)
    with working_on(context, days), warehouse.engine.connect() as connection:
        with connection.begin():
            ensure_month_partitions(connection, days[0], days[-1])
        metered = replace_each_day(
            context, connection, [schema.usage_records], days, replace_usage_day, _metered_metadata
        )
    records = sum(sum(day.records.values()) for day in metered)
    return MaterializeResult(metadata={"days_in_run": len(days), "records_in_run": records})
