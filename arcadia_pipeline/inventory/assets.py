"""resource_inventory: what existed during each day of the window, clipped to the day."""

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.retry import DATABASE_RETRY_POLICY
from arcadia_pipeline.inventory.sql import (
    describe_problems,
    find_invalid_versions,
    replace_inventory_day,
    stage_source,
)
from arcadia_pipeline.partitions import daily_partitions, days_in_window
from arcadia_pipeline.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.run_days import day_transaction


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=DATABASE_RETRY_POLICY,
    group_name="inventory",
    kinds={"postgres"},
)
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
    days = days_in_window(context.partition_time_window)
    window = context.partition_time_window
    source = (
        None if arcadia_source.database_url == warehouse.database_url else arcadia_source.engine
    )
    with warehouse.engine.connect() as connection:
        with connection.begin():
            ensure_month_partitions(connection, days[0], days[-1])
        with connection.begin():
            staged = stage_source(connection, source, window.start, window.end)
            total, rows = find_invalid_versions(connection)
        if total:
            raise Failure(
                description=describe_problems(total, rows),
                metadata={"invalid_rows": total},
                allow_retries=False,
            )
        snapshots = []
        for day in days:
            with day_transaction(context, connection, "resource_inventory", day):
                snapshot = replace_inventory_day(connection, day, context.run_id)
            snapshots.append(snapshot)
            context.add_asset_metadata(
                {
                    "snapshot_id": MetadataValue.int(snapshot.snapshot_id),
                    "versions": MetadataValue.int(snapshot.versions),
                    "resources": MetadataValue.int(snapshot.resources),
                    "unattributed_resources": MetadataValue.int(snapshot.unattributed_resources),
                },
                partition_key=day.isoformat(),
            )
    return MaterializeResult(
        metadata={
            "days_in_run": len(days),
            "staged_versions_in_run": staged,
            "versions_in_run": sum(s.versions for s in snapshots),
        }
    )
