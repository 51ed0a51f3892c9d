"""resource_inventory: what existed during each day of the window, clipped to the day."""

from functools import partial

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.db import schema
from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.inventory.sql import InventorySnapshot, replace_inventory_day, stage_source
from arcadia_pipeline.inventory.validation import validate_staged
from arcadia_pipeline.orchestration.day_runs import (
    replace_each_day,
    working_on,
)
from arcadia_pipeline.orchestration.partitions import daily_asset, days_in_window
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource


def _snapshot_metadata(snapshot: InventorySnapshot) -> dict:
    return {
        "snapshot_id": MetadataValue.int(snapshot.snapshot_id),
        "versions": MetadataValue.int(snapshot.versions),
        "resources": MetadataValue.int(snapshot.resources),
        "unattributed_resources": MetadataValue.int(snapshot.unattributed_resources),
        # 1: a run that staged the source later had written the day; its snapshot stands.
        "kept_newer_snapshot": MetadataValue.int(int(snapshot.kept_newer)),
    }


@daily_asset(group_name="inventory")
def resource_inventory(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
) -> MaterializeResult:
    """Every version of `arcadia.resource_versions` that overlapped the day, clipped to it,
    with its billing kind from `metering.kind_map` (one snapshot per day).

    The whole window is validated first: a row that cannot be metered (unknown kind,
    missing size, overlapping versions, unknown deployment or plan…) fails the run with the
    offending rows named, before anything is written.
    """
    window = context.partition_time_window
    days = days_in_window(window)
    same_database = arcadia_source.database_url == warehouse.database_url
    with working_on(context, days), warehouse.engine.connect() as connection:
        with connection.begin():
            ensure_month_partitions(connection, days[0], days[-1])
        with connection.begin():
            source = None if same_database else arcadia_source.engine
            staged, staged_at = stage_source(connection, source, window.start, window.end)
            validate_staged(connection, window.start, window.end)
        snapshots = replace_each_day(
            context, connection,
            [schema.resource_inventory, schema.inventory_deployments, schema.inventory_snapshots],
            days, partial(replace_inventory_day, taken_at=staged_at), _snapshot_metadata,
        )  # fmt: skip
    return MaterializeResult(
        metadata={
            "days_in_run": len(days),
            "staged_versions_in_run": staged,
            "versions_in_run": sum(s.versions for s in snapshots),
        }
    )
