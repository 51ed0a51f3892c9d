"""What a month has billed: its statements as drafts, their close, and every later change of
a closed month as adjustments.

"Booked" is what a month has billed: its statements' lines, base fees and minimum true-ups
(a line of kind MINIMUM_TRUE_UP for a deployment with a minimum commitment) plus every
adjustment. Re-pricing a closed month writes the difference from booked as one adjustment per
changed line, so booked always equals the month priced now (statements/month.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Connection,
    Numeric,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)

from arcadia_pipeline.catalog.plans import BASE_FEE, MINIMUM_TRUE_UP
from arcadia_pipeline.db.schema import (
    monthly_statement_lines,
    monthly_statements,
    statement_adjustments,
)
from arcadia_pipeline.pricing.lines import LINE_COLUMNS, same_line
from arcadia_pipeline.statements.month import PricedMonth, closed_at


def write_drafts(connection: Connection, priced: PricedMonth, run_id: str) -> None:
    """Replace the month's (draft) statements with the priced ones."""
    month = priced.month
    s, ps, pl = monthly_statements.c, priced.statements.c, priced.lines.c
    connection.execute(delete(monthly_statements).where(s.month == month))  # lines cascade
    amounts = (
        select(pl.deployment_id, func.sum(pl.amount_usd).label("amount"))
        .group_by(pl.deployment_id)
        .subquery("amounts")
    )
    connection.execute(
        insert(monthly_statements).from_select(
            [
                "month",
                "deployment_id",
                "plan_code",
                "status",
                "base_usd",
                "total_usd",
                "run_id",
                "plan_periods",
                "minimum_usd",
                "minimum_true_up_usd",
            ],
            select(
                literal(month),
                ps.deployment_id,
                ps.plan_code,
                literal("draft"),
                ps.base_usd,
                ps.base_usd + func.coalesce(amounts.c.amount, 0) + ps.minimum_true_up_usd,
                literal(run_id),
                ps.plan_periods,
                ps.minimum_usd,
                ps.minimum_true_up_usd,
            ).outerjoin_from(
                priced.statements, amounts, amounts.c.deployment_id == ps.deployment_id
            ),
        )
    )
    connection.execute(
        insert(monthly_statement_lines).from_select(
            ["month", *LINE_COLUMNS], select(literal(month), *(pl[c] for c in LINE_COLUMNS))
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
    """(deployment, kind, qty, amount) the month has billed: lines, base fees, minimum
    true-ups, adjustments."""
    line, s, adj = monthly_statement_lines.c, monthly_statements.c, statement_adjustments.c
    one = cast(literal(1), Numeric)
    rows = union_all(
        select(line.deployment_id, line.billing_kind, line.qty, line.amount_usd).where(
            line.month == month
        ),
        select(s.deployment_id, literal(BASE_FEE), one, s.base_usd).where(s.month == month),
        select(s.deployment_id, literal(MINIMUM_TRUE_UP), one, s.minimum_true_up_usd).where(
            s.month == month, s.minimum_usd.is_not(None)
        ),
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


def _priced(priced: PricedMonth):
    """(deployment, kind, qty, amount) of the month priced now."""
    pl, ps = priced.lines.c, priced.statements.c
    one = cast(literal(1), Numeric)
    return union_all(
        select(pl.deployment_id, pl.billing_kind, pl.qty, pl.amount_usd.label("amount")),
        select(ps.deployment_id, literal(BASE_FEE), one, ps.base_usd),
        select(ps.deployment_id, literal(MINIMUM_TRUE_UP), one, ps.minimum_true_up_usd).where(
            ps.minimum_usd.is_not(None)
        ),
    ).subquery("priced")


def differences(priced_month: PricedMonth):
    """Per (deployment, kind) where booked and priced-now differ: both sides (0 if absent)
    and the deltas that would make them equal."""
    booked, priced = _booked(priced_month.month), _priced(priced_month)
    booked_qty, booked_amount = (func.coalesce(booked.c.qty, 0), func.coalesce(booked.c.amount, 0))
    priced_qty, priced_amount = (func.coalesce(priced.c.qty, 0), func.coalesce(priced.c.amount, 0))
    joined = booked.join(priced, same_line(booked, priced), full=True)
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


def write_adjustments(
    connection: Connection, priced: PricedMonth, run_id: str, now: datetime
) -> int:
    """One adjustment per line whose priced-now quantity or amount differs from what the
    closed month has billed; how many were written (0: nothing changed)."""
    month = priced.month
    changed = differences(priced).subquery("changed")
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


@dataclass(frozen=True)
class MonthSummary:
    """What a statement run leaves in a month, for its materialisation's metadata."""

    month: date
    status: str  # draft or closed
    statements: int
    base_usd: Decimal
    total_usd: Decimal  # the statements' totals
    adjustments: int  # all of the month's, to date
    adjustments_usd: Decimal
    adjustments_added: int  # by this run
    top: list[dict]  # the largest statements with their adjustments, for a table in the UI
    # The month's adjustments, the first `listed` of them by deployment, kind and booking
    # (deployment_id, billing_kind, qty_delta, amount_usd, created_at): who got a credit.
    listed: list[dict]


# A month's materialisation lists this many adjustments at most (a few hundred rows stay
# readable in the UI); the export (`arcadia-pipeline statements`) holds every one.
LISTED_ADJUSTMENTS = 500


def month_adjustments(connection: Connection, month: date, limit: int | None = None) -> list[dict]:
    """The month's adjustments by deployment, billing kind and booking, at most `limit`:
    {deployment_id, billing_kind, qty_delta, amount_usd (USD), created_at}."""
    adj = statement_adjustments.c
    rows = connection.execute(
        select(adj.deployment_id, adj.billing_kind, adj.qty_delta, adj.amount_usd, adj.created_at)
        .where(adj.month == month)
        .order_by(adj.deployment_id, adj.billing_kind, adj.adjustment_id)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def summarise_month(
    connection: Connection, month: date, added: int = 0, listed: int = LISTED_ADJUSTMENTS
) -> MonthSummary:
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
    return MonthSummary(
        month, status, count, base or zero, total or zero, adjustments, adjusted or zero,
        added, [dict(row) for row in top], month_adjustments(connection, month, listed),
    )  # fmt: skip
