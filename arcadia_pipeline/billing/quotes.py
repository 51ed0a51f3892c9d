"""A day's month-to-date quote per deployment: the deployment_quotes step, priced from the
day's aggregates on the catalog's terms prorated by the deployments' history
(pricing/proration.py, pricing/lines.py), set-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Connection,
    Numeric,
    Table,
    Text,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
)

from arcadia_pipeline.billing.spend import MONTH_TO_DATE, record_crossings
from arcadia_pipeline.db.schema import (
    deployment_quote_lines,
    deployment_quotes,
    usage_period_aggregates,
)
from arcadia_pipeline.pricing.lines import LINE_COLUMNS, priced_lines, raise_if_unpriceable
from arcadia_pipeline.pricing.proration import StagedTerms, stage_terms
from arcadia_pipeline.pricing.tiers import minimum_true_up_sql
from arcadia_pipeline.utc import month_start

# The quote lines' columns, in LINE_COLUMNS' order (their names predate the statements').
_QUOTE_LINE_COLUMNS = (
    "deployment_id", "billing_kind", "usage", "billable_qty", "included", "overage_qty",
    "unit_price_usd", "overage_usd",
)  # fmt: skip


# What deployment_quotes writes: the quotes, then their lines.
QUOTE_TABLES = (deployment_quotes, deployment_quote_lines)


@dataclass(frozen=True)
class QuotedDay:
    day: date
    quotes: int
    base_usd: Decimal
    overage_usd: Decimal
    minimum_true_up_usd: Decimal
    total_usd: Decimal
    top: list[dict]  # the largest quotes, for a table in the UI
    spend_thresholds_reached: int  # spend alert thresholds first reached this day (spend.py)


def quoted_heads(terms: StagedTerms, day: date):
    """Every deployment that existed in day's month through day (its prorated base fee is
    due even without usage), with its last plan, and any other with usage this month, with
    no plan (pricing refuses it, naming it): the heads of pricing/lines.py."""
    a, h = usage_period_aggregates.c, terms.heads.c
    unknown = (
        select(
            a.deployment_id,
            cast(null(), Text),
            cast(null(), Numeric),
            false(),
            cast(null(), Numeric),
        )  # fmt: skip
        .distinct()
        .where(a.as_of_date == day, a.deployment_id.not_in(select(h.deployment_id)))
    )
    return union_all(select(terms.heads), unknown)


def _usage(day: date):
    a = usage_period_aggregates.c
    return select(a.deployment_id, a.billing_kind, a.qty, a.billable_qty).where(a.as_of_date == day)


def replace_quotes_day(connection: Connection, day: date, run_id: str) -> QuotedDay:
    """Month-to-date quote per deployment as of day (caller holds the day's transaction),
    priced from that day's aggregates on day's prorated terms (write_priced)."""
    terms = stage_terms(connection, day)  # the prorated terms, computed once
    heads = quoted_heads(terms, day).cte("heads")
    usage = _usage(day).subquery("usage")
    scope = f"quoted on {day}"
    raise_if_unpriceable(connection, heads, terms.inclusions, usage, terms.tiers, None, scope)
    lines = priced_lines(heads, terms.inclusions, usage, terms.tiers)
    return write_priced(connection, day, run_id, heads, lines, QUOTE_TABLES, MONTH_TO_DATE)


def write_priced(
    connection: Connection, day: date, run_id: str, heads, lines, tables: tuple[Table, Table],
    basis: str,
) -> QuotedDay:  # fmt: skip
    """Replace day's rows of `tables` (quotes, their lines: deployment_quotes' shape) with a
    quote per head ((deployment_id, plan_code, base_usd, minimum_usd, …): pricing/lines.py)
    totalling its priced `lines` (SELECT LINE_COLUMNS), then record the spend thresholds they
    reach on `basis` (billing/spend.py), in the same transaction as the quotes they were
    measured on. total = base + lines + the minimum true-up (pricing/tiers.py).

    One statement writes the quotes and their lines: the lines are priced once (a CTE), the
    quotes take their totals from them, the lines are inserted from the same rows."""
    quotes_table, lines_table = tables
    q, ql = quotes_table.c, lines_table.c
    connection.execute(delete(lines_table).where(ql.as_of_date == day))
    connection.execute(delete(quotes_table).where(q.as_of_date == day))
    lines = lines.cte("lines")
    overage = (
        select(lines.c.deployment_id, func.sum(lines.c.amount_usd).label("overage_usd"))
        .group_by(lines.c.deployment_id)
        .subquery("overage")
    )
    overage_usd = func.coalesce(overage.c.overage_usd, 0)
    h = heads.c
    true_up = minimum_true_up_sql(h.base_usd + overage_usd, h.minimum_usd)
    quotes = insert(quotes_table).from_select(
        ["as_of_date", "deployment_id", "plan_code", "period_start", "base_usd", "overage_usd",
         "minimum_usd", "minimum_true_up_usd", "total_usd", "run_id"],
        select(
            literal(day), h.deployment_id, h.plan_code, literal(month_start(day)), h.base_usd,
            overage_usd, h.minimum_usd, true_up, h.base_usd + overage_usd + true_up,
            literal(run_id),
        ).outerjoin_from(heads, overage, overage.c.deployment_id == h.deployment_id),
    ).cte("quotes")  # fmt: skip
    # The quotes' statement runs before the lines' foreign key is checked (at its end).
    connection.execute(
        insert(lines_table)
        .from_select(
            ["as_of_date", *_QUOTE_LINE_COLUMNS],
            select(literal(day), *(lines.c[c] for c in LINE_COLUMNS)),
        )
        .add_cte(quotes)
    )
    reached = record_crossings(connection, day, quotes_table, basis)
    return summarise_quotes(connection, day, reached, quotes_table)


def summarise_quotes(
    connection: Connection, day: date, reached: int, quotes_table: Table = deployment_quotes
) -> QuotedDay:
    q = quotes_table.c
    count, *sums = connection.execute(
        select(
            func.count(), func.sum(q.base_usd), func.sum(q.overage_usd),
            func.sum(q.minimum_true_up_usd), func.sum(q.total_usd),
        ).where(q.as_of_date == day)
    ).one()  # fmt: skip
    top = (
        connection.execute(
            select(
                q.deployment_id,
                q.plan_code,
                q.base_usd,
                q.overage_usd,
                q.minimum_true_up_usd,
                q.total_usd,
            )  # fmt: skip
            .where(q.as_of_date == day)
            .order_by(q.total_usd.desc(), q.deployment_id)
            .limit(10)
        )
        .mappings()
        .all()
    )
    zero = Decimal("0.00")
    return QuotedDay(
        day, count, *(amount or zero for amount in sums), [dict(r) for r in top], reached
    )
