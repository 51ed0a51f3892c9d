"""The source tables as observable source assets: upstream of resource_inventory in the
lineage, observed by their job with a data version that changes when the source does."""

from dagster import AssetKey, DagsterInstance
from sqlalchemy import text

from arcadia_pipeline_tests.support import add_deployment, add_version, defs, utc

RESOURCES = AssetKey(["arcadia", "resource_versions"])
DEPLOYMENTS = AssetKey(["arcadia", "deployment_versions"])


def observe(instance: DagsterInstance) -> dict[AssetKey, str]:
    result = defs.resolve_job_def("source_observation_job").execute_in_process(instance=instance)
    assert result.success
    return {
        key: instance.fetch_observations(key, limit=1).records[0].asset_observation.data_version
        for key in (RESOURCES, DEPLOYMENTS)
    }


def test_the_inventory_reads_both_source_tables():
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("resource_inventory")).parent_keys == {RESOURCES, DEPLOYMENTS}
    assert graph.get(RESOURCES).is_observable and graph.get(DEPLOYMENTS).is_observable
    assert defs.resolve_schedule_def("source_observation_schedule").cron_schedule == "5 * * * *"


def test_an_observation_records_each_table_s_data_version_and_its_rows(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=5000)
    instance = DagsterInstance.ephemeral()
    first = observe(instance)
    record = instance.fetch_observations(RESOURCES, limit=1).records[0].asset_observation
    assert record.metadata["rows"].value == 1
    assert record.metadata["newest_recorded_at"].value == utc(2025, 1, 1).timestamp()

    # A metered version deleted outright, no timestamp anywhere: the version moves.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM arcadia.resource_versions"))
    second = observe(instance)
    assert second[RESOURCES] != first[RESOURCES] and second[RESOURCES] == "0:0"
    assert second[DEPLOYMENTS] == first[DEPLOYMENTS]
