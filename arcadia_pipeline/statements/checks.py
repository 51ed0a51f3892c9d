"""The asset check on the monthly statements: what a month has billed equals the month priced
now, to the cent."""

from datetime import date

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue
from sqlalchemy import Connection, func, or_, select

from arcadia_pipeline.billing.pricing import lines_per_deployment, unbalanced_text
from arcadia_pipeline.db.schema import (
    monthly_statement_lines,
    monthly_statements,
    statement_adjustments,
)
from arcadia_pipeline.orchestration.check_results import MAX_LISTED
from arcadia_pipeline.orchestration.partitions import monthly_check, months_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.statements import closing
from arcadia_pipeline.statements.assets import monthly_usage_statements
from arcadia_pipeline.statements.sql import (
    StatementError,
    differences,
    hold_month,
    price_month,
    priced_lines,
    priced_statements,
    repriced_at,
    written_since_priced,
)


def unbalanced_statements(connection: Connection, month: date) -> list[str]:
    """Statements whose total is not base + lines or whose lines do not follow the rule."""
    s, line = monthly_statements.c, monthly_statement_lines.c
    lines = lines_per_deployment(
        line.month == month, line.deployment_id, line.qty, line.included_qty,
        line.unit_price_usd, line.overage_qty, line.amount_usd,
    )  # fmt: skip
    amount = func.coalesce(lines.c.amount, 0)
    rows = connection.execute(
        select(s.deployment_id, s.base_usd, s.total_usd, amount.label("lines"), lines.c.mispriced)
        .outerjoin(lines, lines.c.deployment_id == s.deployment_id)
        .where(s.month == month, or_(s.total_usd != s.base_usd + amount, lines.c.mispriced > 0))
        .order_by(s.deployment_id)
        .limit(MAX_LISTED)
    ).all()
    return [
        unbalanced_text(r.deployment_id, r.total_usd, r.base_usd, r.lines, r.mispriced)
        for r in rows
    ]


def unequal_totals(connection: Connection, month: date) -> list[str]:
    """Deployments whose statement total plus adjustments is not the month priced now
    (price_month's tables)."""
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
    pl, ps = priced_lines.c, priced_statements.c
    line_amounts = (
        select(pl.deployment_id, func.sum(pl.amount_usd).label("amount"))
        .group_by(pl.deployment_id)
        .subquery("line_amounts")
    )
    now = (
        select(ps.deployment_id, (ps.base_usd + func.coalesce(line_amounts.c.amount, 0)).label(
            "amount"
        ))
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
        )
        .select_from(joined)
        .where(booked_amount != now_amount)
        .order_by("deployment_id")
        .limit(MAX_LISTED)
    ).all()
    return [
        f"{r.deployment_id}: statement + adjustments {r.booked} USD, priced now {r.now} USD"
        for r in rows
    ]


def month_mismatches(connection: Connection, month: date) -> list[str]:
    """Everything by which what the month has billed differs from the month priced now."""
    try:
        price_month(connection, month)
    except StatementError as error:
        return [str(error)]
    problems = unbalanced_statements(connection, month) + unequal_totals(connection, month)
    rows = connection.execute(differences(month).limit(MAX_LISTED)).all()
    problems += [
        f"{r.deployment_id}/{r.billing_kind}: billed qty {r.booked_qty} and "
        f"{r.booked_amount} USD, priced now qty {r.priced_qty} and {r.priced_amount} USD"
        for r in rows
    ]
    return problems


@monthly_check(monthly_usage_statements)
def statements_equal_the_month_priced_now(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """For every deployment and line, the statement plus its adjustments equals the month
    priced now from its current usage, to the cent (a draft: the statement alone); each
    statement's total is its base plus its lines, each line priced by the quote rule.

    A month whose days were re-written after it was priced is stale, not wrong (the sensor
    re-prices it), and one past its records' retention can no longer be priced: both are
    skipped."""
    months = months_in_window(context.partition_time_window)
    problems, skipped = [], 0
    with warehouse.engine.connect() as connection:
        for month in months:
            with connection.begin():
                hold_month(connection, month, shared=True)
                priced_at = repriced_at(connection, month)
                if priced_at is None:
                    problems.append(f"{closing.month_text(month)}: never priced")
                    continue
                expired = closing.past_retention(connection, month, closing.utc_now().date())
                if expired or month in written_since_priced(connection):
                    skipped += 1
                    continue
                problems += [
                    f"{closing.month_text(month)} {problem}"
                    for problem in month_mismatches(connection, month)
                ]
    listed = problems[:MAX_LISTED]
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(listed) if problems else None,
        metadata={
            "checked_months": MetadataValue.int(len(months) - skipped),
            "stale_months_skipped": MetadataValue.int(skipped),
            "problems": MetadataValue.int(len(problems)),
            **(
                {"offending": MetadataValue.md("\n".join(f"- {p}" for p in listed))}
                if problems
                else {}
            ),
        },
    )
