"""Migration 0012's pricing terms: caps, graduated tiers and minimums as catalog data,
today's prices carried over as one open tier per plan (overage_prices dropped), bad rows
refused by name, guarded like every term, and a downgrade that gives overage_prices back
and refuses to lose terms of their own."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.db.schema import overage_tiers
from arcadia_pipeline.db.terms import in_effect

MAY, JUNE = date(2026, 5, 1), date(2026, 6, 1)
SINCE_ALWAYS = date(1970, 1, 1)
PLAN_CODES = ("starter", "studio", "agency")
# The overage prices migration 0001 shipped, in effect since 1970-01 (0007): what 0012 carried
# over as one open tier per plan before dropping overage_prices.
SHIPPED_PRICES = {
    "droplet_hours": Decimal("0.00893"),
    "spaces_gb_month": Decimal("0.02"),
    "snapshot_gb_month": Decimal("0.06"),
    "droplet_backup_gb_month": Decimal("0.05"),
    "dns_zones": Decimal("0.50"),
}


def rows(engine, query: str, **params) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(query), params)]


def test_todays_prices_are_one_open_tier_per_plan_and_nothing_else_is_shipped(engine):
    tiers = rows(
        engine,
        "SELECT plan_code, billing_kind, up_to_qty, unit_price_usd, effective_from"
        " FROM metering.overage_tiers",
    )
    expected = [
        (plan, kind, None, price, SINCE_ALWAYS)
        for plan in PLAN_CODES
        for kind, price in SHIPPED_PRICES.items()
    ]
    assert sorted(tiers) == sorted(expected)
    assert len(tiers) == 3 * 5  # three plans, five billing kinds
    # Replaced, not kept alongside: no price in two places.
    assert rows(engine, "SELECT to_regclass('metering.overage_prices')") == [(None,)]
    assert rows(engine, "SELECT * FROM metering.billing_caps") == []
    assert rows(engine, "SELECT count(*) FROM metering.plans WHERE minimum_usd IS NOT NULL") == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', 'NaN', 0.01, '2026-06-01')",
            "overage_tiers_bound_is_positive_and_finite",
        ),
        (
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', 'Infinity', 0.01, '2026-06-01')",
            "overage_tiers_bound_is_positive_and_finite",
        ),
        (
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', 0, 0.01, '2026-06-01')",
            "overage_tiers_bound_is_positive_and_finite",
        ),
        (
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', 200, -0.01, '2026-06-01')",
            "overage_tiers_price_is_not_negative_and_finite",
        ),
        (
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', 200, 'NaN', '2026-06-01')",
            "overage_tiers_price_is_not_negative_and_finite",
        ),
        (  # a second open tier of starter's droplet hours from 1970-01
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', NULL, 0.02, '1970-01-01')",
            "overage_tiers_one_tier_per_bound",
        ),
        (
            "INSERT INTO metering.billing_caps VALUES ('droplet_hours', 0, '2026-06-01')",
            "billing_caps_cap_is_positive_and_finite",
        ),
        (
            "INSERT INTO metering.billing_caps VALUES ('droplet_hours', 'NaN', '2026-06-01')",
            "billing_caps_cap_is_positive_and_finite",
        ),
        (
            "INSERT INTO metering.billing_caps VALUES ('droplet_hours', 672, '2026-06-15')",
            "billing_caps_effective_from_is_a_month",
        ),
        (
            "UPDATE metering.plans SET minimum_usd = -1 WHERE plan_code = 'starter'",
            "plans_minimum_is_not_negative",
        ),
    ],
)
def test_a_bad_row_is_refused_naming_its_rule(engine, statement, constraint):
    with pytest.raises(IntegrityError, match=constraint), engine.begin() as connection:
        connection.execute(text(statement))


def test_a_cap_reaching_a_closed_month_is_refused_and_one_after_it_is_logged(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.statement_months (month, closed_at, repriced_at)"
                " VALUES ('2026-05-01', now(), now())"
            )
        )
        connection.execute(text("TRUNCATE metering.terms_changes"))
    refused = r"metering\.billing_caps: a row in effect from 2026-05 would change"
    with pytest.raises(IntegrityError, match=refused), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO metering.billing_caps VALUES ('droplet_hours', 672, '2026-05-01')")
        )
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO metering.billing_caps VALUES ('droplet_hours', 672, '2026-06-01')")
        )
    assert rows(engine, "SELECT terms, effective_from FROM metering.terms_changes") == [
        ("billing_caps", JUNE)
    ]


def test_a_month_reads_every_tier_of_its_latest_version_and_no_older_one(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.overage_tiers VALUES"
                " ('starter', 'droplet_hours', 200, 0.01, '2026-06-01'),"
                " ('starter', 'droplet_hours', NULL, 0.008, '2026-06-01')"
            )
        )

    def tiers(month: date, plan: str) -> list[tuple]:
        t = in_effect(overage_tiers, month).c
        with engine.connect() as connection:
            return connection.execute(
                select(t.up_to_qty, t.unit_price_usd)
                .where(t.plan_code == plan, t.billing_kind == "droplet_hours")
                .order_by(t.up_to_qty.nulls_last())
            ).all()

    assert tiers(MAY, "starter") == [(None, Decimal("0.00893"))]
    assert tiers(JUNE, "starter") == [(Decimal(200), Decimal("0.01")), (None, Decimal("0.008"))]
    assert tiers(JUNE, "studio") == [(None, Decimal("0.00893"))]


OVERAGE_PRICES = "SELECT billing_kind, unit_price_usd, effective_from FROM metering.overage_prices"
TIERS = "SELECT * FROM metering.overage_tiers"
A_FLAT_PRICE_FROM_JUNE = (  # a price change as a data load makes it: one open tier per plan
    "INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty, unit_price_usd,"
    " effective_from) SELECT DISTINCT plan_code, 'droplet_hours', NULL::numeric, 0.01,"
    " DATE '2026-06-01' FROM metering.plans"
)


def test_downgrade_gives_overage_prices_back_each_kinds_flat_price(scratch_database):
    upgrade(scratch_database)
    engine = make_engine(scratch_database)
    with engine.begin() as connection:
        connection.execute(text(A_FLAT_PRICE_FROM_JUNE))
    tiers = set(rows(engine, TIERS))
    downgrade(scratch_database, "0011")  # one flat price per kind and month: it may go back
    assert sorted(rows(engine, OVERAGE_PRICES)) == sorted(
        [
            *((kind, price, SINCE_ALWAYS) for kind, price in SHIPPED_PRICES.items()),
            ("droplet_hours", Decimal("0.01"), JUNE),
        ]
    )
    with engine.begin() as connection:  # guarded again, as 0011 left it
        connection.execute(
            text(
                "INSERT INTO metering.statement_months (month, closed_at, repriced_at)"
                " VALUES ('2026-05-01', now(), now())"
            )
        )
    refused = r"metering\.overage_prices: a row in effect from 2026-05 would change"
    with pytest.raises(IntegrityError, match=refused), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO metering.overage_prices VALUES ('dns_zones', 0.60, '2026-05-01')")
        )
    upgrade(scratch_database)  # and up again: the same tiers
    assert set(rows(engine, TIERS)) == tiers
    engine.dispose()


@pytest.mark.parametrize(
    "term",
    [
        "INSERT INTO metering.billing_caps VALUES ('droplet_hours', 672, '2026-06-01')",
        "UPDATE metering.plans SET minimum_usd = 10 WHERE plan_code = 'starter'",
        # a bounded tier, even priced as the open tier after it, on every plan
        "INSERT INTO metering.overage_tiers SELECT DISTINCT plan_code, 'droplet_hours', up_to,"
        " 0.01, DATE '2026-06-01' FROM metering.plans, (VALUES (200), (NULL)) bounds (up_to)",
        # one flat price per plan, not the same on every plan
        "INSERT INTO metering.overage_tiers VALUES"
        " ('starter', 'droplet_hours', NULL, 0.01, '2026-06-01'),"
        " ('studio', 'droplet_hours', NULL, 0.02, '2026-06-01'),"
        " ('agency', 'droplet_hours', NULL, 0.01, '2026-06-01')",
        # a new price for some plans only: as overage_prices it would reprice the others
        "INSERT INTO metering.overage_tiers VALUES"
        " ('starter', 'droplet_hours', NULL, 0.01, '2026-06-01')",
    ],
    ids=["a cap", "a minimum", "a bounded tier", "prices apart per plan", "some plans only"],
)
def test_downgrade_refuses_to_lose_a_term_of_its_own(scratch_database, term):
    upgrade(scratch_database)
    engine = make_engine(scratch_database)
    with engine.begin() as connection:
        connection.execute(text(term))

    def terms() -> list[set]:
        return [
            set(rows(engine, f"SELECT * FROM metering.{table}"))
            for table in ("billing_caps", "plans", "overage_tiers")
        ]

    kept = terms()
    with pytest.raises(OperationalError, match="would lose caps, tiers or minimums"):
        downgrade(scratch_database, "0011")
    assert terms() == kept
    assert rows(engine, "SELECT to_regclass('metering.overage_prices')") == [(None,)]
    engine.dispose()


def test_upgrade_refuses_a_closed_line_priced_otherwise_than_its_months_catalog(
    scratch_database,
):
    # A month closed at 0.00893 a droplet hour, whose price was later edited in place (as
    # before 0007's guard): from 0012 it would be re-priced at 0.01, so 0012 refuses.
    upgrade(scratch_database, "0011")
    engine = make_engine(scratch_database)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.monthly_statements (month, deployment_id, plan_code,"
                " status, base_usd, total_usd) VALUES"
                " ('2026-04-01', 'dep-1', 'starter', 'draft', 20.00, 20.00);"
                " INSERT INTO metering.monthly_statement_lines VALUES ('2026-04-01', 'dep-1',"
                " 'droplet_hours', 700, 744, 0, 0.00893, 0.00);"
                " UPDATE metering.monthly_statements SET status = 'closed',"
                " closed_at = '2026-05-04';"
                " ALTER TABLE metering.overage_prices"
                " DISABLE TRIGGER overage_prices_closed_months_never_change;"
                " UPDATE metering.overage_prices SET unit_price_usd = 0.01"
                " WHERE billing_kind = 'droplet_hours'"
            )
        )
    with pytest.raises(RuntimeError, match=r"closed 2026-04 billed droplet_hours at 0\.00893"):
        upgrade(scratch_database)
    assert rows(engine, "SELECT to_regclass('metering.overage_tiers')") == [(None,)]
    engine.dispose()
