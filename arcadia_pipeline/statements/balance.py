"""The rules of the statements' check: what a month has billed (its statements plus their
adjustments) equals the month priced now, to the cent, and each statement balances."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, func, or_, select

from arcadia_pipeline.days.steps import Problems
from arcadia_pipeline.db.schema import (
    monthly_statement_lines,
    monthly_statements,
    statement_adjustments,
)
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.pricing.balance import (
    lines_per_deployment,
    unbalanced_sql,
    unbalanced_text,
)
from arcadia_pipeline.pricing.lines import PricingError
from arcadia_pipeline.statements.ledger import differences
from arcadia_pipeline.statements.month import PricedMonth, price_month


def unbalanced_statements(connection: Connection, month: date) -> Problems:
    """Statements whose total is not base + lines + the minimum true-up, or whose true-up or
    lines do not follow the rule."""
    s, line = monthly_statements.c, monthly_statement_lines.c
    written = (
        select(
            line.deployment_id, s.plan_code, line.billing_kind, line.qty, line.billable_qty,
            line.included_qty, line.overage_qty, line.unit_price_usd, line.amount_usd,
        )
        .join_from(
            monthly_statement_lines, monthly_statements,
            (s.month == line.month) & (s.deployment_id == line.deployment_id),
        )
        .where(line.month == month)
        .subquery("written")
    )  # fmt: skip
    lines = lines_per_deployment(written, month)
    amount = func.coalesce(lines.c.amount, 0)
    rows = connection.execute(
        select(
            s.deployment_id, s.base_usd, s.total_usd, s.minimum_true_up_usd, amount.label("lines"),
            lines.c.mispriced, func.count().over().label("total"),
        )
        .outerjoin(lines, lines.c.deployment_id == s.deployment_id)
        .where(
            s.month == month,
            or_(
                lines.c.mispriced > 0,
                unbalanced_sql(s.total_usd, s.base_usd, amount, s.minimum_usd,
                               s.minimum_true_up_usd),
            ),
        )
        .order_by(s.deployment_id)
        .limit(MAX_LISTED)
    ).all()  # fmt: skip
    return Problems.of_rows(
        rows, lambda r: unbalanced_text(r.deployment_id, r.total_usd, r.base_usd, r.lines,
                                        r.minimum_true_up_usd, r.mispriced)
    )  # fmt: skip


def unequal_totals(connection: Connection, priced: PricedMonth) -> Problems:
    """Deployments whose statement total plus adjustments is not the month priced now."""
    month = priced.month
    s, adj = monthly_statements.c, statement_adjustments.c
    booked = (
        select(s.deployment_id, s.total_usd.label("amount"))
        .where(s.month == month)
        .union_all(select(adj.deployment_id, adj.amount_usd).where(adj.month == month))
        .subquery("booked_rows")
    )
    booked = (
        select(booked.c.deployment_id, func.sum(booked.c.amount).label("amount"))
        .group_by(booked.c.deployment_id)
        .subquery("booked")
    )
    pl, ps = priced.lines.c, priced.statements.c
    line_amounts = (
        select(pl.deployment_id, func.sum(pl.amount_usd).label("amount"))
        .group_by(pl.deployment_id)
        .subquery("line_amounts")
    )
    now = (
        select(ps.deployment_id, (
            ps.base_usd + func.coalesce(line_amounts.c.amount, 0) + ps.minimum_true_up_usd
        ).label("amount"))
        .outerjoin(line_amounts, line_amounts.c.deployment_id == ps.deployment_id)
        .subquery("now")
    )  # fmt: skip
    joined = booked.join(now, now.c.deployment_id == booked.c.deployment_id, full=True)
    booked_amount, now_amount = func.coalesce(booked.c.amount, 0), func.coalesce(now.c.amount, 0)
    rows = connection.execute(
        select(
            func.coalesce(booked.c.deployment_id, now.c.deployment_id).label("deployment_id"),
            booked_amount.label("booked"),
            now_amount.label("now"),
            func.count().over().label("total"),
        )
        .select_from(joined)
        .where(booked_amount != now_amount)
        .order_by("deployment_id")
        .limit(MAX_LISTED)
    ).all()
    return Problems.of_rows(
        rows,
        lambda r: (
            f"{r.deployment_id}: statement + adjustments {r.booked} USD, priced now {r.now} USD"
        ),
    )


def month_mismatches(connection: Connection, month: date) -> Problems:
    """Everything by which what the month has billed differs from the month priced now
    (caller holds the transaction; a month that cannot be priced is one problem)."""
    try:
        priced = price_month(connection, month)
    except PricingError as error:
        return Problems([str(error)])
    problems = unbalanced_statements(connection, month) + unequal_totals(connection, priced)
    changed = differences(priced).subquery("changed")
    rows = connection.execute(
        select(changed, func.count().over().label("total")).limit(MAX_LISTED)
    ).all()
    return problems + Problems.of_rows(
        rows,
        lambda r: (
            f"{r.deployment_id}/{r.billing_kind}: billed qty {r.booked_qty} and "
            f"{r.booked_amount} USD, priced now qty {r.priced_qty} and {r.priced_amount} USD"
        ),
    )
