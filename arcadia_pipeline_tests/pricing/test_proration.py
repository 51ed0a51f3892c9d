"""Proration by existence (pricing/proration.py): the pure reference and the SQL agree to the
cent and to 1e-18 on any history of plan versions, gaps and ends inside a month, to the
microsecond, and a month on one plan is the plan itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.db.schema import inventory_deployments, inventory_snapshots
from arcadia_pipeline.pricing.proration import (
    PlanPeriod,
    covered_seconds,
    metered_spans,
    month_seconds,
    period_bases,
    plan_periods,
    prorated_heads,
    prorated_inclusions,
    prorated_plan,
)
from arcadia_pipeline.utc import DAY, day_start, iter_days, month_end
from arcadia_pipeline_tests.shipped_catalog import PLAN_BASE_USD, PLAN_INCLUDED

D = Decimal
PLANS = {code: Plan(code, PLAN_BASE_USD[code], PLAN_INCLUDED[code]) for code in PLAN_BASE_USD}
# Minimum commitments for the agreement test: one plan without, so mixes of both are drawn.
MINIMUMS = {"starter": D("30.00"), "studio": None, "agency": D("100.01")}
COMMITTED = {code: replace(plan, minimum_usd=MINIMUMS[code]) for code, plan in PLANS.items()}
MONTHS = (date(2026, 2, 1), date(2026, 4, 1), date(2026, 5, 1))
DEPLOYMENTS = "metering.inventory_deployments"


@st.composite
def histories(draw):
    """(month, as_of, metered days, segments): segments [(start, end | None, plan)] in time
    order (gaps left out), the last one maybe open."""
    month = draw(st.sampled_from(MONTHS))
    seconds = month_seconds(month)
    m0 = day_start(month)
    cuts = sorted(
        set(draw(st.lists(st.integers(1, seconds * 10**6 - 1), max_size=4)))
    )  # microseconds
    bounds = [0, *cuts, seconds * 10**6]
    segments = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        plan = draw(st.one_of(st.none(), st.sampled_from(sorted(PLANS))))
        segments.append(
            [m0 + timedelta(microseconds=start), m0 + timedelta(microseconds=end), plan]
        )
    if segments[0][2] is not None and draw(st.booleans()):
        segments[0][0] = m0 - timedelta(days=40)  # began before the month
    if segments[-1][2] is not None and draw(st.booleans()):
        segments[-1][1] = None  # still open
    elif segments[-1][2] is not None and draw(st.booleans()):
        segments[-1][1] = m0 + timedelta(days=50)  # ends after the month
    as_of = draw(st.sampled_from(list(iter_days(month, month_end(month)))))
    # Usually every day through as_of is metered; sometimes only some (as_of among them).
    days = list(iter_days(month, as_of))
    if draw(st.booleans()):
        days = sorted({*draw(st.lists(st.sampled_from(days), max_size=5)), as_of})
    return month, as_of, days, [tuple(s) for s in segments if s[2] is not None]


def day_rows(days: list[date], segments) -> list[dict]:
    """The snapshot rows of the metered days: each version that overlaps the day, clipped."""
    rows = []
    for day in days:
        d0, d1 = day_start(day), day_start(day) + DAY
        for start, end, plan in segments:
            if start < d1 and (end is None or end > d0):
                rows.append(
                    {
                        "day": day, "deployment_id": "dep-h", "name": "H", "plan_code": plan,
                        "starts_at": max(start, d0), "ends_at": min(end or d1, d1),
                        "valid_from": start, "valid_to": end, "recorded_at": start,
                    }
                )  # fmt: skip
    return rows


def covered(as_of: date, days: list[date], rows: list[dict]) -> list[tuple]:
    """(plan, start, end, seconds) of each row's part of its day's span, in time order."""
    spans = metered_spans(days, as_of)
    parts = []
    for r in rows:
        span = spans[r["day"]]
        seconds = covered_seconds(r["valid_from"], r["valid_to"], span)
        if seconds > 0:
            start, end = max(r["valid_from"], span[0]), min(r["valid_to"] or span[1], span[1])
            parts.append((r["plan_code"], start, end, seconds))
    return sorted(parts, key=lambda part: part[1])


def merged_periods(parts: list[tuple]) -> list[PlanPeriod]:
    """Consecutive parts on one plan as one period (a rename), each with its seconds."""
    merged: list[list] = []
    for plan, start, end, seconds in parts:
        if merged and merged[-1][0] == plan and merged[-1][2] == start:
            merged[-1][1] += seconds
            merged[-1][2] = end
        else:
            merged.append([plan, seconds, end])
    return [PlanPeriod(PLANS[plan], seconds) for plan, seconds, _ in merged]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_sql_proration_equals_the_reference(engine, history):
    month, as_of, days, segments = history
    rows = day_rows(days, segments)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE metering.inventory_snapshots, " + DEPLOYMENTS))
        connection.execute(
            text("UPDATE metering.plans SET minimum_usd = CASE plan_code WHEN 'starter' THEN 30"
                 " WHEN 'agency' THEN 100.01 END")
        )  # fmt: skip
        connection.execute(
            inventory_snapshots.insert(),
            [{"day": d, "versions": 0, "resources": 0, "unattributed_resources": 0} for d in days],
        )
        if rows:
            connection.execute(inventory_deployments.insert(), rows)
        heads = connection.execute(select(prorated_heads(as_of).subquery())).mappings().all()
        inclusions = prorated_inclusions(as_of).subquery()
        included = {kind: qty for _, kind, qty in connection.execute(select(inclusions))}
        periods = connection.execute(select(plan_periods(as_of).subquery())).mappings().all()
    parts = covered(as_of, days, rows)
    if not parts:  # did not exist in the month by as_of: no terms at all
        assert (heads, included, periods) == ([], {}, [])
        return
    expected = prorated_plan(
        [PlanPeriod(COMMITTED[plan], seconds) for plan, _, _, seconds in parts],
        month_seconds(month),
    )
    assert [
        (h["deployment_id"], h["plan_code"], h["base_usd"], h["minimum_usd"]) for h in heads
    ] == [("dep-h", expected.plan_code, expected.base_usd, expected.minimum_usd)]
    assert included == expected.included
    shown = periods[0]["plan_periods"]
    merged = merged_periods(parts)
    bases = period_bases(merged, month_seconds(month))
    assert [(p["plan_code"], D(p["base_usd"])) for p in shown] == [
        (p.plan.plan_code, base) for p, base in zip(merged, bases, strict=True)
    ]
    assert sum(bases) == expected.base_usd


def test_a_first_metered_day_speaks_for_the_month_before_it_and_the_last_for_after_it():
    days = [date(2026, 5, 2), date(2026, 5, 5), date(2026, 5, 6)]
    spans = metered_spans(days, date(2026, 5, 6))
    assert spans == {
        date(2026, 5, 2): (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 5, tzinfo=UTC)),
        date(2026, 5, 5): (datetime(2026, 5, 5, tzinfo=UTC), datetime(2026, 5, 6, tzinfo=UTC)),
        date(2026, 5, 6): (datetime(2026, 5, 6, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)),
    }
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    # On one plan since long ago: the whole month whichever days are metered.
    assert sum(covered_seconds(long_ago, None, span) for span in spans.values()) == 31 * 86400
    # Churned on the 15th: to its known end; signed up on the 21st: from its start.
    churn, signup = datetime(2026, 5, 15, tzinfo=UTC), datetime(2026, 5, 21, tzinfo=UTC)
    assert covered_seconds(long_ago, churn, spans[date(2026, 5, 6)]) == 9 * 86400
    assert covered_seconds(signup, None, spans[date(2026, 5, 6)]) == 11 * 86400
    assert covered_seconds(signup, None, spans[date(2026, 5, 2)]) == 0


def test_a_whole_month_on_one_plan_is_the_plan():
    for code, plan in PLANS.items():
        prorated = prorated_plan([PlanPeriod(plan, D(month_seconds(MONTHS[2])))], 2678400)
        assert prorated == plan, code


def test_the_issue_s_plan_change_on_the_16th():
    # starter 05-01 -> 05-16 00:00, then studio: 20 x 15/31 + 50 x 16/31 = 35.4838… -> 35.48;
    # droplet hours 744 x 15/31 + 2232 x 16/31 = 360 + 1152.
    day = D(86400)
    periods = [PlanPeriod(PLANS["starter"], 15 * day), PlanPeriod(PLANS["studio"], 16 * day)]
    terms = prorated_plan(periods, 31 * 86400)
    assert (terms.plan_code, terms.base_usd) == ("studio", D("35.48"))
    assert terms.included["droplet_hours"] == 1512
    assert period_bases(periods, 31 * 86400) == [D("9.68"), D("25.80")]


def test_a_minimum_is_prorated_like_the_base_fee_a_plan_without_one_counting_zero():
    # starter (30.00) 05-01 -> 05-16, then studio (none): 30 x 15/31 = 14.516… -> 14.52.
    day = D(86400)
    starter, studio = COMMITTED["starter"], COMMITTED["studio"]
    periods = [PlanPeriod(starter, 15 * day), PlanPeriod(studio, 16 * day)]
    assert prorated_plan(periods, 31 * 86400).minimum_usd == D("14.52")
    assert prorated_plan([PlanPeriod(studio, 31 * day)], 31 * 86400).minimum_usd is None
    assert prorated_plan([PlanPeriod(starter, 31 * day)], 31 * 86400).minimum_usd == D("30.00")


def test_a_sign_up_on_the_21st():
    terms = prorated_plan([PlanPeriod(PLANS["starter"], D(11 * 86400))], 31 * 86400)
    assert terms.base_usd == D("7.10")
    assert terms.included["droplet_hours"] == 264
    assert terms.included["spaces_gb_month"] == D("17.741935483870967742")


@pytest.mark.parametrize("periods", [[], [PlanPeriod(PLANS["starter"], D(32 * 86400))]])
def test_no_periods_or_more_than_the_month_is_refused(periods):
    with pytest.raises(ValueError):
        prorated_plan(periods, 31 * 86400)
