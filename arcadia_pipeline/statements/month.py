"""A billing month priced now: every deployment of the month's inventory, any with usage and
any with a closed statement, each with a line per billing kind it used or its terms include,
usage summed over the whole month (usage_for_period from the first day to the last), capped
resource by resource where the month caps its kind (pricing/usage.month_usage), and
priced by the quote rule (pricing/lines.py).

A draft takes its terms from the catalog in effect for the month (db/terms.py), prorated by
the deployment versions of the month's snapshots (pricing/proration.py: its plan the last
one, its plan periods each plan's part); a closed statement keeps the plan, base fee, plan
periods, included quantities and unit prices it closed with, and a deployment or kind first
billed after the close is priced on the month's terms, which never change once it closed:
only usage ever changes a closed month.

`price_month` returns a PricedMonth: the priced statements and lines in two temporary tables
of the transaction that priced them (dropped at its commit). Drafts, adjustments and the
statements' check read them through that object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Numeric,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    select,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from arcadia_pipeline.days.locks import TERMS_LOCK, clock, lock, lock_shared
from arcadia_pipeline.db.schema import (
    day_writes,
    inventory_snapshots,
    statement_months,
)
from arcadia_pipeline.db.staging import recreate, transaction_table
from arcadia_pipeline.flow import STATEMENT_READS
from arcadia_pipeline.pricing.lines import (
    LINE_COLUMNS,
    head_columns,
    line_columns,
    priced_lines,
    raise_if_unpriceable,
)
from arcadia_pipeline.pricing.proration import plan_periods, stage_terms
from arcadia_pipeline.pricing.terms import frozen_heads, frozen_lines
from arcadia_pipeline.pricing.tiers import minimum_true_up_sql
from arcadia_pipeline.pricing.usage import month_usage
from arcadia_pipeline.utc import iter_days, month_end, month_text

ASSET = "monthly_usage_statements"
# Its check: what a month has billed equals the month priced now, to the cent.
CHECK = "statements_equal_the_month_priced_now"


@dataclass(frozen=True)
class PricedMonth:
    """The month priced now, valid inside the transaction that priced it: `statements`
    (deployment_id, plan_code, base_usd, frozen, minimum_usd, plan_periods,
    minimum_true_up_usd) and `lines` (pricing.lines.LINE_COLUMNS); a statement's total is
    base_usd + its lines + minimum_true_up_usd."""

    month: date
    statements: Table
    lines: Table


# The month priced now: two temporary tables, dropped when the pricing transaction commits.
PRICED_STATEMENTS = transaction_table(
    "priced_statements",
    *head_columns(),
    Column("plan_periods", JSONB),
    Column("minimum_true_up_usd", Numeric),  # once its lines are priced
)
PRICED_LINES = transaction_table("priced_lines", *line_columns())


def hold_month(connection: Connection, month: date, shared: bool = False) -> datetime:
    """In the month's transaction: its own lock (exclusive to write: two runs of a month
    leave one's statements; shared to check), then every day it reads and the terms shared,
    so no run re-meters them and no change of the terms commits until the transaction ends;
    the time from which what it reads is fixed."""
    lock(connection, ASSET, month, shared)
    # The usage and the inventory, each day locked once; the terms last: a change of them is
    # before or after.
    days = iter_days(month, month_end(month))
    lock_shared(
        connection, [*((step.asset, day) for day in days for step in STATEMENT_READS), TERMS_LOCK]
    )
    return clock(connection)


def closed_at(connection: Connection, month: date) -> datetime | None:
    return connection.execute(
        select(statement_months.c.closed_at).where(statement_months.c.month == month)
    ).scalar_one_or_none()


def repriced_at(connection: Connection, month: date) -> datetime | None:
    return connection.execute(
        select(statement_months.c.repriced_at).where(statement_months.c.month == month)
    ).scalar_one_or_none()


def written_since_priced(connection: Connection) -> dict[date, datetime]:
    """The priced months some day of which a statement reads was written after the month
    was priced: {month: newest such write}."""
    w, m = day_writes.c, statement_months.c
    month = func.date_trunc("month", w.day)
    rows = connection.execute(
        select(m.month, func.max(w.written_at))
        .join_from(
            statement_months,
            day_writes,
            and_(cast(month, Date) == m.month, w.written_at > m.repriced_at),
        )
        .where(w.asset.in_([step.asset for step in STATEMENT_READS]))
        .group_by(m.month)
    ).all()
    return dict(rows)


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


def _terms_known_through(connection: Connection, month: date) -> date | None:
    """The month's last day with an inventory snapshot: how far its terms are known."""
    s = inventory_snapshots.c
    return connection.execute(
        select(func.max(s.day)).where(s.day.between(month, month_end(month)))
    ).scalar()


def price_month(connection: Connection, month: date) -> PricedMonth:
    """The month priced now (caller holds the transaction); raises PricingError naming the
    deployments without a known plan and the kinds without a price, writing nothing."""
    statements, lines = PRICED_STATEMENTS, PRICED_LINES
    recreate(connection, statements, lines)  # a second pricing in one transaction replaces
    usage = month_usage(connection, month, month_end(month)).subquery("usage")
    closed = frozen_heads(month)
    # A month with no snapshot has no deployment known to have existed in it.
    as_of = _terms_known_through(connection, month) or month_end(month)
    terms = stage_terms(connection, as_of)
    existed = terms.heads
    periods = plan_periods(as_of).subquery("periods")
    ids = union(
        select(existed.c.deployment_id),
        select(usage.c.deployment_id),
        select(closed.c.deployment_id),
    ).subquery("ids")
    is_closed = closed.c.deployment_id.is_not(None)
    connection.execute(
        insert(statements).from_select(
            ["deployment_id", "plan_code", "base_usd", "frozen", "plan_periods", "minimum_usd"],
            select(
                ids.c.deployment_id,
                func.coalesce(closed.c.plan_code, existed.c.plan_code),
                func.coalesce(closed.c.base_usd, existed.c.base_usd),
                is_closed,
                case((is_closed, closed.c.plan_periods), else_=periods.c.plan_periods),
                case((is_closed, closed.c.minimum_usd), else_=existed.c.minimum_usd),
            )
            .select_from(ids)
            .outerjoin(closed, closed.c.deployment_id == ids.c.deployment_id)
            .outerjoin(existed, existed.c.deployment_id == ids.c.deployment_id)
            .outerjoin(periods, periods.c.deployment_id == ids.c.deployment_id),
        )
    )
    frozen = frozen_lines(month)
    inclusions = terms.inclusions
    scope = f"of {month_text(month)}"
    raise_if_unpriceable(connection, statements, inclusions, usage, terms.tiers, frozen, scope)
    priced = priced_lines(statements, inclusions, usage, terms.tiers, frozen)
    connection.execute(insert(lines).from_select(list(LINE_COLUMNS), priced))
    st, pl = statements.c, lines.c
    amounts = (
        select(func.coalesce(func.sum(pl.amount_usd), 0))
        .where(pl.deployment_id == st.deployment_id)
        .scalar_subquery()
    )
    connection.execute(
        update(statements).values(
            minimum_true_up_usd=minimum_true_up_sql(st.base_usd + amounts, st.minimum_usd)
        )
    )
    connection.exec_driver_sql(f"ANALYZE {statements.name}, {lines.name}")
    return PricedMonth(month, statements, lines)
