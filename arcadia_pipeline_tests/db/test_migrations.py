"""Migrations are history: they import no live code, a database migrated to head holds
exactly the catalog, kind map and config the code ships, and the rows an older warehouse
holds are carried over as the migrations say."""

import ast
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, insert, inspect, literal, select, text
from sqlalchemy.exc import IntegrityError

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import MIGRATIONS, downgrade, upgrade
from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.schema import (
    UNATTRIBUTED,
    day_fingerprints,
    kind_map,
    metering_config,
    overage_tiers,
    plan_items,
    plans,
    resource_inventory,
)
from arcadia_pipeline.inventory.changes import changed_days
from arcadia_pipeline.inventory.reconciliation import differing_days
from arcadia_pipeline.inventory.snapshot import SNAPSHOT_COLUMNS, row_hash
from arcadia_pipeline.pricing.proration import prorated_heads
from arcadia_pipeline.utc import DAY, day_start
from arcadia_pipeline_tests.shipped_catalog import (
    DEFAULT_GRANULARITY,
    DEFAULT_KIND_MAP,
    DEFAULT_RETENTION_DAYS,
    OVERAGE_UNIT_PRICE_USD,
    PLAN_BASE_USD,
    PLAN_INCLUDED,
)
from arcadia_pipeline_tests.support import LONG_AGO

VERSIONS = sorted((MIGRATIONS / "versions").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_there_are_migrations_to_check():
    assert len(VERSIONS) >= 2


def test_no_migration_imports_the_package():
    """A migration that imported live code would change meaning when the code changes."""
    offending = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith("arcadia_pipeline"))
        for path in VERSIONS
    }
    assert {name: mods for name, mods in offending.items() if mods} == {}


def test_head_on_an_empty_database_holds_what_the_code_ships(scratch_database):
    upgrade(scratch_database)
    with make_engine(scratch_database).connect() as connection:

        def rows(table, *columns):
            return set(connection.execute(select(*(table.c[c] for c in columns))).all())

        assert rows(kind_map, "inventory_kind", "billing_kind", "accrual") == {
            (m.inventory_kind, m.billing_kind, m.accrual and m.accrual.value)
            for m in DEFAULT_KIND_MAP
        }
        assert rows(metering_config, "billing_kind", "granularity", "retention_days") == {
            (m.billing_kind, DEFAULT_GRANULARITY, DEFAULT_RETENTION_DAYS)
            for m in DEFAULT_KIND_MAP
            if m.billing_kind
        }
        assert rows(plans, "plan_code", "base_usd") == set(PLAN_BASE_USD.items())
        assert rows(plan_items, "plan_code", "billing_kind", "included_qty") == {
            (plan, kind, Decimal(qty))
            for plan, items in PLAN_INCLUDED.items()
            for kind, qty in items.items()
        }
        # Each plan's overage price of a kind: one open tier (no upper bound), a flat price.
        assert rows(overage_tiers, "plan_code", "billing_kind", "up_to_qty", "unit_price_usd") == {
            (plan, kind, None, price)
            for plan in PLAN_BASE_USD
            for kind, price in OVERAGE_UNIT_PRICE_USD.items()
        }


# ---- 0006: deployments have a history ------------------------------------------------------

# Snapshot rows as 0005 wrote them: each deployment's plan for a whole day. dep-a is on starter
# every day of March, dep-b changed plan between two days.
OLD_SNAPSHOT = [
    *((date(2025, 3, d), "dep-a", "Pilot", "starter") for d in range(1, 32)),
    (date(2025, 3, 30), "dep-b", "B", "starter"),
    (date(2025, 3, 31), "dep-b", "B renamed", "studio"),
]
OLD_COLUMNS = ("day", "deployment_id", "name", "plan_code")
NEW_COLUMNS = (
    "day, deployment_id, starts_at, ends_at, name, plan_code, valid_from, valid_to, recorded_at"
)
INVENTORY_DEPLOYMENTS = (
    f"SELECT {NEW_COLUMNS} FROM metering.inventory_deployments "
    "ORDER BY day, deployment_id, starts_at"
)


def columns(connection, table: str) -> list[str]:
    return [c["name"] for c in inspect(connection).get_columns(table, schema="metering")]


def primary_key(connection, table: str) -> list[str]:
    return inspect(connection).get_pk_constraint(table, schema="metering")["constrained_columns"]


def test_0006_reads_each_old_snapshot_row_as_one_version_covering_its_day(scratch_database):
    upgrade(scratch_database, "0005")
    engine = make_engine(scratch_database)
    with engine.begin() as connection:
        assert columns(connection, "inventory_deployments") == list(OLD_COLUMNS)
        connection.execute(
            text(
                "INSERT INTO metering.inventory_deployments (day, deployment_id, name, "
                "plan_code) VALUES (:day, :deployment_id, :name, :plan_code)"
            ),
            [dict(zip(OLD_COLUMNS, row, strict=True)) for row in OLD_SNAPSHOT],
        )
        connection.execute(  # every day of March was metered
            text(
                "INSERT INTO metering.inventory_snapshots (day, versions, resources, "
                "unattributed_resources) SELECT DISTINCT day, 0, 0, 0 "
                "FROM metering.inventory_deployments"
            )
        )
        connection.execute(
            text(
                "INSERT INTO metering.monthly_statements (month, deployment_id, plan_code, "
                "status, closed_at, base_usd, total_usd) VALUES ('2025-02-01', 'dep-a', "
                "'starter', 'closed', '2025-03-01 02:00Z', 20.00, 21.50)"
            )
        )

    upgrade(scratch_database, "0006")

    with engine.connect() as connection:
        assert sorted(columns(connection, "inventory_deployments")) == sorted(
            NEW_COLUMNS.split(", ")
        )
        rows = [tuple(r) for r in connection.execute(text(INVENTORY_DEPLOYMENTS))]
        # one version covering its day, still open, with no recording time
        assert rows == [
            (day, deployment, day_start(day), day_start(day) + DAY, name, plan,
             day_start(day), None, None)
            for day, deployment, name, plan in sorted(OLD_SNAPSHOT)
        ]  # fmt: skip
        assert primary_key(connection, "inventory_deployments") == [
            "day", "deployment_id", "starts_at",
        ]  # fmt: skip
        statement = connection.execute(
            text(
                "SELECT plan_code, status, base_usd, total_usd, plan_periods "
                "FROM metering.monthly_statements"
            )
        ).one()
        # a closed month keeps the terms it closed with; it has no plan periods recorded
        assert tuple(statement) == ("starter", "closed", Decimal("20.00"), Decimal("21.50"), None)

    upgrade(scratch_database)  # the live pricing reads the terms of today's schema
    with engine.connect() as connection:
        # priced from the converted rows: dep-a, on starter every day, as before (share 1);
        # dep-b, in the snapshots on two days, for those days on the plan each had
        heads = {
            r.deployment_id: (r.plan_code, r.base_usd)
            for r in connection.execute(prorated_heads(date(2025, 3, 31)))
        }
        assert heads == {
            "dep-a": ("starter", PLAN_BASE_USD["starter"]),
            "dep-b": ("studio", Decimal("2.26")),  # 20 × 1/31 + 50 × 1/31 = 2.258…
        }

    # a version of a day now ends inside it: a second version of that day is its own row
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE metering.inventory_deployments SET ends_at = '2025-03-31 12:00Z' "
                "WHERE day = '2025-03-31' AND deployment_id = 'dep-b'"
            )
        )
        connection.execute(
            text(
                "INSERT INTO metering.inventory_deployments "
                f"({NEW_COLUMNS}) VALUES ('2025-03-31', 'dep-b', '2025-03-31 12:00Z', "
                "'2025-04-01 00:00Z', 'B', 'agency', '2025-03-31 12:00Z', NULL, "
                "'2025-03-31 12:00:05Z')"
            )
        )
    duplicate = pytest.raises(IntegrityError, match="inventory_deployments_pkey")
    with duplicate, engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.inventory_deployments "
                f"({NEW_COLUMNS}) VALUES ('2025-03-31', 'dep-b', '2025-03-31 12:00Z', "
                "'2025-03-31 18:00Z', 'B', 'studio', '2025-03-31 12:00Z', NULL, NULL)"
            )
        )

    downgrade(scratch_database, "0005")

    with engine.connect() as connection:
        assert columns(connection, "inventory_deployments") == list(OLD_COLUMNS)
        assert primary_key(connection, "inventory_deployments") == ["day", "deployment_id"]
        assert "plan_periods" not in columns(connection, "monthly_statements")
        rows = [
            tuple(r)
            for r in connection.execute(
                text(
                    "SELECT day, deployment_id, name, plan_code FROM "
                    "metering.inventory_deployments ORDER BY day, deployment_id"
                )
            )
        ]
        # one row per day and deployment again: of a day with two versions, the later one
        # (the plan the day ended on)
        assert rows == [
            *sorted(OLD_SNAPSHOT)[:-1],
            (date(2025, 3, 31), "dep-b", "B", "agency"),
        ]
        assert connection.execute(
            text("SELECT status, base_usd FROM metering.monthly_statements")
        ).one() == ("closed", Decimal("20.00"))

    upgrade(scratch_database)  # and up again to head


# ---- 0010: keys and guards a Citus cluster accepts --------------------------------------------

JAN_5 = date(2025, 1, 5)
# The terms tables as of 0010 (0012 replaced overage_prices by overage_tiers).
TERMS_TABLES = ("kind_map", "metering_config", "plans", "plan_items", "overage_prices")


def trigger_arguments(connection) -> dict[str, str]:
    """Per terms table, the argument its guard trigger passes guard_terms ('' for none)."""
    return dict(
        connection.execute(
            text(
                "SELECT tgrelid::regclass::text, encode(tgargs, 'escape') FROM pg_trigger "
                "WHERE tgfoid = 'metering.guard_terms'::regproc ORDER BY 1"
            )
        ).all()
    )


def test_0010_holds_unattributed_inventory_under_the_sentinel_and_keeps_its_fingerprint(
    source_database,
):
    """A day 0009 metered with an unattributed droplet (NULL) and its fingerprint: after
    0010 the droplet is held under '' and the day still matches its source, by the
    fingerprint kept before (the reconciliation) and row by row (the corrections)."""
    upgrade(source_database, "0009")
    engine = make_engine(source_database)
    start, taken_at = day_start(JAN_5), day_start(JAN_5) + DAY + timedelta(hours=2)
    with engine.begin() as connection:
        ensure_month_partitions(connection, JAN_5, JAN_5)
        version = {"from": day_start(JAN_5) - 4 * DAY, "start": start, "end": start + DAY}
        connection.execute(
            text(
                "INSERT INTO arcadia.resource_versions (resource_id, deployment_id, "
                "inventory_kind, size_gb, status, valid_from, valid_to, recorded_at) "
                "VALUES ('droplet:stray', NULL, 'droplet', NULL, 'active', :from, NULL, :from)"
            ),
            version,
        )
        snapshot_id = connection.execute(
            text(
                "INSERT INTO metering.inventory_snapshots (day, run_id, taken_at, "
                "source_recorded_through, versions, resources, unattributed_resources) "
                "VALUES (:day, 'r', :taken_at, :from, 1, 1, 1) RETURNING snapshot_id"
            ),
            {**version, "day": JAN_5, "taken_at": taken_at},
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO metering.resource_inventory (day, snapshot_id, resource_id, "
                "deployment_id, inventory_kind, billing_kind, accrual, size_gb, status, "
                "valid_from, valid_to, starts_at, ends_at, recorded_at) VALUES (:day, :id, "
                "'droplet:stray', NULL, 'droplet', 'droplet_hours', 'active_hours', NULL, "
                "'active', :from, NULL, :start, :end, :from)"
            ),
            {**version, "day": JAN_5, "id": snapshot_id},
        )
        # The fingerprint as 0008-0009 wrote it: the rows hashed as the snapshot held them.
        i = resource_inventory.c
        held = select(
            i.day,
            literal(UNATTRIBUTED),
            func.count(),
            func.sum(row_hash("r", *(i[name] for name in SNAPSHOT_COLUMNS))),
        ).group_by(i.day)
        connection.execute(
            insert(day_fingerprints).from_select(
                ["day", "deployment_id", "rows", "fingerprint"], held
            )
        )
        connection.execute(
            text(
                "INSERT INTO metering.statement_adjustments (month, deployment_id, billing_kind, "
                "qty_delta, amount_usd) VALUES ('2024-12-01', 'dep-a', 'base', 0, 1.00), "
                "('2024-12-01', 'dep-b', 'base', 0, 2.00)"
            )
        )
        assert set(trigger_arguments(connection).values()) == {""}

    upgrade(source_database, "0010")

    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT deployment_id FROM metering.resource_inventory")
        ).scalars().all() == [UNATTRIBUTED]
        changed = changed_days(connection, None, {JAN_5: taken_at}, LONG_AGO, taken_at)
        assert (changed, differing_days(connection, None, JAN_5, JAN_5)) == (set(), {})
        connection.rollback()
        assert primary_key(connection, "statement_adjustments") == [
            "deployment_id", "adjustment_id",
        ]  # fmt: skip
        assert trigger_arguments(connection) == {
            f"metering.{table}": f"{table}\\000" for table in TERMS_TABLES
        }
    not_null = pytest.raises(IntegrityError, match="deployment_id")
    with not_null, engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE metering.resource_inventory SET deployment_id = NULL "
                "WHERE resource_id = 'droplet:stray'"
            )
        )
    with engine.begin() as connection:  # the serial still numbers every adjustment
        adjustment_id = connection.execute(
            text(
                "INSERT INTO metering.statement_adjustments (month, deployment_id, billing_kind, "
                "qty_delta, amount_usd) VALUES ('2024-12-01', 'dep-a', 'base', 0, 3.00) "
                "RETURNING adjustment_id"
            )
        ).scalar_one()
    assert adjustment_id == 3

    downgrade(source_database, "0009")

    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT deployment_id FROM metering.resource_inventory")
        ).scalars().all() == [None]
        assert primary_key(connection, "statement_adjustments") == ["adjustment_id"]
        assert set(trigger_arguments(connection).values()) == {""}
    upgrade(source_database)
