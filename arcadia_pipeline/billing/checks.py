"""The rules the billing checks apply to a day: the aggregates equal the records, the quotes
add up. Each finds the problems of one day, listed up to MAX_LISTED and counted in full."""

from datetime import date

from sqlalchemy import Connection, func, or_, select

from arcadia_pipeline.days.steps import Problems
from arcadia_pipeline.db.schema import (
    deployment_quote_lines,
    deployment_quotes,
    projected_quote_lines,
    projected_quotes,
    usage_period_aggregates,
)
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.pricing.balance import (
    lines_per_deployment,
    unbalanced_sql,
    unbalanced_text,
)
from arcadia_pipeline.pricing.lines import same_line
from arcadia_pipeline.pricing.usage import month_usage
from arcadia_pipeline.utc import month_end, month_start


def aggregate_mismatches(connection: Connection, day: date) -> Problems:
    """(deployment, kind) whose aggregate differs from SUM(usage_records) month to date, raw
    or billable (each resource capped: pricing/usage.month_usage)."""
    sums = month_usage(connection, month_start(day), day).subquery("sums")
    a = (
        select(usage_period_aggregates)
        .where(usage_period_aggregates.c.as_of_date == day)
        .subquery("a")
    )
    joined = sums.join(a, same_line(a, sums), full=True)
    rows = connection.execute(
        select(
            func.coalesce(sums.c.deployment_id, a.c.deployment_id).label("deployment_id"),
            func.coalesce(sums.c.billing_kind, a.c.billing_kind).label("billing_kind"),
            a.c.qty.label("aggregate"),
            sums.c.qty.label("recorded"),
            a.c.billable_qty.label("aggregate_billable"),
            sums.c.billable_qty.label("recorded_billable"),
            func.count().over().label("total"),
        )
        .select_from(joined)
        .where(
            or_(
                a.c.qty.is_distinct_from(sums.c.qty),
                a.c.billable_qty.is_distinct_from(sums.c.billable_qty),
            )
        )
        .limit(MAX_LISTED)
    ).all()
    return Problems.of_rows(
        rows,
        lambda r: (
            f"{r.deployment_id}/{r.billing_kind}: aggregate {r.aggregate}, records sum {r.recorded}"
            + (
                ""
                if r.aggregate != r.recorded  # the raw sums differ: enough said
                else f"; billable {r.aggregate_billable}, capped sum {r.recorded_billable}"
            )
        ),
    )


def quote_mismatches(connection: Connection, day: date) -> Problems:
    """Quotes whose total is not base + lines + the minimum true-up, whose true-up or lines
    do not follow the rule."""
    return unbalanced_quotes(connection, day, deployment_quotes, deployment_quote_lines)


def projection_mismatches(connection: Connection, day: date) -> Problems:
    """quote_mismatches of the day's projections to the month's end."""
    return unbalanced_quotes(connection, day, projected_quotes, projected_quote_lines)


def projection_differs_from_quote(connection: Connection, day: date) -> Problems:
    """On a month's last day, the deployments whose projection is not their quote to the cent
    (its total), then the lines that differ (quantities or amount): nothing is left of the
    month to project. No problem on any other day. Two shard-local full joins (each keyed by
    deployment), not one joined with the other, which a Citus cluster would pull."""
    if day != month_end(day):
        return Problems()
    q, p = deployment_quotes.c, projected_quotes.c
    totals = connection.execute(
        select(
            func.coalesce(q.deployment_id, p.deployment_id).label("deployment_id"),
            p.total_usd.label("projected"),
            q.total_usd.label("quoted"),
            func.count().over().label("total"),
        )
        .select_from(
            deployment_quotes.join(
                projected_quotes,
                (p.as_of_date == q.as_of_date) & (p.deployment_id == q.deployment_id),
                full=True,
            )
        )
        .where(
            func.coalesce(q.as_of_date, p.as_of_date) == day,
            q.total_usd.is_distinct_from(p.total_usd),
        )
        .order_by("deployment_id")
        .limit(MAX_LISTED)
    ).all()
    ql, pl = deployment_quote_lines.c, projected_quote_lines.c
    lines = connection.execute(
        select(
            func.coalesce(ql.deployment_id, pl.deployment_id).label("deployment_id"),
            func.coalesce(ql.billing_kind, pl.billing_kind).label("billing_kind"),
            func.count().over().label("total"),
        )
        .select_from(
            deployment_quote_lines.join(
                projected_quote_lines,
                (pl.as_of_date == ql.as_of_date)
                & same_line(projected_quote_lines, deployment_quote_lines),
                full=True,
            )
        )
        .where(
            func.coalesce(ql.as_of_date, pl.as_of_date) == day,
            or_(
                ql.usage.is_distinct_from(pl.usage),
                ql.billable_qty.is_distinct_from(pl.billable_qty),
                ql.overage_usd.is_distinct_from(pl.overage_usd),
            ),
        )
        .order_by("deployment_id", "billing_kind")
        .limit(MAX_LISTED)
    ).all()
    return Problems.of_rows(
        totals, lambda r: f"{r.deployment_id}: projected {r.projected}, quoted {r.quoted}"
    ) + Problems.of_rows(
        lines, lambda r: f"{r.deployment_id}/{r.billing_kind}: the projected line is not the quoted"
    )


def unbalanced_quotes(connection: Connection, day: date, quotes, lines_table) -> Problems:
    """The day's rows of `quotes` (deployment_quotes' shape, their lines in `lines_table`)
    whose total is not base + lines + the minimum true-up, whose true-up or lines do not
    follow the rule."""
    q, ql = quotes.c, lines_table.c
    written = (
        select(
            ql.deployment_id, q.plan_code, ql.billing_kind, ql.usage.label("qty"),
            ql.billable_qty, ql.included.label("included_qty"), ql.overage_qty, ql.unit_price_usd,
            ql.overage_usd.label("amount_usd"),
        )
        .join_from(
            lines_table, quotes,
            (q.as_of_date == ql.as_of_date) & (q.deployment_id == ql.deployment_id),
        )
        .where(ql.as_of_date == day)
        .subquery("written")
    )  # fmt: skip
    lines = lines_per_deployment(written, day)
    overage = func.coalesce(lines.c.amount, 0)
    rows = connection.execute(
        select(
            q.deployment_id, q.base_usd, q.overage_usd, q.minimum_true_up_usd, q.total_usd,
            overage.label("lines"), lines.c.mispriced, func.count().over().label("total"),
        )
        .outerjoin(lines, lines.c.deployment_id == q.deployment_id)
        .where(
            q.as_of_date == day,
            or_(
                q.overage_usd != overage,
                lines.c.mispriced > 0,
                unbalanced_sql(
                    q.total_usd, q.base_usd, overage, q.minimum_usd, q.minimum_true_up_usd
                ),
            ),
        )
        .limit(MAX_LISTED)
    ).all()  # fmt: skip
    return Problems.of_rows(
        rows,
        lambda r: unbalanced_text(
            r.deployment_id, r.total_usd, r.base_usd, r.lines, r.minimum_true_up_usd, r.mispriced
        ),
    )
