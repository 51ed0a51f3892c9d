"""The source the pipeline reads, as observable source assets: `arcadia/resource_versions` and
`arcadia/deployment_versions`, upstream of resource_inventory in the lineage.

Each observation records the table's data version (its rows and their hash sum:
inventory/source_versions.py), so a change of the source shows in the UI whatever its
timestamps say, and the inventory's days are shown stale against it until metered again.
The observation job runs every hour at :05 and can be launched from the UI ("Observe
sources"); it reads the source only, and writes nothing to the warehouse.
"""

import dagster as dg
from dagster import AssetExecutionContext, DataVersion, MetadataValue, ObserveResult

from arcadia_pipeline.db.source import SOURCE_TABLES
from arcadia_pipeline.inventory.source_versions import source_version
from arcadia_pipeline.orchestration.assets import source_asset_key
from arcadia_pipeline.orchestration.automation import schedule_status
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource
from arcadia_pipeline.settings import settings

OBSERVATION_JOB = "source_observation_job"

DESCRIPTIONS = {
    "resource_versions": "The Arcadia app's resource versions (read-only): one row per state "
    "interval of a resource, [valid_from, valid_to), with its deployment, kind and size.",
    "deployment_versions": "The Arcadia app's deployment versions (read-only): one row per "
    "state interval of a deployment, with its name and plan.",
}


def observe(context: AssetExecutionContext, arcadia_source: ArcadiaSourceResource):
    """One ObserveResult per selected source table: its data version '<rows>:<hash sum>',
    its rows and its newest recorded_at."""
    selected = {key.path[-1] for key in context.selected_asset_keys}
    with arcadia_source.engine.connect() as connection:
        for table in SOURCE_TABLES:
            if table.name not in selected:
                continue
            version = source_version(connection, table)
            newest = version.newest_recorded_at
            yield ObserveResult(
                asset_key=source_asset_key(table),
                data_version=DataVersion(version.data_version),
                metadata={
                    "rows": MetadataValue.int(version.rows),
                    "newest_recorded_at": MetadataValue.timestamp(newest)
                    if newest
                    else MetadataValue.null(),
                },
            )


@dg.definitions
def defs() -> dg.Definitions:
    specs = [
        dg.AssetSpec(
            source_asset_key(table),
            description=DESCRIPTIONS[table.name],
            group_name="source",
            kinds={"postgres"},
        )
        for table in SOURCE_TABLES
    ]
    sources = dg.multi_observable_source_asset(specs=specs, name="observe_source", can_subset=True)(
        observe
    )
    job = dg.define_asset_job(
        OBSERVATION_JOB,
        selection=dg.AssetSelection.assets(*(spec.key for spec in specs)),
        description="Observe the source tables: a data version each, whatever their timestamps.",
    )
    schedule = dg.ScheduleDefinition(
        name="source_observation_schedule",
        job=job,
        cron_schedule="5 * * * *",
        execution_timezone="UTC",
        default_status=schedule_status(settings()),
    )
    return dg.Definitions(assets=[sources], jobs=[job], schedules=[schedule])
