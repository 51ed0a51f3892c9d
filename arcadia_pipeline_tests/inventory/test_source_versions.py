"""A source table's data version changes with any change of its rows, whatever their
timestamps, and only then."""

from sqlalchemy import text

from arcadia_pipeline.db.source import deployment_versions, resource_versions
from arcadia_pipeline.inventory.source_versions import source_version
from arcadia_pipeline_tests.support import add_deployment, add_version, utc


def versions(engine) -> tuple[str, str]:
    with engine.connect() as connection:
        return tuple(
            source_version(connection, table).data_version
            for table in (resource_versions, deployment_versions)
        )


def change(engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


def test_an_empty_source_has_version_zero(engine):
    with engine.connect() as connection:
        empty = source_version(connection, resource_versions)
    assert (empty.rows, empty.hash_sum, empty.newest_recorded_at) == (0, 0, None)
    assert empty.data_version == "0:0"


def test_every_change_moves_the_version_and_equal_contents_keep_it(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=5000)
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    first = versions(engine)
    with engine.connect() as connection:
        observed = source_version(connection, resource_versions)
    assert observed.rows == 2
    assert observed.newest_recorded_at == utc(2025, 1, 1)

    # An update that does not bump recorded_at: a new resource version, the same deployments.
    change(
        engine, "UPDATE arcadia.resource_versions SET size_gb = 4000 WHERE resource_id = 'spaces:1'"
    )
    updated = versions(engine)
    assert updated[0] != first[0] and updated[1] == first[1]

    # Put back as it was: the version it had (a sum does not depend on the rows' order).
    change(
        engine, "UPDATE arcadia.resource_versions SET size_gb = 5000 WHERE resource_id = 'spaces:1'"
    )
    assert versions(engine) == first

    # A hard delete, and a deployment's plan change.
    change(engine, "DELETE FROM arcadia.resource_versions WHERE resource_id = 'spaces:1'")
    deleted = versions(engine)
    assert deleted[0] != first[0] and deleted[0].startswith("1:")
    change(engine, "UPDATE arcadia.deployment_versions SET plan_code = 'studio'")
    assert versions(engine)[1] != first[1]
