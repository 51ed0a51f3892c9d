"""A back-dated deletion of a demo resource (demo/late_deletion.py), on the session's real
PostgreSQL: what it ends, what it removes, what it stamps, and what it refuses (writing
nothing)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.source import source_metadata
from arcadia_pipeline.demo.late_deletion import (
    DeletionRefused,
    delete_resource_at,
    instant_text,
)
from arcadia_pipeline.demo.seed import ForeignSource, seed_demo
from arcadia_pipeline.inventory.staging import stage_source
from arcadia_pipeline.inventory.validation import find_invalid_rows
from arcadia_pipeline_tests.support import add_deployment, add_version, utc

AT = utc(2026, 10, 15)
BORN, RESIZED = utc(2026, 9, 16), utc(2026, 10, 20, 8, 30)
RECORDED = utc(2026, 9, 16, 0, 6)


def versions(engine, resource_id: str) -> list[tuple]:
    """(size_gb as text, valid_from, valid_to, recorded_at) of the resource, in time order."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT size_gb::text, valid_from, valid_to, recorded_at "
                "FROM arcadia.resource_versions WHERE resource_id = :r ORDER BY valid_from"
            ),
            {"r": resource_id},
        ).all()


def all_rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT * FROM arcadia.resource_versions ORDER BY resource_id, valid_from")
        ).all()


def delete(engine, resource_id: str, at):
    with engine.begin() as connection:
        return delete_resource_at(connection, resource_id, at)


def database_now(engine):
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT now()")).scalar_one()


@pytest.fixture
def bucket(engine):
    """spaces:1 of dep-1: 137.61 GB from 2026-09-16, resized to 150 GB on 2026-10-20 08:30;
    and spaces:2, which must be left alone."""
    add_deployment(engine, "dep-1", "studio")
    add_version(engine, "spaces:1", "dep-1", "spaces_bucket", BORN, RESIZED, size_gb="137.61")
    add_version(engine, "spaces:1", "dep-1", "spaces_bucket", RESIZED, size_gb="150")
    add_version(engine, "spaces:2", "dep-1", "spaces_bucket", BORN, size_gb="10")
    return engine


def test_ends_the_version_open_then_and_removes_the_later_ones(bucket):
    before = database_now(bucket)
    other = versions(bucket, "spaces:2")

    deletion = delete(bucket, "spaces:1", AT)

    assert (deletion.resource_id, deletion.at, deletion.ended_from) == ("spaces:1", AT, BORN)
    assert deletion.removed == 1  # the resize of 2026-10-20 never happened
    [(size, valid_from, valid_to, recorded_at)] = versions(bucket, "spaces:1")
    assert (size, valid_from, valid_to) == ("137.61", BORN, AT)
    assert before <= recorded_at <= database_now(bucket)  # recorded now, back-dated
    assert versions(bucket, "spaces:2") == other


def test_an_instant_in_another_zone_is_the_same_instant(bucket):
    deletion = delete(bucket, "spaces:1", AT.astimezone(ZoneInfo("Asia/Tokyo")))
    assert deletion.at == AT and deletion.at.utcoffset() == timedelta(0)
    assert [row[2] for row in versions(bucket, "spaces:1")] == [AT]


def test_at_the_start_of_a_version_its_predecessor_is_the_last(bucket):
    deletion = delete(bucket, "spaces:1", RESIZED)
    assert (deletion.ended_from, deletion.removed) == (BORN, 1)
    [(size, _, valid_to, recorded_at)] = versions(bucket, "spaces:1")
    assert (size, valid_to) == ("137.61", RESIZED)
    assert recorded_at > RECORDED  # stamped: the corrections sensor sees the change


def test_the_last_version_open_is_ended_with_nothing_removed(bucket):
    later = RESIZED + timedelta(days=3, seconds=17)
    deletion = delete(bucket, "spaces:1", later)
    assert deletion.removed == 0
    assert [(row[0], row[2]) for row in versions(bucket, "spaces:1")] == [
        ("137.61", RESIZED),
        ("150", later),
    ]


@pytest.mark.parametrize(
    ("resource_id", "at", "mentions"),
    [
        ("spaces:404", AT, ("unknown resource spaces:404",)),
        ("spaces:1", BORN - timedelta(seconds=1), ("spaces:1", "did not exist at")),
        # Created at that very instant: it did not exist just before it.
        ("spaces:1", BORN, ("spaces:1", "did not exist at 2026-09-16T00:00:00Z")),
    ],
    ids=["unknown", "before-it-existed", "at-its-creation"],
)
def test_refuses_naming_the_resource_and_writes_nothing(bucket, resource_id, at, mentions):
    before = all_rows(bucket)
    with pytest.raises(DeletionRefused) as refused:
        delete(bucket, resource_id, at)
    assert all(mention in str(refused.value) for mention in mentions), refused.value
    assert "\n" not in str(refused.value)
    assert all_rows(bucket) == before


def test_refuses_once_deleted_and_in_a_gap(engine):
    add_deployment(engine, "dep-1", "starter")
    add_version(engine, "snap:1", "dep-1", "snapshot", BORN, AT, size_gb=5)
    add_version(engine, "snap:1", "dep-1", "snapshot", AT + timedelta(days=2), size_gb=5)
    before = all_rows(engine)
    for at in (AT, AT + timedelta(days=1)):  # deleted at AT (half-open), back two days later
        with pytest.raises(DeletionRefused, match="snap:1 did not exist at"):
            delete(engine, "snap:1", at)
    assert all_rows(engine) == before


def test_refuses_a_source_demo_seed_did_not_create(scratch_database):
    """The Arcadia app's own tables (no demo mark): one line naming them, their rows stay."""
    engine = make_engine(scratch_database)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE SCHEMA arcadia"))
            source_metadata.create_all(connection)  # unmarked: not create_source_tables
        add_version(engine, "spaces:1", None, "spaces_bucket", BORN, size_gb=1)
        before = all_rows(engine)
        with pytest.raises(
            ForeignSource, match="refusing to record the deletion of spaces:1 in arcadia."
        ):
            delete(engine, "spaces:1", AT)
        assert all_rows(engine) == before
    finally:
        engine.dispose()


def test_refuses_where_there_is_no_source(scratch_database):
    engine = make_engine(scratch_database)
    try:
        with pytest.raises(DeletionRefused, match="spaces:1: arcadia.resource_versions does not"):
            delete(engine, "spaces:1", AT)
    finally:
        engine.dispose()


def test_the_seeded_source_stays_valid_after_deleting_any_of_its_resources(engine):
    """Every resource of a small seed deleted in the middle of its life: the source still
    passes validation (no overlap, no empty interval, attribution within its deployment)."""
    with engine.begin() as connection:
        summary = seed_demo(connection, deployments=6, days=20, end_date=AT.date())
        lives = connection.execute(
            sa.text(
                "SELECT resource_id, min(valid_from), max(coalesce(valid_to, :end)) "
                "FROM arcadia.resource_versions GROUP BY resource_id"
            ),
            {"end": summary.end},
        ).all()
        for resource_id, born, died in lives:
            delete_resource_at(connection, resource_id, born + (died - born) / 2)
        stage_source(connection, None, summary.start, summary.end)
        assert find_invalid_rows(connection, summary.start, summary.end) == (0, [])
        ends = connection.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE valid_to IS NULL) FROM arcadia.resource_versions"
            )
        ).scalar_one()
    assert ends == 0  # every resource ends now


def test_instants_are_written_in_utc_with_z():
    assert instant_text(AT) == "2026-10-15T00:00:00Z"
    tokyo = (AT + timedelta(microseconds=250)).astimezone(ZoneInfo("Asia/Tokyo"))
    assert instant_text(tokyo) == "2026-10-15T00:00:00.000250Z"
