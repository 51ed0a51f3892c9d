"""resource_inventory: what existed during each day of the window, clipped to the day."""

from functools import partial

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.flow import RESOURCE_INVENTORY
from arcadia_pipeline.inventory.snapshot import InventorySnapshot, replace_inventory_day
from arcadia_pipeline.inventory.staging import stage_source
from arcadia_pipeline.inventory.validation import validate_staged
from arcadia_pipeline.orchestration.assets import daily_step_definitions
from arcadia_pipeline.orchestration.day_runs import replace_each_day, working_on
from arcadia_pipeline.orchestration.partitions import run_days
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource


def _snapshot_metadata(snapshot: InventorySnapshot) -> dict:
    """The day's figures the UI plots per partition; the snapshot's id as text (an id
    plotted is noise)."""
    return {
        "snapshot_id": MetadataValue.text(str(snapshot.snapshot_id)),
        "versions": MetadataValue.int(snapshot.versions),
        "resources": MetadataValue.int(snapshot.resources),
        "unattributed_resources": MetadataValue.int(snapshot.unattributed_resources),
        # 1: a run that staged the source later had written the day; its snapshot stands.
        "kept_newer_snapshot": MetadataValue.int(int(snapshot.kept_newer)),
    }


def snapshot_inventory(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
) -> MaterializeResult:
    """Stage the source versions of the run's window, validate them all (a row that cannot
    be metered fails the run with the offending rows named, before anything is written),
    then replace each day's snapshot."""
    days = run_days(context)
    window = context.partition_time_window
    same_database = arcadia_source.database_url == warehouse.database_url
    with (
        working_on(context, RESOURCE_INVENTORY, days, warehouse),
        warehouse.engine.connect() as connection,
    ):
        with connection.begin():
            ensure_month_partitions(connection, days[0], days[-1])
        with connection.begin():
            source = None if same_database else arcadia_source.engine
            staged, staged_at = stage_source(connection, source, window.start, window.end)
            validate_staged(connection, window.start, window.end)
        snapshots = replace_each_day(
            context, connection, RESOURCE_INVENTORY, days,
            partial(replace_inventory_day, taken_at=staged_at), _snapshot_metadata,
        )  # fmt: skip
    # Run-level figures go to the run's log: as metadata every day of the run would plot them.
    context.log.info(
        f"{RESOURCE_INVENTORY.asset}: {len(days)} day(s), {staged} source version(s) staged, "
        f"{sum(s.versions for s in snapshots)} clipped to the days"
    )
    return MaterializeResult()


@dg.definitions
def defs() -> dg.Definitions:
    return daily_step_definitions(RESOURCE_INVENTORY, snapshot_inventory, group_name="inventory")
