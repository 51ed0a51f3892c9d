"""The terms a deployment is priced on: the catalog as it is now (`metering.plans`,
`plan_items`, `overage_prices`), or the terms a closed month froze (its statements' plan and
base fee, its lines' included quantities and unit prices)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, select

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.db.schema import (
    monthly_statement_lines,
    monthly_statements,
    overage_prices,
    plan_items,
    plans,
)
from arcadia_pipeline.errors import BadSourceData


def load_plan(connection: Connection, plan_code: str) -> Plan:
    """The catalog's plan now; BadSourceData when it is not in `metering.plans`."""
    base = connection.execute(
        select(plans.c.base_usd).where(plans.c.plan_code == plan_code)
    ).scalar_one_or_none()
    if base is None:
        raise BadSourceData(f"plan {plan_code!r} is not in metering.plans")
    included = connection.execute(
        select(plan_items.c.billing_kind, plan_items.c.included_qty).where(
            plan_items.c.plan_code == plan_code
        )
    ).all()
    return Plan(plan_code, base, {kind: qty for kind, qty in included})


def load_prices(connection: Connection) -> dict[str, Decimal]:
    """The catalog's overage unit price (USD) of each billing kind now."""
    rows = connection.execute(select(overage_prices)).all()
    return {kind: price for kind, price in rows}


def frozen_heads(month: date):
    """(deployment_id, plan_code, base_usd, plan_periods) of the month's closed statements."""
    s = monthly_statements.c
    return (
        select(s.deployment_id, s.plan_code, s.base_usd, s.plan_periods)
        .where(s.month == month, s.status == "closed")
        .subquery("frozen_heads")
    )


def frozen_lines(month: date):
    """(deployment_id, billing_kind, included_qty, unit_price_usd) of the month's closed
    statement lines: the terms each closed line keeps whatever the catalog says later."""
    line, s = monthly_statement_lines.c, monthly_statements.c
    return (
        select(line.deployment_id, line.billing_kind, line.included_qty, line.unit_price_usd)
        .join_from(
            monthly_statement_lines,
            monthly_statements,
            (s.month == line.month) & (s.deployment_id == line.deployment_id),
        )
        .where(line.month == month, s.status == "closed")
        .subquery("frozen_lines")
    )
