"""The terms a deployment is priced on: the catalog in effect for a billing month
(`metering.plans`, `plan_items`, `overage_tiers`, `billing_caps`: db/terms.py), or the terms
a closed month froze (its statements' plan and base fee, its lines' included quantities)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, select

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.db.schema import (
    billing_caps,
    monthly_statement_lines,
    monthly_statements,
    overage_tiers,
    plan_items,
    plans,
)
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.pricing.tiers import Tier
from arcadia_pipeline.utc import month_text


def load_plan(connection: Connection, plan_code: str, month: date) -> Plan:
    """The plan as the catalog has it for the billing month of `month`; BadSourceData when
    it is not in that month's `metering.plans`."""
    p, i = in_effect(plans, month).c, in_effect(plan_items, month).c
    row = connection.execute(
        select(p.base_usd, p.minimum_usd).where(p.plan_code == plan_code)
    ).one_or_none()
    if row is None:
        raise BadSourceData(f"plan {plan_code!r} is not in metering.plans for {month_text(month)}")
    included = connection.execute(
        select(i.billing_kind, i.included_qty).where(i.plan_code == plan_code)
    ).all()
    return Plan(plan_code, row.base_usd, {kind: qty for kind, qty in included}, row.minimum_usd)


def load_tiers(connection: Connection, plan_code: str, month: date) -> dict[str, list[Tier]]:
    """{billing_kind: its graduated overage tiers, lowest first} of the plan for the billing
    month of `month` (USD per unit of the kind; the last tier open)."""
    t = in_effect(overage_tiers, month).c
    rows = connection.execute(
        select(t.billing_kind, t.up_to_qty, t.unit_price_usd)
        .where(t.plan_code == plan_code)
        .order_by(t.billing_kind, t.up_to_qty.asc().nulls_last())
    ).all()
    tiers: dict[str, list[Tier]] = {}
    for kind, up_to, price in rows:  # a plan's handful of tiers
        tiers.setdefault(kind, []).append(Tier(up_to, price))
    return tiers


def load_caps(connection: Connection, month: date) -> dict[str, Decimal]:
    """{billing_kind: monthly cap qty per resource} in effect for the billing month of
    `month` (a kind without a row has no cap)."""
    c = in_effect(billing_caps, month).c
    return dict(connection.execute(select(c.billing_kind, c.monthly_cap_qty)).all())


def frozen_heads(month: date):
    """(deployment_id, plan_code, base_usd, plan_periods, minimum_usd) of the month's closed
    statements."""
    s = monthly_statements.c
    return (
        select(s.deployment_id, s.plan_code, s.base_usd, s.plan_periods, s.minimum_usd)
        .where(s.month == month, s.status == "closed")
        .subquery("frozen_heads")
    )


def frozen_lines(month: date):
    """(deployment_id, billing_kind, included_qty) of the month's closed statement lines: the
    inclusion each closed line keeps whatever the deployment's history says later (its tiers
    are the closed month's catalog, which never changes)."""
    line, s = monthly_statement_lines.c, monthly_statements.c
    return (
        select(line.deployment_id, line.billing_kind, line.included_qty)
        .join_from(
            monthly_statement_lines,
            monthly_statements,
            (s.month == line.month) & (s.deployment_id == line.deployment_id),
        )
        .where(line.month == month, s.status == "closed")
        .subquery("frozen_lines")
    )
