"""The migrations build what db/schema.py describes and docs/domain.md names, and undo it."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.schema import SCHEMA, metadata


@pytest.mark.parametrize("table", metadata.sorted_tables, ids=lambda table: table.name)
def test_the_migrations_build_what_schema_py_describes(engine, table):
    with engine.connect() as connection:
        built = connection.execute(
            text(
                "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns "
                "WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position"
            ),
            {"schema": SCHEMA, "table": table.name},
        ).all()
    assert [tuple(row) for row in built] == [(c.name, c.nullable) for c in table.columns]


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
