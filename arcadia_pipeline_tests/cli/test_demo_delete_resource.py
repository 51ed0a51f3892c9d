"""`arcadia-pipeline demo delete-resource`, the real console script against real PostgreSQL: a
database of its own seeded by `demo seed` (3 deployments, 2025-02-19..28), then back-dated
deletions; the refusals are one line on stderr, a non-zero exit and nothing written."""

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline_tests.cli.test_cli import assert_one_line_error, cli, ok
from arcadia_pipeline_tests.conftest import create_database, drop_database

AT = "2025-02-24T06:00:00Z"


@pytest.fixture(scope="module")
def seeded(server_url, admin_url):
    """A database of this module's own, seeded through the CLI; its URL."""
    name = f"arcadia_delete_{os.getpid()}"
    create_database(admin_url, name, make_url(server_url).username)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        ok(cli("db", "upgrade", url=url))
        ok(
            cli(
                "demo",
                "seed",
                "--deployments",
                "3",
                "--days",
                "10",
                "--end-date",
                "2025-03-01",
                url=url,
            )
        )
        yield url
    finally:
        make_engine(url).dispose()
        drop_database(admin_url, name)


def source_rows(url: str) -> list[tuple]:
    with make_engine(url).connect() as connection:
        return connection.execute(
            text("SELECT * FROM arcadia.resource_versions ORDER BY resource_id, valid_from")
        ).all()


def resource_with_a_later_version(url: str) -> tuple[str, int]:
    """A resource existing just before and at AT with versions after it, and its number of
    versions starting after AT."""
    with make_engine(url).connect() as connection:
        return connection.execute(
            text(
                "SELECT resource_id, count(*) FILTER (WHERE valid_from > :at) "
                "FROM arcadia.resource_versions GROUP BY resource_id "
                "HAVING bool_or(valid_from < :at AND coalesce(valid_to, 'infinity') > :at) "
                "ORDER BY 2 DESC, 1 LIMIT 1"
            ),
            {"at": datetime(2025, 2, 24, 6, tzinfo=UTC)},
        ).one()


def test_deletes_the_resource_back_dated_and_says_what_it_did(seeded):
    resource_id, later = resource_with_a_later_version(seeded)
    assert later >= 1  # the seed's tour changes resources all window long

    printed = ok(cli("demo", "delete-resource", resource_id, "--at", AT, url=seeded))

    assert printed.startswith(f"{resource_id} deleted from {AT} (its version from ")
    assert printed.endswith(f" ended, {later} later removed)\n")
    with make_engine(seeded).connect() as connection:
        ends = connection.execute(
            text(
                "SELECT max(coalesce(valid_to, 'infinity')), max(recorded_at) > now() - "
                "interval '1 hour' FROM arcadia.resource_versions WHERE resource_id = :r"
            ),
            {"r": resource_id},
        ).one()
    assert ends == (datetime(2025, 2, 24, 6, tzinfo=UTC), True)


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["spaces:404", "--at", AT], ["unknown resource spaces:404"]),
        (["droplet:1", "--at", "2025-02-24"], ["--at", "'2025-02-24' is not an instant"]),
        (["droplet:1", "--at", "NaN"], ["--at", "'NaN' is not an instant"]),
        (["droplet:1", "--at", "2025-02-24T06:00:00"], ["not an instant"]),  # no zone
        (["droplet:1", "--at", "2025-02-30T00:00:00Z"], ["not an instant"]),
        (["droplet:1", "--at", "0001-01-01T00:00:00Z"], ["out of range"]),
        (["droplet:1", "--at", "9999-12-31T23:59:59Z"], ["out of range"]),
        (["droplet:1"], ["--at"]),
    ],
    ids=["unknown", "a-day", "nan", "no-zone", "no-such-day", "absurd-past", "future", "no-at"],
)
def test_refuses_in_one_line_writing_nothing(seeded, args, mentions):
    before = source_rows(seeded)
    assert_one_line_error(cli("demo", "delete-resource", *args, url=seeded), *mentions)
    assert source_rows(seeded) == before


def test_refuses_a_resource_that_did_not_exist_then(seeded):
    with make_engine(seeded).connect() as connection:
        resource_id = connection.execute(
            text("SELECT min(resource_id) FROM arcadia.resource_versions")
        ).scalar_one()
    before = source_rows(seeded)
    result = cli("demo", "delete-resource", resource_id, "--at", "2001-01-01T00:00:00Z", url=seeded)
    assert_one_line_error(result, resource_id, "did not exist at 2001-01-01T00:00:00Z")
    assert source_rows(seeded) == before


def test_refuses_a_source_demo_seed_did_not_create(foreign_source_url):
    url = foreign_source_url
    with make_engine(url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO arcadia.resource_versions (resource_id, inventory_kind, "
                "status, valid_from) VALUES ('droplet:1', 'droplet', 'active', '2024-01-01')"
            )
        )
    before = source_rows(url)
    result = cli("demo", "delete-resource", "droplet:1", "--at", AT, url=url)
    assert_one_line_error(
        result, "refusing", "droplet:1", "arcadia.resource_versions", "did not create"
    )
    assert source_rows(url) == before
