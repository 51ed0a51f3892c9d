"""The quote rule (docs/domain.md "Plan catalog"): base + per kind
round_half_up(max(0, usage - included) x unit_price, 0.01) for a kind on one open tier (the
shipped catalog), the pure reference and its SQL twin `graduated_usd_sql` evaluated on a
real PostgreSQL. Several tiers: test_tiers.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.pricing.reference import UnpricedKind, price_quote
from arcadia_pipeline.pricing.rules import decimal_text, money_text, overage_qty
from arcadia_pipeline.pricing.tiers import Tier, graduated_usd
from arcadia_pipeline_tests.pricing.graduated_sql import sql_graduated
from arcadia_pipeline_tests.shipped_catalog import (
    OVERAGE_UNIT_PRICE_USD,
    PLAN_BASE_USD,
    PLAN_INCLUDED,
)

D = Decimal

# docs/domain.md's tables, typed in again so the shipped catalog is checked against the contract.
CONTRACT_PRICES = {
    "droplet_hours": D("0.00893"),
    "spaces_gb_month": D("0.02"),
    "snapshot_gb_month": D("0.06"),
    "droplet_backup_gb_month": D("0.05"),
    "dns_zones": D("0.50"),
}
CONTRACT_PLANS = {  # plan: (base, droplet_hours, spaces, snapshot, backup, dns_zones)
    "starter": (D("20.00"), 744, 50, 25, 25, 3),
    "studio": (D("50.00"), 2232, 250, 100, 100, 10),
    "agency": (D("150.00"), 7440, 1000, 500, 500, 50),
}
KINDS = tuple(CONTRACT_PRICES)
STARTER = Plan(
    "starter",
    CONTRACT_PLANS["starter"][0],
    {kind: D(n) for kind, n in zip(KINDS, CONTRACT_PLANS["starter"][1:], strict=True)},
)


def overage_usd(usage: Decimal, included: Decimal, unit_price: Decimal) -> Decimal:
    """The line amount of a kind on one open tier at unit_price."""
    return graduated_usd(overage_qty(usage, included), [Tier(None, unit_price)])


def sql_overages(engine, cases) -> list[Decimal]:
    """The SQL twin's amount of every (usage, included, unit_price), all in one SELECT."""
    lines = [(overage_qty(u, i), [Tier(None, p)]) for u, i, p in cases]
    return [amount for _, amount in sql_graduated(engine, lines)]


# ---- cent rounding -----------------------------------------------------------------------

# (usage, included, unit_price, expected USD): half-up, never banker's rounding or float.
ROUNDING_CASES = [
    pytest.param(D("0.005"), D(0), D(1), D("0.01"), id="half-cent-rounds-up"),
    pytest.param(D("0.004999"), D(0), D(1), D("0.00"), id="just-below-half-cent"),
    pytest.param(D("1.125"), D(0), D(1), D("1.13"), id="1.125"),
    pytest.param(D("2.675"), D(0), D(1), D("2.68"), id="2.675-float-trap"),
    pytest.param(D("0.025"), D(0), D(1), D("0.03"), id="0.025-half-even-would-give-0.02"),
    pytest.param(D("10.5"), D(10), D("0.05"), D("0.03"), id="0.025-via-price"),
    pytest.param(D("3"), D(10), D("0.50"), D("0.00"), id="usage-below-included"),
    pytest.param(D("10"), D(10), D("0.50"), D("0.00"), id="usage-equals-included"),
    pytest.param(D("0"), D(0), D("0.50"), D("0.00"), id="nothing"),
]


@pytest.mark.parametrize(("usage", "included", "price", "expected"), ROUNDING_CASES)
def test_overage_usd_rounds_half_up_to_the_cent(usage, included, price, expected):
    amount = overage_usd(usage, included, price)
    assert amount == expected
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(("usage", "included", "price", "expected"), ROUNDING_CASES)
def test_overage_usd_sql_rounds_half_up_to_the_cent(engine, usage, included, price, expected):
    [amount] = sql_overages(engine, [(usage, included, price)])
    assert amount == expected
    assert amount.as_tuple().exponent == -2


def test_no_negative_overage():
    # Unused allowance is not a credit.
    assert overage_qty(D("100"), D("744")) == 0
    assert overage_usd(D("100"), D("744"), D("0.00893")) == 0
    assert overage_qty(D("744.000000000000000001"), D("744")) == D("1E-18")


@pytest.mark.parametrize(
    ("kind", "usage", "expected_qty", "expected_usd"),
    [
        # starter includes 744 h: 256 h x 0.00893 = 2.28608
        ("droplet_hours", D(1000), D(256), D("2.29")),
        ("spaces_gb_month", D(60), D(10), D("0.20")),
        ("snapshot_gb_month", D("25.5"), D("0.5"), D("0.03")),
        # 1.5 GB-month x 0.05 = 0.075: a half cent, up
        ("droplet_backup_gb_month", D("26.5"), D("1.5"), D("0.08")),
        ("dns_zones", D(4), D(1), D("0.50")),
    ],
)
def test_overage_of_each_billing_kind_at_design_prices(kind, usage, expected_qty, expected_usd):
    included = STARTER.included[kind]
    assert overage_qty(usage, included) == expected_qty
    assert overage_usd(usage, included, CONTRACT_PRICES[kind]) == expected_usd


def test_shipped_catalog_is_the_design_catalog(engine):
    assert OVERAGE_UNIT_PRICE_USD == CONTRACT_PRICES
    for plan, (base, *included) in CONTRACT_PLANS.items():
        assert PLAN_BASE_USD[plan] == base
        assert PLAN_INCLUDED[plan] == dict(zip(KINDS, map(D, included), strict=True))
    # ... and it is what the migration loaded into the database the SQL quotes read.
    with engine.connect() as connection:
        tiers = connection.execute(
            text("SELECT plan_code, billing_kind, up_to_qty, unit_price_usd"
                 " FROM metering.overage_tiers")
        ).all()  # fmt: skip
        bases = dict(
            connection.execute(text("SELECT plan_code, base_usd FROM metering.plans")).all()
        )
        items = connection.execute(
            text("SELECT plan_code, billing_kind, included_qty FROM metering.plan_items")
        ).all()
    # One open tier per plan and kind, at the kind's one price.
    assert sorted(tiers) == sorted(
        (plan, kind, None, price)
        for plan in CONTRACT_PLANS
        for kind, price in CONTRACT_PRICES.items()
    )
    assert bases == {plan: base for plan, (base, *_) in CONTRACT_PLANS.items()}
    assert {(p, k): q for p, k, q in items} == {
        (plan, kind): D(n)
        for plan, (_, *included) in CONTRACT_PLANS.items()
        for kind, n in zip(KINDS, included, strict=True)
    }


# ---- the SQL twin agrees -----------------------------------------------------------------

# Usage sums of 18-decimal qtys; 3-decimal ones hit half cents often. Magnitudes keep every
# product within 28 significant digits (Decimal's default context): see the test after next.
usages = st.decimals(0, 10**4, places=18) | st.decimals(0, 10**4, places=3)
includeds = st.decimals(0, 10**4, places=3) | st.sampled_from([D(0), D(744), D(7440)])
prices = st.sampled_from([*CONTRACT_PRICES.values(), D(1)]) | st.decimals(0, 10, places=4)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(st.tuples(usages, includeds, prices), min_size=1, max_size=25))
def test_overage_usd_sql_equals_reference(engine, cases):
    assert sql_overages(engine, cases) == [overage_usd(*case) for case in cases]


# A usage of 11.2 M droplet-hours (~15,000 droplets all month) whose exact overage is
# 100002.95499999999999999999998 USD, and a 1e10 usage just under a half cent.
LARGE_USAGE_CASES = [
    pytest.param(D("11205979.193729003359462486"), D(7440), D("0.00893"), id="droplet-hours"),
    pytest.param(D("10000000000.004999999999999999"), D(0), D(1), id="price-1"),
]


@pytest.mark.parametrize(("usage", "included", "price"), LARGE_USAGE_CASES)
def test_overage_usd_is_exact_for_large_usage(engine, usage, included, price):
    # docs/domain.md: money is rounded only on the quote's lines. The exact amount is below a
    # half cent, so half-up must round it down; the SQL twin (exact numeric) does.
    exact = (Fraction(usage) - Fraction(included)) * Fraction(price)
    expected = round_half_up_cents(exact)
    assert exact - Fraction(expected) < Fraction(1, 200)  # really below the half cent
    assert sql_overages(engine, [(usage, included, price)]) == [expected]
    assert overage_usd(usage, included, price) == expected


def round_half_up_cents(amount: Fraction) -> Decimal:
    cents = (amount * 100 + Fraction(1, 2)).__floor__()
    return D(cents).scaleb(-2)


# ---- quotes ------------------------------------------------------------------------------


def quote(usage, plan=STARTER, prices=CONTRACT_PRICES):
    tiers = {kind: [Tier(None, price)] for kind, price in prices.items()}
    return price_quote("dep-1", plan, tiers, usage, date(2025, 3, 1), date(2025, 3, 17))


def test_quote_total_is_base_plus_lines():
    q = quote(
        {
            "droplet_hours": D(1000),
            "spaces_gb_month": D(60),
            "snapshot_gb_month": D(30),
            "droplet_backup_gb_month": D("26.5"),
            "dns_zones": D(4),
        }
    )
    amounts = {line.billing_kind: line.overage_usd for line in q.lines}
    assert amounts == {
        "dns_zones": D("0.50"),
        "droplet_backup_gb_month": D("0.08"),
        "droplet_hours": D("2.29"),
        "snapshot_gb_month": D("0.30"),
        "spaces_gb_month": D("0.20"),
    }
    assert q.total_usd == q.base_usd + sum(amounts.values()) == D("23.37")
    assert (q.deployment_id, q.plan_code, q.period_start, q.as_of) == (
        "dep-1",
        "starter",
        date(2025, 3, 1),
        date(2025, 3, 17),
    )


def test_quote_has_a_readable_line_for_every_included_or_used_kind():
    # No usage at all: one zero line per included kind, and the base is not prorated.
    q = quote({})
    assert [line.billing_kind for line in q.lines] == sorted(KINDS)
    assert all(line.usage == line.overage_qty == line.overage_usd == 0 for line in q.lines)
    assert q.total_usd == D("20.00")
    # A priced kind the plan does not include is charged from the first unit.
    plan = Plan("tiny", D("5.00"), {"droplet_hours": D(10)})
    q = quote({"droplet_hours": D(12), "dns_zones": D(2)}, plan=plan)
    [zones, hours] = q.lines  # sorted by billing kind
    assert (hours.usage, hours.included, hours.overage_qty) == (D(12), D(10), D(2))
    assert (hours.unit_price_usd, hours.overage_usd) == (D("0.00893"), D("0.02"))
    assert (zones.usage, zones.included, zones.overage_qty, zones.overage_usd) == (
        D(2),
        D(0),
        D(2),
        D("1.00"),
    )
    assert q.total_usd == D("6.02")


def test_unknown_kind_raises_unpriced_kind():
    with pytest.raises(UnpricedKind, match="gpu_hours.*dep-1"):
        quote({"droplet_hours": D(1), "gpu_hours": D(3)})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("24.000", "24"),
        ("1E-3", "0.001"),
        ("-0.0", "0"),
        ("0", "0"),
        ("1E+2", "100"),
        ("0.032258064516129032", "0.032258064516129032"),
        ("-75.4635000", "-75.4635"),
    ],
)
def test_decimal_text_is_exact_without_exponent_or_trailing_zeros(value, text):
    assert decimal_text(Decimal(value)) == text


@pytest.mark.parametrize(
    ("value", "text"), [("-3", "-3.00"), ("0.005", "0.01"), ("-0.005", "-0.01"), ("2.344", "2.34")]
)
def test_money_text_has_two_decimals_rounded_half_up(value, text):
    assert money_text(Decimal(value)) == text
