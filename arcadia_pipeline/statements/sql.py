"""Set-based SQL of the monthly statements: price a month, write it as drafts, close it, and
write what changed since its close as adjustments.

Pricing a month (`price_month`) fills two temporary tables: a statement per deployment (every
deployment of the month's inventory, any with usage, and any with a closed statement) and a
line per billing kind it used or its plan includes, usage summed over the whole month
(usage_for_period from the first day to the last) and priced by the quote rule
(billing/pricing.py). A draft takes its plan from the deployment's last day in the month's
inventory and its terms from the catalog; a closed statement keeps the plan, base fee,
included quantities and unit prices it closed with, so only usage ever changes a closed
month (a later plan or price change is never billed back).

"Booked" is what a month has billed: its statements' lines and base fees plus every
adjustment. Re-pricing a closed month writes the difference from booked as one adjustment per
changed line, so booked always equals the month priced now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    MetaData,
    Numeric,
    Table,
    Text,
    and_,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    select,
    text,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from arcadia_pipeline.billing.pricing import overage_qty_sql, overage_usd_sql
from arcadia_pipeline.db.schema import (
    day_writes,
    inventory_deployments,
    monthly_statement_lines,
    monthly_statements,
    overage_prices,
    plan_items,
    plans,
    statement_adjustments,
    statement_months,
    usage_records,
)
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.metering.sql import records_of_days
from arcadia_pipeline.orchestration.day_lineage import lock_for_reading
from arcadia_pipeline.utc import iter_days, month_end

ASSET = "monthly_usage_statements"
# The daily assets whose days a statement reads.
READ_ASSETS = ("resource_inventory", "usage_records")
BASE_FEE = "base"  # the billing kind of a base fee's adjustment
MAX_LISTED = 20

_staging = MetaData()
priced_statements = Table(
    "priced_statements",
    _staging,
    Column("deployment_id", Text),
    Column("plan_code", Text),
    Column("base_usd", Numeric),  # NULL: no plan known in the catalog
    Column("closed", Boolean),  # priced on the terms it closed with
    prefixes=["TEMPORARY"],
)
priced_lines = Table(
    "priced_lines",
    _staging,
    Column("deployment_id", Text),
    Column("billing_kind", Text),
    Column("qty", Numeric),
    Column("included_qty", Numeric),
    Column("overage_qty", Numeric),
    Column("unit_price_usd", Numeric),  # NULL: no overage price
    Column("amount_usd", Numeric),
    prefixes=["TEMPORARY"],
)


class StatementError(BadSourceData):
    """A month cannot be priced (a plan or price missing from the catalog); nothing written."""


def hold_month(connection: Connection, month: date, shared: bool = False) -> datetime:
    """In the month's transaction: its own lock (exclusive to write: two runs of a month
    leave one's statements; shared to check), then every day it reads (usage records and
    the inventory's plans) shared, so no run re-meters them until the transaction ends;
    the time from which what it reads is fixed."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(
        text(f"SELECT {function}(hashtext(:asset), :month)"),
        {"asset": ASSET, "month": month.toordinal()},
    )
    for day in iter_days(month, month_end(month)):
        lock_for_reading(connection, "usage_records", day)  # and its day's inventory
    return connection.execute(select(func.clock_timestamp())).scalar_one()


def closed_at(connection: Connection, month: date) -> datetime | None:
    return connection.execute(
        select(statement_months.c.closed_at).where(statement_months.c.month == month)
    ).scalar_one_or_none()


def repriced_at(connection: Connection, month: date) -> datetime | None:
    return connection.execute(
        select(statement_months.c.repriced_at).where(statement_months.c.month == month)
    ).scalar_one_or_none()


def written_since_priced(connection: Connection) -> dict[date, datetime]:
    """The priced months some day of which a statement reads (its usage records, its
    inventory's plans) was written after the month was priced: {month: newest such write}."""
    w, m = day_writes.c, statement_months.c
    month = func.date_trunc("month", w.day)
    rows = connection.execute(
        select(m.month, func.max(w.written_at))
        .join_from(
            statement_months,
            day_writes,
            and_(cast(month, Date) == m.month, w.written_at > m.repriced_at),
        )
        .where(w.asset.in_(READ_ASSETS))
        .group_by(m.month)
    ).all()
    return dict(rows)


def _month_usage(month: date):
    """SUM(qty) per (deployment, billing kind) over the whole month."""
    u = usage_records.c
    return (
        select(u.deployment_id, u.resource_kind.label("billing_kind"), func.sum(u.qty).label("qty"))
        .where(records_of_days(month, month_end(month)))
        .group_by(u.deployment_id, u.resource_kind)
    ).subquery("usage")


def _last_plans(month: date):
    """Each deployment's plan on its last day in the month's inventory."""
    d = inventory_deployments.c
    return (
        select(d.deployment_id, d.plan_code)
        .where(d.day.between(month, month_end(month)))
        .distinct(d.deployment_id)
        .order_by(d.deployment_id, d.day.desc())
    ).subquery("last_plans")


def _closed(month: date):
    s = monthly_statements.c
    return (
        select(s.deployment_id, s.plan_code, s.base_usd)
        .where(s.month == month, s.status == "closed")
        .subquery("closed")
    )


def price_month(connection: Connection, month: date) -> None:
    """Fill priced_statements and priced_lines with the month priced now; raise
    StatementError naming the deployments without a known plan and the kinds without a price
    (caller holds the transaction)."""
    for table in (priced_statements, priced_lines):
        table.drop(connection, checkfirst=True)
        table.create(connection)
    usage, last, closed = _month_usage(month), _last_plans(month), _closed(month)
    ids = union(
        select(last.c.deployment_id),
        select(usage.c.deployment_id),
        select(closed.c.deployment_id),
    ).subquery("ids")
    plan = func.coalesce(closed.c.plan_code, last.c.plan_code)
    connection.execute(
        insert(priced_statements).from_select(
            ["deployment_id", "plan_code", "base_usd", "closed"],
            select(
                ids.c.deployment_id,
                plan,
                func.coalesce(closed.c.base_usd, plans.c.base_usd),
                closed.c.deployment_id.is_not(None),
            )
            .select_from(ids)
            .outerjoin(closed, closed.c.deployment_id == ids.c.deployment_id)
            .outerjoin(last, last.c.deployment_id == ids.c.deployment_id)
            .outerjoin(plans, plans.c.plan_code == last.c.plan_code),
        )
    )
    ps = priced_statements.c
    unplanned = connection.execute(
        select(ps.deployment_id, ps.plan_code)
        .where(ps.base_usd.is_(None))
        .order_by(ps.deployment_id)
    ).all()
    if unplanned:
        listed = ", ".join(
            f"{dep} ({'no plan in the month' if p is None else f'plan {p!r}'})"
            for dep, p in unplanned[:MAX_LISTED]
        )
        raise StatementError(
            f"{len(unplanned)} deployment(s) of {month:%Y-%m} have no plan in "
            f"metering.plans: {listed}"
        )

    # A line for every kind used, every kind a priced-from-catalog plan includes, and every
    # line a closed statement has.
    line = monthly_statement_lines.c
    kinds = union(
        select(usage.c.deployment_id, usage.c.billing_kind),
        select(ps.deployment_id, plan_items.c.billing_kind).join_from(
            priced_statements,
            plan_items,
            and_(plan_items.c.plan_code == ps.plan_code, ps.closed == false()),
        ),
        select(line.deployment_id, line.billing_kind).join_from(
            monthly_statement_lines,
            priced_statements,
            and_(ps.deployment_id == line.deployment_id, ps.closed, line.month == month),
        ),
    ).subquery("kinds")
    closed_line = monthly_statement_lines.alias("closed_line")
    qty = func.coalesce(usage.c.qty, 0)
    included = func.coalesce(closed_line.c.included_qty, plan_items.c.included_qty, 0)
    price = func.coalesce(closed_line.c.unit_price_usd, overage_prices.c.unit_price_usd)
    connection.execute(
        insert(priced_lines).from_select(
            [c.name for c in priced_lines.columns],
            select(
                kinds.c.deployment_id,
                kinds.c.billing_kind,
                qty,
                included,
                overage_qty_sql(qty, included),
                price,
                overage_usd_sql(qty, included, price),
            )
            .select_from(kinds)
            .join(priced_statements, ps.deployment_id == kinds.c.deployment_id)
            .outerjoin(
                closed_line,
                and_(
                    ps.closed,
                    closed_line.c.month == month,
                    closed_line.c.deployment_id == kinds.c.deployment_id,
                    closed_line.c.billing_kind == kinds.c.billing_kind,
                ),
            )
            .outerjoin(
                plan_items,
                and_(
                    plan_items.c.plan_code == ps.plan_code,
                    plan_items.c.billing_kind == kinds.c.billing_kind,
                ),
            )
            .outerjoin(overage_prices, overage_prices.c.billing_kind == kinds.c.billing_kind)
            .outerjoin(
                usage,
                and_(
                    usage.c.deployment_id == kinds.c.deployment_id,
                    usage.c.billing_kind == kinds.c.billing_kind,
                ),
            ),
        )
    )
    pl = priced_lines.c
    unpriced = connection.execute(
        select(pl.billing_kind, func.min(pl.deployment_id))
        .where(pl.unit_price_usd.is_(None))
        .group_by(pl.billing_kind)
        .order_by(pl.billing_kind)
    ).all()
    if unpriced:
        listed = ", ".join(f"{kind} (e.g. deployment {dep})" for kind, dep in unpriced)
        raise StatementError(
            f"billing kinds in the statements of {month:%Y-%m} have no overage price: {listed}"
        )
    connection.exec_driver_sql("ANALYZE priced_statements, priced_lines")


def write_drafts(connection: Connection, month: date, run_id: str) -> None:
    """Replace the month's (draft) statements with the priced ones."""
    s, ps, pl = monthly_statements.c, priced_statements.c, priced_lines.c
    connection.execute(delete(monthly_statements).where(s.month == month))  # lines cascade
    amounts = (
        select(pl.deployment_id, func.sum(pl.amount_usd).label("amount"))
        .group_by(pl.deployment_id)
        .subquery("amounts")
    )
    connection.execute(
        insert(monthly_statements).from_select(
            ["month", "deployment_id", "plan_code", "status", "base_usd", "total_usd", "run_id"],
            select(
                literal(month),
                ps.deployment_id,
                ps.plan_code,
                literal("draft"),
                ps.base_usd,
                ps.base_usd + func.coalesce(amounts.c.amount, 0),
                literal(run_id),
            ).outerjoin_from(
                priced_statements, amounts, amounts.c.deployment_id == ps.deployment_id
            ),
        )
    )
    connection.execute(
        insert(monthly_statement_lines).from_select(
            ["month", *(c.name for c in priced_lines.columns)],
            select(literal(month), *priced_lines.columns),
        )
    )


def close_drafts(connection: Connection, month: date, now: datetime) -> None:
    """The month's drafts become its closed statements (from here on, triggers keep them)."""
    connection.execute(
        update(monthly_statements)
        .where(monthly_statements.c.month == month)
        .values(status="closed", closed_at=now)
    )


def _booked(month: date):
    """(deployment, kind, qty, amount) the month has billed: lines, base fees, adjustments."""
    line, s, adj = monthly_statement_lines.c, monthly_statements.c, statement_adjustments.c
    one = cast(literal(1), Numeric)
    rows = union_all(
        select(line.deployment_id, line.billing_kind, line.qty, line.amount_usd).where(
            line.month == month
        ),
        select(s.deployment_id, literal(BASE_FEE), one, s.base_usd).where(s.month == month),
        select(adj.deployment_id, adj.billing_kind, adj.qty_delta, adj.amount_usd).where(
            adj.month == month
        ),
    ).subquery("booked_rows")
    c = rows.c
    return (
        select(
            c.deployment_id,
            c.billing_kind,
            func.sum(c.qty).label("qty"),
            func.sum(c.amount_usd).label("amount"),
        ).group_by(c.deployment_id, c.billing_kind)
    ).subquery("booked")


def _priced():
    """(deployment, kind, qty, amount) of the month priced now (price_month's tables)."""
    pl, ps = priced_lines.c, priced_statements.c
    one = cast(literal(1), Numeric)
    return union_all(
        select(pl.deployment_id, pl.billing_kind, pl.qty, pl.amount_usd.label("amount")),
        select(ps.deployment_id, literal(BASE_FEE), one, ps.base_usd),
    ).subquery("priced")


def differences(month: date):
    """Per (deployment, kind) where booked and priced-now differ: both sides (0 if absent)
    and the deltas that would make them equal. Needs price_month's tables."""
    booked, priced = _booked(month), _priced()
    booked_qty, booked_amount = (func.coalesce(booked.c.qty, 0), func.coalesce(booked.c.amount, 0))
    priced_qty, priced_amount = (func.coalesce(priced.c.qty, 0), func.coalesce(priced.c.amount, 0))
    joined = booked.join(
        priced,
        and_(
            booked.c.deployment_id == priced.c.deployment_id,
            booked.c.billing_kind == priced.c.billing_kind,
        ),
        full=True,
    )
    return (
        select(
            func.coalesce(booked.c.deployment_id, priced.c.deployment_id).label("deployment_id"),
            func.coalesce(booked.c.billing_kind, priced.c.billing_kind).label("billing_kind"),
            booked_qty.label("booked_qty"),
            booked_amount.label("booked_amount"),
            priced_qty.label("priced_qty"),
            priced_amount.label("priced_amount"),
            (priced_qty - booked_qty).label("qty_delta"),
            (priced_amount - booked_amount).label("amount_delta"),
        )
        .select_from(joined)
        .where((priced_qty != booked_qty) | (priced_amount != booked_amount))
    )


def write_adjustments(connection: Connection, month: date, run_id: str, now: datetime) -> int:
    """One adjustment per line whose priced-now quantity or amount differs from what the
    closed month has billed; how many were written (0: nothing changed)."""
    changed = differences(month).subquery("changed")
    result = connection.execute(
        insert(statement_adjustments).from_select(
            ["month", "deployment_id", "billing_kind", "qty_delta", "amount_usd", "created_at",
             "run_id"],
            select(
                literal(month), changed.c.deployment_id, changed.c.billing_kind,
                changed.c.qty_delta, changed.c.amount_delta, literal(now), literal(run_id),
            ).order_by(changed.c.deployment_id, changed.c.billing_kind),
        )
    )  # fmt: skip
    return result.rowcount


def mark_priced(
    connection: Connection,
    month: date,
    read_at: datetime,
    run_id: str,
    closed: datetime | None = None,
) -> None:
    """Record when the month was priced from (and, once, when it closed)."""
    values = {"repriced_at": read_at, "run_id": run_id}
    closing = {} if closed is None else {"closed_at": closed}  # a closed month keeps its own
    connection.execute(
        pg_insert(statement_months)
        .values(month=month, **values, **closing)
        .on_conflict_do_update(index_elements=["month"], set_={**values, **closing})
    )


@dataclass(frozen=True)
class PricedMonth:
    month: date
    status: str  # draft or closed
    statements: int
    base_usd: Decimal
    total_usd: Decimal  # the statements' totals
    adjustments: int  # all of the month's, to date
    adjustments_usd: Decimal
    adjustments_added: int  # by this run
    top: list[dict]  # the largest statements with their adjustments, for a table in the UI


def summarise_month(connection: Connection, month: date, added: int = 0) -> PricedMonth:
    s, adj = monthly_statements.c, statement_adjustments.c
    zero = Decimal("0.00")
    count, base, total = connection.execute(
        select(func.count(), func.sum(s.base_usd), func.sum(s.total_usd)).where(s.month == month)
    ).one()
    adjustments, adjusted = connection.execute(
        select(func.count(), func.sum(adj.amount_usd)).where(adj.month == month)
    ).one()
    per_deployment = (
        select(adj.deployment_id, func.sum(adj.amount_usd).label("amount"))
        .where(adj.month == month)
        .group_by(adj.deployment_id)
        .subquery("adjusted")
    )
    adjusted_total = s.total_usd + func.coalesce(per_deployment.c.amount, 0)
    top = connection.execute(
        select(
            s.deployment_id,
            s.plan_code,
            s.status,
            s.total_usd,
            func.coalesce(per_deployment.c.amount, 0).label("adjustments_usd"),
            adjusted_total.label("total_with_adjustments_usd"),
        )
        .outerjoin_from(
            monthly_statements,
            per_deployment,
            per_deployment.c.deployment_id == s.deployment_id,
        )
        .where(s.month == month)
        .order_by(adjusted_total.desc(), s.deployment_id)
        .limit(10)
    ).mappings()
    status = "closed" if closed_at(connection, month) is not None else "draft"
    return PricedMonth(
        month, status, count, base or zero, total or zero, adjustments, adjusted or zero,
        added, [dict(row) for row in top],
    )  # fmt: skip
