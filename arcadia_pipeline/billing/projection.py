"""A day's projection of each deployment's quote to its month's end (issue 19): the
projected_quotes step, set-based.

For day D the projection is the quote the deployment will get on its month's last day if
nothing changes after D. Each resource version open at the end of D (in D's inventory, not
ended by then) goes on accruing to the month's end at its rate, accrued exactly as the
metering would (metering/accrual.accrued_qty_sql over [D + 1, month end): the daily records
telescope to that difference); the usage is D's aggregates plus that rest of the month,
capped per resource like any month's (pricing/usage.capped_resource_sums): each resource's
month to D (capped_resource_usage) plus its rest. The prorated terms already count an open
deployment version to the month's end (pricing/proration.py), so the heads and inclusions
are the quote's. On a month's last day the rest is empty and the
projection is the quote (its check proves it).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Numeric,
    Text,
    literal,
    or_,
    select,
    union_all,
)

from arcadia_pipeline.billing.quotes import QuotedDay, write_quotes
from arcadia_pipeline.billing.spend import PROJECTED
from arcadia_pipeline.db.schema import (
    UNATTRIBUTED,
    capped_resource_usage,
    projected_quote_lines,
    projected_quotes,
    resource_inventory,
    usage_period_aggregates,
)
from arcadia_pipeline.db.staging import staged, transaction_table
from arcadia_pipeline.db.types import TSTZ
from arcadia_pipeline.metering.accrual import accrued_qty_sql
from arcadia_pipeline.pricing.reference import Quote, QuoteLine
from arcadia_pipeline.pricing.terms import load_tiers
from arcadia_pipeline.pricing.tiers import tier_charges
from arcadia_pipeline.pricing.usage import capped_resource_sums, summed_with_billable
from arcadia_pipeline.utc import day_start, month_end


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


def projected_usage(day: date):
    """SELECT (deployment_id, billing_kind, qty, billable_qty, records): `day`'s aggregates
    plus the rest of the month, raw and billable (each resource's whole month of a capped
    kind, its month to `day` in capped_resource_usage and the rest, counted at most its
    cap); records: those metered to `day`."""
    a = usage_period_aggregates.c
    # One rest of the month for both sums: PostgreSQL computes a CTE named twice once (Citus
    # inlines it into each shard's query).
    rest = rest_of_month(day).cte("rest")
    parts = union_all(
        select(a.deployment_id, a.billing_kind, a.qty, a.records).where(a.as_of_date == day),
        select(rest.c.deployment_id, rest.c.billing_kind, rest.c.qty, literal(0)),
    )
    c, r = capped_resource_usage.c, rest.c
    resources = union_all(
        select(c.deployment_id, c.billing_kind, c.resource_id, c.qty).where(c.as_of_date == day),
        select(r.deployment_id, r.billing_kind, r.resource_id, r.qty),
    ).subquery("resource_rows")
    return summed_with_billable(parts, capped_resource_sums(resources, day))


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


def replace_projection_day(connection: Connection, day: date, run_id: str) -> QuotedDay:
    """Each deployment's quote projected from `day` to its month's end (caller holds the
    day's transaction), priced as the quotes are (billing/quotes.write_quotes), and the spend
    thresholds the projections reach recorded on the `projected` basis. The projected usage
    is computed once into a table of the transaction: the pricing reads it twice (what it
    cannot price, then the lines), and each read would accrue the rest of the month again."""
    usage = transaction_table(
        "staged_projected_usage",
        Column("deployment_id", Text),
        Column("billing_kind", Text),
        Column("qty", Numeric),
        Column("billable_qty", Numeric),
        Column("records", BigInteger),
    )
    staged(connection, usage, projected_usage(day))
    return write_quotes(
        connection,
        day,
        run_id,
        select(usage),
        (projected_quotes, projected_quote_lines),
        PROJECTED,
    )
