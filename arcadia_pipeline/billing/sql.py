"""Set-based SQL of the billing assets: period-to-date aggregates and month-to-date quotes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import (
    Connection,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    union,
    union_all,
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
from arcadia_pipeline.orchestration.day_lineage import is_current
from arcadia_pipeline.utc import month_start


@dataclass(frozen=True)
class AggregatedDay:
    day: date
    deployments: int
    qty: dict[str, Decimal]


def builds_on_day_before(connection: Connection, day: date) -> bool:
    """Whether day's aggregates can be the day before's plus day's own records: the day
    before is in the same month and current (day_lineage.is_current: written, and no usage
    day it read re-metered since), held so until the transaction ends."""
    return day != month_start(day) and is_current(
        connection, usage_period_aggregates.name, day - timedelta(days=1)
    )


def _month_to_date(connection: Connection, day: date):
    """(deployment, kind, qty, records) rows whose sums are the month to date as of day."""
    u = usage_records.c
    records = select(
        u.deployment_id,
        u.resource_kind.label("billing_kind"),
        u.qty,
        literal(1).label("records"),
    )
    if not builds_on_day_before(connection, day):
        return records.where(records_of_days(month_start(day), day))
    a = usage_period_aggregates.c
    return union_all(
        select(a.deployment_id, a.billing_kind, a.qty, a.records).where(
            a.as_of_date == day - timedelta(days=1)
        ),
        records.where(records_of_days(day, day)),
    )


def replace_aggregates_day(connection: Connection, day: date, run_id: str) -> AggregatedDay:
    """Billing-period-to-date SUM(qty) per (deployment, kind) as of day (the caller holds
    the day's transaction and the usage days it reads): the day before's totals plus the
    day's records when the day before is current, else the month's records summed."""
    a = usage_period_aggregates.c
    connection.execute(delete(usage_period_aggregates).where(a.as_of_date == day))
    parts = _month_to_date(connection, day).subquery("parts")
    rows = select(
        literal(day),
        parts.c.deployment_id,
        parts.c.billing_kind,
        literal(month_start(day)),
        func.sum(parts.c.qty),
        func.sum(parts.c.records),
        literal(run_id),
    ).group_by(parts.c.deployment_id, parts.c.billing_kind)
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
        select(a.billing_kind, func.sum(a.qty)).where(a.as_of_date == day).group_by(a.billing_kind)
    ).all()
    # A hashed GROUP BY, not count(DISTINCT), which sorts the day's aggregates.
    aggregated = select(a.deployment_id).where(a.as_of_date == day).group_by(a.deployment_id)
    deployments = connection.execute(
        select(func.count()).select_from(aggregated.subquery())
    ).scalar_one()
    return AggregatedDay(day, deployments, {kind: qty for kind, qty in totals})


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
    )


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
    # Every line needs a price: the kinds the quoted plans include and the kinds used
    # (each side filtered to the unpriced kinds first: a handful of rows, not every line).
    a = usage_period_aggregates.c
    priced = select(overage_prices.c.billing_kind)
    kinds = union_all(
        select(quoted.c.deployment_id, plan_items.c.billing_kind)
        .join_from(quoted, plan_items, plan_items.c.plan_code == quoted.c.plan_code)
        .where(plan_items.c.billing_kind.not_in(priced)),
        select(a.deployment_id, a.billing_kind).where(
            a.as_of_date == day, a.billing_kind.not_in(priced)
        ),
    ).subquery("kinds")
    unpriced = connection.execute(
        select(kinds.c.billing_kind, func.min(kinds.c.deployment_id))
        .group_by(kinds.c.billing_kind)
        .order_by(kinds.c.billing_kind)
    ).all()
    if unpriced:
        listed = ", ".join(f"{kind} (e.g. deployment {dep})" for kind, dep in unpriced)
        raise QuoteError(f"billing kinds in quotes but no overage price: {listed}")


def _lines(day: date, quoted):
    """A line for every kind the plan includes or the deployment used this month: the
    plan's included kinds full-joined with the day's aggregates (one hashed join)."""
    a = usage_period_aggregates.c
    included = (
        select(quoted.c.deployment_id, plan_items.c.billing_kind, plan_items.c.included_qty)
        .join_from(quoted, plan_items, plan_items.c.plan_code == quoted.c.plan_code)
        .subquery("included")
    )
    used = select(a.deployment_id, a.billing_kind, a.qty).where(a.as_of_date == day)
    used = used.subquery("used")
    joined = included.join(
        used,
        and_(
            used.c.deployment_id == included.c.deployment_id,
            used.c.billing_kind == included.c.billing_kind,
        ),
        full=True,
    )
    billing_kind = func.coalesce(included.c.billing_kind, used.c.billing_kind)
    usage = func.coalesce(used.c.qty, 0)
    included_qty = func.coalesce(included.c.included_qty, 0)
    price = overage_prices.c.unit_price_usd
    return (
        select(
            func.coalesce(included.c.deployment_id, used.c.deployment_id).label("deployment_id"),
            billing_kind.label("billing_kind"),
            usage.label("usage"),
            included_qty.label("included"),
            overage_qty_sql(usage, included_qty).label("overage_qty"),
            price.label("unit_price_usd"),
            overage_usd_sql(usage, included_qty, price).label("overage_usd"),
        )
        .select_from(joined)
        .join(overage_prices, overage_prices.c.billing_kind == billing_kind)
    )


_LINE_COLUMNS = [
    "deployment_id", "billing_kind", "usage", "included", "overage_qty", "unit_price_usd",
    "overage_usd",
]  # fmt: skip


def replace_quotes_day(connection: Connection, day: date, run_id: str) -> QuotedDay:
    """Month-to-date quote per deployment as of day, from that day's aggregates.

    One statement writes the quotes and their lines: the lines are priced once (a CTE), the
    quotes take their totals from them, the lines are inserted from the same rows."""
    q, ql = deployment_quotes.c, deployment_quote_lines.c
    connection.execute(delete(deployment_quote_lines).where(ql.as_of_date == day))
    connection.execute(delete(deployment_quotes).where(q.as_of_date == day))
    _check_priceable(connection, day, _quoted_deployments(day).subquery("quoted"))
    quoted = _quoted_deployments(day).cte("quoted")  # read three times below, computed once
    lines = _lines(day, quoted).cte("lines")
    overage = (
        select(lines.c.deployment_id, func.sum(lines.c.overage_usd).label("overage_usd"))
        .group_by(lines.c.deployment_id)
        .subquery("overage")
    )
    overage_usd = func.coalesce(overage.c.overage_usd, 0)
    quotes = insert(deployment_quotes).from_select(
        ["as_of_date", "deployment_id", "plan_code", "period_start", "base_usd", "overage_usd",
         "total_usd", "run_id"],
        select(
            literal(day), quoted.c.deployment_id, quoted.c.plan_code, literal(month_start(day)),
            plans.c.base_usd, overage_usd, plans.c.base_usd + overage_usd, literal(run_id),
        )
        .join_from(quoted, plans, plans.c.plan_code == quoted.c.plan_code)
        .outerjoin(overage, overage.c.deployment_id == quoted.c.deployment_id),
    ).cte("quotes")  # fmt: skip
    # The quotes' statement runs before the lines' foreign key is checked (at its end).
    connection.execute(
        insert(deployment_quote_lines)
        .from_select(
            ["as_of_date", *_LINE_COLUMNS],
            select(literal(day), *(lines.c[c] for c in _LINE_COLUMNS)),
        )
        .add_cte(quotes)
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
