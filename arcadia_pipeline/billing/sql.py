"""Set-based SQL of the billing assets: period-to-date aggregates and month-to-date quotes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    MetaData,
    Numeric,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    union,
    update,
)

from arcadia_pipeline.billing.pricing import overage_qty_sql, overage_usd_sql
from arcadia_pipeline.db.schema import (
    deployment_quote_lines,
    deployment_quotes,
    inventory_deployments,
    overage_prices,
    plan_items,
    plans,
    usage_period_aggregates,
    usage_records,
)
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.metering.sql import records_of_days
from arcadia_pipeline.utc import month_start

# Per (deployment, kind, day) sums of the window's months, computed once per run so each
# as-of day's month-to-date total is a sum over a small table, not over raw records.
_staging = MetaData()
daily_usage = Table(
    "daily_usage",
    _staging,
    Column("usage_date", Date),
    Column("deployment_id", Text),
    Column("billing_kind", Text),
    Column("qty", Numeric),
    Column("records", BigInteger),
    prefixes=["TEMPORARY"],
)


def stage_daily_usage(connection: Connection, first_day: date, last_day: date) -> None:
    """Daily sums from the first day of first_day's month through last_day."""
    daily_usage.drop(connection, checkfirst=True)
    daily_usage.create(connection)
    u = usage_records.c
    usage_date = func.date(func.timezone("UTC", u.period_start))
    sums = (
        select(usage_date, u.deployment_id, u.resource_kind, func.sum(u.qty), func.count())
        .where(records_of_days(month_start(first_day), last_day))
        .group_by(usage_date, u.deployment_id, u.resource_kind)
    )
    connection.execute(
        insert(daily_usage).from_select(
            ["usage_date", "deployment_id", "billing_kind", "qty", "records"], sums
        )
    )
    connection.exec_driver_sql("ANALYZE daily_usage")


@dataclass(frozen=True)
class AggregatedDay:
    day: date
    deployments: int
    qty: dict[str, Decimal]


def replace_aggregates_day(connection: Connection, day: date, run_id: str) -> AggregatedDay:
    """Billing-period-to-date SUM(qty) per (deployment, kind) as of day (caller holds txn)."""
    a = usage_period_aggregates.c
    connection.execute(delete(usage_period_aggregates).where(a.as_of_date == day))
    d = daily_usage.c
    period_start = month_start(day)
    rows = (
        select(
            literal(day),
            d.deployment_id,
            d.billing_kind,
            literal(period_start),
            func.sum(d.qty),
            func.sum(d.records),
            literal(run_id),
        )
        .where(d.usage_date >= period_start, d.usage_date <= day)
        .group_by(d.deployment_id, d.billing_kind)
    )
    connection.execute(
        insert(usage_period_aggregates).from_select(
            [
                "as_of_date",
                "deployment_id",
                "billing_kind",
                "period_start",
                "qty",
                "records",
                "run_id",
            ],
            rows,
        )
    )
    totals = connection.execute(
        select(a.billing_kind, func.sum(a.qty), func.count(func.distinct(a.deployment_id)))
        .where(a.as_of_date == day)
        .group_by(a.billing_kind)
    ).all()
    deployments = connection.execute(
        select(func.count(func.distinct(a.deployment_id))).where(a.as_of_date == day)
    ).scalar_one()
    return AggregatedDay(day, deployments, {kind: qty for kind, qty, _ in totals})


class QuoteError(BadSourceData):
    """Quotes cannot be priced (unknown plan, unpriced kind); nothing was written."""


@dataclass(frozen=True)
class QuotedDay:
    day: date
    quotes: int
    base_usd: Decimal
    overage_usd: Decimal
    total_usd: Decimal
    top: list[dict]  # the largest quotes, for a table in the UI


def _quoted_deployments(day: date):
    """Every deployment of the day's inventory (its base fee is due even without usage) and
    any with usage this month, with the plan it had on `day` (NULL if unknown)."""
    a = usage_period_aggregates.c
    dep = inventory_deployments.c
    ids = union(
        select(dep.deployment_id).where(dep.day == day),
        select(a.deployment_id).where(a.as_of_date == day),
    ).subquery("ids")
    return (
        select(ids.c.deployment_id, dep.plan_code)
        .select_from(ids)
        .outerjoin(
            inventory_deployments,
            and_(dep.day == day, dep.deployment_id == ids.c.deployment_id),
        )
    ).subquery("quoted")


def _quote_kinds(day: date, quoted):
    """(deployment, billing kind) of every quote line: what the plan includes or was used."""
    a = usage_period_aggregates.c
    return union(
        select(quoted.c.deployment_id, plan_items.c.billing_kind).join_from(
            quoted, plan_items, plan_items.c.plan_code == quoted.c.plan_code
        ),
        select(a.deployment_id, a.billing_kind).where(a.as_of_date == day),
    ).subquery("kinds")


def _check_priceable(connection: Connection, day: date, quoted) -> None:
    problems = connection.execute(
        select(quoted.c.deployment_id, quoted.c.plan_code)
        .outerjoin(plans, plans.c.plan_code == quoted.c.plan_code)
        .where(plans.c.plan_code.is_(None))
        .order_by(quoted.c.deployment_id)
    ).all()
    if problems:
        listed = ", ".join(f"{dep} (plan {plan!r})" for dep, plan in problems[:20])
        raise QuoteError(
            f"{len(problems)} deployment(s) have usage on {day} but no plan in "
            f"metering.plans: {listed}"
        )
    # Every line needs a price: the kinds the quoted plans include and the kinds used.
    kinds = _quote_kinds(day, quoted)
    unpriced = connection.execute(
        select(kinds.c.billing_kind, func.min(kinds.c.deployment_id))
        .outerjoin(overage_prices, overage_prices.c.billing_kind == kinds.c.billing_kind)
        .where(overage_prices.c.billing_kind.is_(None))
        .group_by(kinds.c.billing_kind)
    ).all()
    if unpriced:
        listed = ", ".join(f"{kind} (e.g. deployment {dep})" for kind, dep in unpriced)
        raise QuoteError(f"billing kinds in quotes but no overage price: {listed}")


def replace_quotes_day(connection: Connection, day: date, run_id: str) -> QuotedDay:
    """Month-to-date quote per deployment as of day, from that day's aggregates."""
    q, ql = deployment_quotes.c, deployment_quote_lines.c
    connection.execute(delete(deployment_quotes).where(q.as_of_date == day))  # lines cascade
    quoted = _quoted_deployments(day)
    _check_priceable(connection, day, quoted)
    connection.execute(
        insert(deployment_quotes).from_select(
            [
                "as_of_date",
                "deployment_id",
                "plan_code",
                "period_start",
                "base_usd",
                "overage_usd",
                "total_usd",
                "run_id",
            ],
            select(
                literal(day),
                quoted.c.deployment_id,
                quoted.c.plan_code,
                literal(month_start(day)),
                plans.c.base_usd,
                literal(0),
                plans.c.base_usd,
                literal(run_id),
            ).join_from(quoted, plans, plans.c.plan_code == quoted.c.plan_code),
        )
    )
    # A line for every kind the plan includes or the deployment used this month.
    a = usage_period_aggregates.c
    kinds = _quote_kinds(day, quoted)
    usage = func.coalesce(a.qty, 0)
    included = func.coalesce(plan_items.c.included_qty, 0)
    price = overage_prices.c.unit_price_usd
    lines = (
        select(
            literal(day),
            kinds.c.deployment_id,
            kinds.c.billing_kind,
            usage,
            included,
            overage_qty_sql(usage, included),
            price,
            overage_usd_sql(usage, included, price),
        )
        .select_from(kinds)
        .join(quoted, quoted.c.deployment_id == kinds.c.deployment_id)
        .join(overage_prices, overage_prices.c.billing_kind == kinds.c.billing_kind)
        .outerjoin(
            plan_items,
            and_(
                plan_items.c.plan_code == quoted.c.plan_code,
                plan_items.c.billing_kind == kinds.c.billing_kind,
            ),
        )
        .outerjoin(
            usage_period_aggregates,
            and_(
                a.as_of_date == day,
                a.deployment_id == kinds.c.deployment_id,
                a.billing_kind == kinds.c.billing_kind,
            ),
        )
    )
    connection.execute(
        insert(deployment_quote_lines).from_select(
            [
                "as_of_date",
                "deployment_id",
                "billing_kind",
                "usage",
                "included",
                "overage_qty",
                "unit_price_usd",
                "overage_usd",
            ],
            lines,
        )
    )
    overage = (
        select(func.sum(ql.overage_usd))
        .where(ql.as_of_date == q.as_of_date, ql.deployment_id == q.deployment_id)
        .scalar_subquery()
    )
    connection.execute(
        update(deployment_quotes)
        .where(q.as_of_date == day)
        .values(
            overage_usd=func.coalesce(overage, 0), total_usd=q.base_usd + func.coalesce(overage, 0)
        )
    )
    return summarise_quotes(connection, day)


def summarise_quotes(connection: Connection, day: date) -> QuotedDay:
    q = deployment_quotes.c
    count, base, over, total = connection.execute(
        select(
            func.count(), func.sum(q.base_usd), func.sum(q.overage_usd), func.sum(q.total_usd)
        ).where(q.as_of_date == day)
    ).one()
    top = (
        connection.execute(
            select(q.deployment_id, q.plan_code, q.base_usd, q.overage_usd, q.total_usd)
            .where(q.as_of_date == day)
            .order_by(q.total_usd.desc(), q.deployment_id)
            .limit(10)
        )
        .mappings()
        .all()
    )
    zero = Decimal("0.00")
    return QuotedDay(day, count, base or zero, over or zero, total or zero, [dict(r) for r in top])
