"""The migrations build what db/schema.py describes and docs/domain.md names, and undo it."""

import re
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.db.partitions import PARTITIONED_TABLES, ensure_month_partitions
from arcadia_pipeline.db.schema import SCHEMA, metadata

# The monthly partitions the pipeline creates as it writes: tables of the parent's shape.
PARTITION = re.compile(rf"({'|'.join(PARTITIONED_TABLES)})_\d{{4}}_\d{{2}}")


def _described(name, type_, parent_names) -> bool:
    """What schema.py describes: schema metering, without Alembic's version table and the
    monthly partitions."""
    if type_ == "schema":
        return name == SCHEMA
    if type_ == "table":
        return name != "alembic_version" and not PARTITION.fullmatch(name)
    return True


def test_the_migrations_build_what_schema_py_describes(engine):
    with engine.begin() as connection:
        ensure_month_partitions(
            connection, datetime(2025, 3, 1).date(), datetime(2025, 3, 1).date()
        )
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": _described,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        assert compare_metadata(context, metadata) == []


def test_usage_records_have_the_documented_columns_and_key(engine):
    design = {
        *("deployment_id", "resource_id", "resource_kind", "period_start", "granularity"),
        *("qty", "sub_attribution", "run_id", "metered_at"),
    }
    assert design <= {c.name for c in metadata.tables["metering.usage_records"].columns}
    row = {"d": "dep-a", "r": "droplet:1", "p": datetime(2025, 3, 1, tzinfo=UTC)}
    insert = text(
        "INSERT INTO metering.usage_records (deployment_id, resource_id, resource_kind, "
        "period_start, granularity, qty) VALUES (:d, :r, 'droplet_hours', :p, 'day', 1)"
    )
    with engine.begin() as connection:
        ensure_month_partitions(connection, row["p"].date(), row["p"].date())
        connection.execute(insert, row)
    duplicate = pytest.raises(IntegrityError, match="deployment_id, resource_id, period_start")
    with duplicate, engine.begin() as connection:
        connection.execute(insert, row)


def test_the_migrations_downgrade_to_nothing_and_upgrade_again(scratch_database):
    def tables():
        with make_engine(scratch_database).connect() as connection:
            return set(
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": SCHEMA}
                ).scalars()
            )

    upgrade(scratch_database)
    assert {t.name for t in metadata.sorted_tables} <= tables()
    downgrade(scratch_database, "base")
    assert tables() <= {"alembic_version"}
    upgrade(scratch_database)
    assert {t.name for t in metadata.sorted_tables} <= tables()
