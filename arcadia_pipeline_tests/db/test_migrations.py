"""Migrations are history: they import no live code, and a database migrated to head holds
exactly the catalog, kind map and config the code ships."""

import ast
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import MIGRATIONS, upgrade
from arcadia_pipeline.db.schema import kind_map, metering_config, overage_prices, plan_items, plans
from arcadia_pipeline_tests.shipped_catalog import (
    DEFAULT_GRANULARITY,
    DEFAULT_KIND_MAP,
    DEFAULT_RETENTION_DAYS,
    OVERAGE_UNIT_PRICE_USD,
    PLAN_BASE_USD,
    PLAN_INCLUDED,
)

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
        assert rows(overage_prices, "billing_kind", "unit_price_usd") == set(
            OVERAGE_UNIT_PRICE_USD.items()
        )
