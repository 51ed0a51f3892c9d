"""What the quote engine reads: usage_for_period and live month-to-date quotes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, func, select

from arcadia_pipeline.billing.pricing import Plan, Quote, price_quote
from arcadia_pipeline.db.schema import overage_prices, plan_items, plans, usage_records
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.metering.sql import records_of_days
from arcadia_pipeline.utc import month_start


def usage_for_period(
    connection: Connection, deployment_id: str, start_date: date, end_date: date
) -> dict[str, Decimal]:
    """SUM(qty) per billing kind over the inclusive UTC date range [start_date, end_date]."""
    if start_date > end_date:
        raise ValueError(f"start date {start_date} is after end date {end_date}")
    u = usage_records.c
    rows = connection.execute(
        select(u.resource_kind, func.sum(u.qty))
        .where(u.deployment_id == deployment_id, records_of_days(start_date, end_date))
        .group_by(u.resource_kind)
        .order_by(u.resource_kind)
    ).all()
    return {kind: qty for kind, qty in rows}


def load_plan(connection: Connection, plan_code: str) -> Plan:
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
    rows = connection.execute(select(overage_prices)).all()
    return {kind: price for kind, price in rows}


def month_to_date_quote(
    connection: Connection, deployment_id: str, plan_code: str, as_of: date
) -> Quote:
    """The quote for as_of's billing month from its first day through as_of."""
    period_start = month_start(as_of)
    usage = usage_for_period(connection, deployment_id, period_start, as_of)
    return price_quote(
        deployment_id,
        load_plan(connection, plan_code),
        load_prices(connection),
        usage,
        period_start,
        as_of,
    )
