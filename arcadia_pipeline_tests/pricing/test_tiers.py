"""Caps, graduated tiers and the minimum commitment (issue 19): the issue's right values on
the pure reference, and each SQL twin agreeing with it to the cent on a real PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Numeric, literal, select

from arcadia_pipeline.pricing.rules import overage_qty
from arcadia_pipeline.pricing.tiers import (
    BadTiers,
    Tier,
    billable_qty,
    billable_qty_sql,
    check_tiers,
    graduated_usd,
    marginal_price,
    minimum_true_up,
    minimum_true_up_sql,
    tier_charges,
)
from arcadia_pipeline_tests.pricing.graduated_sql import sql_graduated

D = Decimal
STARTER_BASE = D("20.00")
STARTER_INCLUDED_HOURS = D(744)
DROPLET_PRICE = D("0.00893")
MAY_HOURS = D(31 * 24)  # one droplet running all of May 2026
FLAT = [Tier(None, DROPLET_PRICE)]  # today's one price, as the migration will carry it
STARTER_TIERS = [Tier(D(200), D("0.01")), Tier(None, D("0.008"))]


def starter_may(cap, tiers, minimum=None):
    """The issue's starter deployment in May 2026 with two droplets running all month:
    (billable hours, overage hours, overage USD, minimum true-up, total)."""
    billable = sum((billable_qty(MAY_HOURS, cap) for _ in range(2)), D(0))
    overage = overage_qty(billable, STARTER_INCLUDED_HOURS)
    amount = graduated_usd(overage, tiers)
    true_up = minimum_true_up(STARTER_BASE + amount, minimum)
    return billable, overage, amount, true_up, STARTER_BASE + amount + true_up


def test_no_cap_one_open_tier_is_todays_price():
    assert starter_may(None, FLAT) == (D(1488), D(744), D("6.64"), D("0.00"), D("26.64"))


def test_a_cap_of_672_hours_per_droplet():
    assert starter_may(D(672), FLAT) == (D(1344), D(600), D("5.36"), D("0.00"), D("25.36"))


def test_and_starters_droplet_tiers():
    assert starter_may(D(672), STARTER_TIERS)[2:] == (D("5.20"), D("0.00"), D("25.20"))
    charges = tier_charges(D(600), STARTER_TIERS)
    assert [(c.from_qty, c.up_to_qty, c.qty, c.amount_usd) for c in charges] == [
        (D(0), D(200), D(200), D("2.00")),
        (D(200), None, D(400), D("3.200")),
    ]


def test_and_a_minimum_of_30():
    assert starter_may(D(672), STARTER_TIERS, D("30.00"))[3:] == (D("4.80"), D("30.00"))


def test_a_total_above_the_minimum_needs_no_true_up():
    assert minimum_true_up(D("30.01"), D("30.00")) == 0
    assert minimum_true_up(D("12.34"), None) == 0


def test_one_rounding_per_line_not_per_tier():
    # 0.005 + 0.005 in two tiers: 0.01 once, not 0.01 + 0.01.
    tiers = [Tier(D(1), D("0.005")), Tier(None, D("0.005"))]
    assert graduated_usd(D(2), tiers) == D("0.01")


@pytest.mark.parametrize(
    ("tiers", "refused"),
    [
        ([], "no tier"),
        ([Tier(D(10), D(1))], "must be open"),
        ([Tier(None, D(1)), Tier(None, D(2))], "is not the last"),
        ([Tier(D(10), D(1)), Tier(D(10), D(1)), Tier(None, D(1))], "is not above 10"),
        ([Tier(D(0), D(1)), Tier(None, D(1))], "is not above 0"),
        ([Tier(D("NaN"), D(1)), Tier(None, D(1))], "is not above"),
        ([Tier(None, D("-0.01"))], "is not >= 0"),
        ([Tier(None, D("Infinity"))], "is not >= 0"),
    ],
)
def test_tiers_that_do_not_cover_the_overage_once_are_refused(tiers, refused):
    with pytest.raises(BadTiers, match=refused):
        check_tiers(tiers)


# ---- the SQL twins agree -----------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False)
prices = st.decimals(min_value=0, max_value=100, places=5, allow_nan=False)


@st.composite
def tier_lists(draw):
    bounds = sorted(set(draw(st.lists(quantities.filter(lambda q: q > 0), max_size=4))))
    return [Tier(b, draw(prices)) for b in bounds] + [Tier(None, draw(prices))]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(st.tuples(quantities, tier_lists()), min_size=1, max_size=8))
def test_graduated_usd_sql_agrees_to_the_cent(engine, cases):
    assert sql_graduated(engine, cases) == [
        (marginal_price(o, t), graduated_usd(o, t)) for o, t in cases
    ]


def test_the_issues_tiers_in_sql(engine):
    assert sql_graduated(
        engine, [(D(600), STARTER_TIERS), (D(744), FLAT), (D(0), FLAT), (D(0), STARTER_TIERS)]
    ) == [
        (D("0.008"), D("5.20")),
        (DROPLET_PRICE, D("6.64")),
        (DROPLET_PRICE, D("0.00")),
        (D("0.01"), D("0.00")),  # no overage: the first tier's price
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    qty=quantities,
    cap=st.none() | quantities,
    total=st.decimals(min_value=0, max_value=10**6, places=2),
    minimum=st.none() | st.decimals(min_value=0, max_value=10**6, places=4),
)
def test_caps_and_minimum_sql_agree(engine, qty, cap, total, minimum):
    with engine.connect() as connection:
        billable, true_up = connection.execute(
            select(
                billable_qty_sql(literal(qty, Numeric), literal(cap, Numeric)),
                minimum_true_up_sql(literal(total, Numeric), literal(minimum, Numeric)),
            )
        ).one()
    assert billable == billable_qty(qty, cap)
    assert true_up == minimum_true_up(total, minimum)
