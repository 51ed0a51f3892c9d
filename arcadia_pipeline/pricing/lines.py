"""Priced lines: the quote rule applied in SQL to the deployments of a scope, their usage and
their terms. Quotes, statement drafts and adjustments are all written from `priced_lines`;
`raise_if_unpriceable` refuses, naming them, the deployments and kinds it cannot price.

A scope's *heads* are its deployments, one row each: (deployment_id, plan_code, base_usd,
frozen), base_usd the prorated base fee (NULL when a plan is not in the month's catalog),
frozen true for a deployment of a closed month (priced on the terms it closed with:
pricing/terms.py).
Its *inclusions* are (deployment_id, billing_kind, included_qty), the prorated included
quantities of its deployments' plans (pricing/proration.py).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Numeric,
    Text,
    and_,
    cast,
    func,
    not_,
    null,
    select,
    union_all,
)

from arcadia_pipeline.db.schema import overage_prices
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.errors import MAX_LISTED, BadSourceData
from arcadia_pipeline.pricing.rules import overage_qty_sql, overage_usd_sql

LINE_COLUMNS = (
    "deployment_id", "billing_kind", "qty", "included_qty", "overage_qty", "unit_price_usd",
    "amount_usd",
)  # fmt: skip


def head_columns() -> list[Column]:
    """The columns of a scope's heads (see the module), for a table holding them."""
    return [
        Column("deployment_id", Text),
        Column("plan_code", Text),
        Column("base_usd", Numeric),  # NULL: a plan not in the catalog
        Column("frozen", Boolean),  # priced on the terms its closed month kept
    ]


def line_columns() -> list[Column]:
    """LINE_COLUMNS as columns, for a table holding priced lines."""
    return [
        Column(name, Text if name in ("deployment_id", "billing_kind") else Numeric)
        for name in LINE_COLUMNS
    ]


def same_line(left, right):
    """Two (deployment_id, billing_kind) row sources meet on the line they price."""
    return and_(
        left.c.deployment_id == right.c.deployment_id,
        left.c.billing_kind == right.c.billing_kind,
    )


class PricingError(BadSourceData):
    """A scope cannot be priced: a deployment's plan, or a billing kind's overage price, is
    missing from the catalog. Raised before anything is written, naming them."""


def _open_inclusions(heads, inclusions):
    """The inclusions of the heads that are not frozen."""
    h, i = heads.c, inclusions.c
    return select(i.deployment_id, i.billing_kind, i.included_qty).join_from(
        inclusions, heads, and_(h.deployment_id == i.deployment_id, not_(h.frozen))
    )


def priced_lines(heads, inclusions, usage, month: date, frozen=None):
    """SELECT LINE_COLUMNS: a line for every billing kind a head used or its terms include,
    quantities in the kind's unit and money in USD (amount rounded half-up to the cent).

    heads, inclusions: see the module; usage: (deployment_id, billing_kind, qty) of those
    deployments; month: the billing month whose overage prices apply (db/terms.py); frozen:
    pricing.terms.frozen_lines of the month (None: no head is frozen). A frozen head's lines
    keep their included quantity and price; a kind it used only after its close takes its
    prorated inclusion and the month's price. One hashed full join
    of the terms with the usage."""
    h = heads.c
    open_terms = _open_inclusions(heads, inclusions).subquery("open_terms")
    terms = select(
        open_terms.c.deployment_id,
        open_terms.c.billing_kind,
        open_terms.c.included_qty,
        cast(null(), Numeric).label("unit_price_usd"),
    )
    if frozen is not None:
        f = frozen.c
        terms = union_all(
            terms, select(f.deployment_id, f.billing_kind, f.included_qty, f.unit_price_usd)
        )
    terms = terms.subquery("terms")
    joined = terms.join(usage, same_line(usage, terms), full=True)
    deployment_id = func.coalesce(terms.c.deployment_id, usage.c.deployment_id)
    billing_kind = func.coalesce(terms.c.billing_kind, usage.c.billing_kind)
    qty = func.coalesce(usage.c.qty, 0)
    included = func.coalesce(terms.c.included_qty, 0)
    query = select().select_from(joined)
    if frozen is not None:  # a frozen head's kind used after its close: its inclusion now
        later = inclusions.alias("later")
        query = query.join(heads, h.deployment_id == deployment_id).outerjoin(
            later,
            and_(
                h.frozen,
                later.c.deployment_id == deployment_id,
                later.c.billing_kind == billing_kind,
            ),
        )
        included = func.coalesce(terms.c.included_qty, later.c.included_qty, 0)
    prices = in_effect(overage_prices, month, "prices")
    price = func.coalesce(terms.c.unit_price_usd, prices.c.unit_price_usd)
    return query.outerjoin(prices, prices.c.billing_kind == billing_kind).add_columns(
        deployment_id.label("deployment_id"),
        billing_kind.label("billing_kind"),
        qty.label("qty"),
        included.label("included_qty"),
        overage_qty_sql(qty, included).label("overage_qty"),
        price.label("unit_price_usd"),
        overage_usd_sql(qty, included, price).label("amount_usd"),
    )


def raise_if_unpriceable(
    connection: Connection, heads, inclusions, usage, month: date, frozen, scope: str
) -> None:
    """Raise PricingError naming the heads without a plan in the catalog, then the billing
    kinds without a price in effect for `month`, of the scope ("quoted on 2025-03-04", "of
    2025-02"). Each side is filtered to the unpriced kinds first: a handful of rows, not
    every line."""
    h = heads.c
    unplanned = connection.execute(
        select(h.deployment_id, h.plan_code, func.count().over().label("total"))
        .where(h.base_usd.is_(None))
        .order_by(h.deployment_id)
        .limit(MAX_LISTED)
    ).all()
    if unplanned:
        listed = ", ".join(
            f"{r.deployment_id} ({'no plan' if r.plan_code is None else f'plan {r.plan_code!r}'})"
            for r in unplanned
        )
        raise PricingError(
            f"{unplanned[0].total} deployment(s) {scope} have no plan in metering.plans: {listed}"
        )
    priced = select(in_effect(overage_prices, month).c.billing_kind)
    open_terms = _open_inclusions(heads, inclusions).subquery("open_terms")
    t, u = open_terms.c, usage.c
    kinds = [
        select(t.deployment_id, t.billing_kind).where(t.billing_kind.not_in(priced)),
        select(u.deployment_id, u.billing_kind).where(u.billing_kind.not_in(priced)),
    ]
    if frozen is not None:  # a closed line keeps its own price
        f = frozen.c
        kinds[1] = kinds[1].where(~select(f.billing_kind).where(same_line(frozen, usage)).exists())
    unpriced = union_all(*kinds).subquery("unpriced")
    rows = connection.execute(
        select(unpriced.c.billing_kind, func.min(unpriced.c.deployment_id))
        .group_by(unpriced.c.billing_kind)
        .order_by(unpriced.c.billing_kind)
    ).all()
    if rows:
        listed = ", ".join(f"{kind} (e.g. deployment {dep})" for kind, dep in rows)
        raise PricingError(
            f"billing kinds {scope} have no overage price in metering.overage_prices: {listed}"
        )
