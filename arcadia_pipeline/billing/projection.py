"""A day's projection of each deployment's quote to its month's end (issue 19): the
projected_quotes step, set-based.

For day D the projection is the quote the deployment will get on its month's last day if
nothing changes after D. Each resource version open at the end of D (in D's inventory, not
ended by then) goes on accruing to the month's end at its rate, accrued exactly as the
metering would (metering/accrual.accrued_qty_sql over [D + 1, month end): the daily records
telescope to that difference).

The projection starts from D's quote (deployment_quotes), which it follows: the prorated
terms already count an open deployment version to the month's end (pricing/proration.py),
so its heads (plan, base fee, minimum) and each line's inclusion are the quote's, and its
usage is each line's plus the rest of the month. A kind capped in the month is summed per
resource like any month's (pricing/usage.capped_resource_sums): each resource's month to D
(capped_resource_usage) plus its rest. Every resource open at D's end has a record on D, so
its deployment and kind have a line in D's quote; one without is a quote older than D's
inventory, refused. On a month's last day the rest is empty and the projection is the quote
(its check proves it).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Numeric,
    Text,
    func,
    literal,
    or_,
    select,
    union_all,
)

from arcadia_pipeline.billing.quotes import QuotedDay, write_priced
from arcadia_pipeline.billing.spend import PROJECTED
from arcadia_pipeline.db.schema import (
    UNATTRIBUTED,
    capped_resource_usage,
    deployment_quote_lines,
    deployment_quotes,
    projected_quote_lines,
    projected_quotes,
    resource_inventory,
)
from arcadia_pipeline.db.staging import staged, transaction_table
from arcadia_pipeline.db.types import TSTZ
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.metering.accrual import accrued_qty_sql
from arcadia_pipeline.pricing.lines import LINE_COLUMNS, same_line
from arcadia_pipeline.pricing.proration import stage_tiers
from arcadia_pipeline.pricing.reference import Quote, QuoteLine
from arcadia_pipeline.pricing.rules import overage_qty_sql
from arcadia_pipeline.pricing.terms import load_caps, load_tiers
from arcadia_pipeline.pricing.tiers import graduated_usd_sql, tier_charges
from arcadia_pipeline.pricing.usage import capped_resource_sums
from arcadia_pipeline.utc import day_start, month_end


class QuoteBehindInventory(Exception):
    """projected_quotes of a day needs that day's deployment_quotes priced on the day's
    inventory: a deployment and kind with resources open at the day's end has no line in
    the day's quote."""


def rest_of_month(day: date):
    """SELECT (deployment_id, billing_kind, resource_id, qty): what each attributed, billable
    resource version open at the end of `day` accrues from then to its month's end, in the
    kind's unit (0 rows' worth on a month's last day)."""
    i = resource_inventory.c
    day_end = literal(day_start(day + timedelta(days=1)), TSTZ)
    month_over = literal(day_start(month_end(day) + timedelta(days=1)), TSTZ)
    return select(
        i.deployment_id,
        i.billing_kind,
        i.resource_id,
        accrued_qty_sql(i.accrual, i.status, i.size_gb, day_end, month_over, month=day).label(
            "qty"
        ),
    ).where(
        i.day == day,
        i.deployment_id != UNATTRIBUTED,
        i.billing_kind.is_not(None),
        i.ends_at == day_end,  # it reaches the day's end (the snapshot is clipped to the day)
        or_(i.valid_to.is_(None), i.valid_to > day_end),  # and does not end there
    )


def projected_quantities(day: date, capped: bool):
    """SELECT (deployment_id, billing_kind, plan_code, qty, billable_qty, included_qty,
    overage_qty, quoted) of each line of `day`'s quote and each (deployment, kind) with
    resources open at the day's end: the quote's usage plus the rest of the month, raw and
    billable, over the quote's inclusion; quantities in the kind's unit. quoted: the quote
    has the line (the caller refuses a row without). `capped`: a cap is in effect in the
    month (pricing/terms.load_caps); a capped kind's billable is then each resource's month
    to `day` (capped_resource_usage) plus its rest, counted at most its cap, summed. Else
    billable is the quote's plus the rest, summed per (deployment, kind) alone."""
    rest = rest_of_month(day)
    # Named twice when capped: PostgreSQL computes such a CTE once (Citus inlines it into
    # each shard's query). Without a cap, a subquery that the sum runs through in parallel.
    rest = rest.cte("rest") if capped else rest.subquery("rest")
    r = rest.c
    rest_sums = (
        select(r.deployment_id, r.billing_kind, func.sum(r.qty).label("qty"))
        .group_by(r.deployment_id, r.billing_kind)
        .subquery("rest_sums")
    )
    ql, q = deployment_quote_lines.c, deployment_quotes.c
    lines = (
        select(ql.deployment_id, ql.billing_kind, ql.usage, ql.billable_qty, ql.included)
        .where(ql.as_of_date == day)
        .subquery("quote_lines")
    )
    heads = select(q.deployment_id, q.plan_code).where(q.as_of_date == day).subquery("heads")
    deployment_id = func.coalesce(lines.c.deployment_id, rest_sums.c.deployment_id)
    billing_kind = func.coalesce(lines.c.billing_kind, rest_sums.c.billing_kind)
    rest_qty = func.coalesce(rest_sums.c.qty, 0)
    billable = func.coalesce(lines.c.billable_qty, 0) + rest_qty
    query = (
        select()
        .select_from(lines.join(rest_sums, same_line(lines, rest_sums), full=True))
        .outerjoin(heads, heads.c.deployment_id == deployment_id)
    )
    if capped:
        c = capped_resource_usage.c
        resources = union_all(
            select(c.deployment_id, c.billing_kind, c.resource_id, c.qty).where(
                c.as_of_date == day
            ),
            select(r.deployment_id, r.billing_kind, r.resource_id, r.qty),
        ).subquery("resource_rows")
        sums = capped_resource_sums(resources, day).subquery("capped")
        query = query.outerjoin(
            sums, (sums.c.deployment_id == deployment_id) & (sums.c.billing_kind == billing_kind)
        )
        billable = func.coalesce(sums.c.billable_qty, billable)
    included = func.coalesce(lines.c.included, 0)
    return query.add_columns(
        deployment_id.label("deployment_id"),
        billing_kind.label("billing_kind"),
        heads.c.plan_code,
        (func.coalesce(lines.c.usage, 0) + rest_qty).label("qty"),
        billable.label("billable_qty"),
        included.label("included_qty"),
        overage_qty_sql(billable, included).label("overage_qty"),
        lines.c.deployment_id.is_not(None).label("quoted"),
    )


def projected_quote(connection: Connection, deployment_id: str, day: date) -> Quote | None:
    """The deployment's materialised projection as of `day` as a pricing.reference.Quote (its
    lines cut into the plan's tiers for display); None when it has none that day."""
    q, ql = projected_quotes.c, projected_quote_lines.c
    head = connection.execute(
        select(q.plan_code, q.period_start, q.base_usd, q.minimum_usd).where(
            q.as_of_date == day, q.deployment_id == deployment_id
        )
    ).one_or_none()
    if head is None:
        return None
    tiers = load_tiers(connection, head.plan_code, day)
    rows = connection.execute(
        select(ql)
        .where(ql.as_of_date == day, ql.deployment_id == deployment_id)
        .order_by(ql.billing_kind)
    ).all()
    lines = [
        QuoteLine(
            billing_kind=r.billing_kind,
            usage=r.usage,
            billable=r.billable_qty,
            included=r.included,
            overage_qty=r.overage_qty,
            unit_price_usd=r.unit_price_usd,
            overage_usd=r.overage_usd,
            tiers=tuple(tier_charges(r.overage_qty, tiers[r.billing_kind]))
            if r.billing_kind in tiers
            else (),
        )
        for r in rows
    ]
    return Quote(
        deployment_id, head.plan_code, head.period_start, day, head.base_usd, lines,
        head.minimum_usd,
    )  # fmt: skip


# The day's projected quantities per line, staged once (replace_projection_day).
STAGED_PROJECTION = transaction_table(
    "staged_projection",
    Column("deployment_id", Text),
    Column("billing_kind", Text),
    Column("plan_code", Text),
    Column("qty", Numeric),
    Column("billable_qty", Numeric),
    Column("included_qty", Numeric),
    Column("overage_qty", Numeric),
    Column("quoted", Boolean),
)


def replace_projection_day(connection: Connection, day: date, run_id: str) -> QuotedDay:
    """Each deployment's quote projected from `day` to its month's end (caller holds the
    day's transaction): `day`'s quote with the rest of the month added to its lines' usage
    (projected_quantities), the overage priced on the month's tiers as the quotes' is
    (pricing/tiers.graduated_usd_sql), written as the quotes are (billing/quotes.
    write_priced), and the spend thresholds the projections reach recorded on the
    `projected` basis. Raises QuoteBehindInventory, naming the lines, when resources open at
    the day's end have no line in its quote, writing nothing."""
    capped = bool(load_caps(connection, day))
    quantities = staged(connection, STAGED_PROJECTION, projected_quantities(day, capped))
    _raise_if_unquoted(connection, quantities, day)
    tiers = stage_tiers(connection, day)
    lines = graduated_usd_sql(quantities, tiers, *LINE_COLUMNS[:6])
    q = deployment_quotes.c
    heads = (
        select(q.deployment_id, q.plan_code, q.base_usd, q.minimum_usd)
        .where(q.as_of_date == day)
        .cte("heads")
    )
    tables = (projected_quotes, projected_quote_lines)
    return write_priced(connection, day, run_id, heads, lines, tables, PROJECTED)


def _raise_if_unquoted(connection: Connection, quantities, day: date) -> None:
    x = quantities.c
    rows = connection.execute(
        select(x.deployment_id, x.billing_kind, func.count().over().label("total"))
        .where(~x.quoted)
        .order_by(x.deployment_id, x.billing_kind)
        .limit(MAX_LISTED)
    ).all()
    if rows:
        listed = ", ".join(f"{r.deployment_id} {r.billing_kind}" for r in rows)
        raise QuoteBehindInventory(
            f"{rows[0].total} (deployment, billing kind) with resources open at the end of "
            f"{day.isoformat()} have no line in its deployment_quotes: {listed}; materialise "
            "deployment_quotes for that day again first"
        )
