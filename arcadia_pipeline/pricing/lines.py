"""Priced lines: the quote rule applied in SQL to the deployments of a scope, their usage and
their terms. Quotes, statement drafts and adjustments are all written from `priced_lines`;
`raise_if_unpriceable` refuses, naming them, the deployments and kinds it cannot price.

A scope's *heads* are its deployments, one row each: (deployment_id, plan_code, base_usd,
frozen, minimum_usd), base_usd the prorated base fee (NULL when a plan is not in the month's
catalog), frozen true for a deployment of a closed month (priced on the terms it closed with:
pricing/terms.py), minimum_usd the prorated minimum commitment (NULL: none).
Its *inclusions* are (deployment_id, billing_kind, included_qty), the prorated included
quantities of its deployments' plans (pricing/proration.py).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Numeric,
    Text,
    and_,
    func,
    not_,
    select,
    tuple_,
    union_all,
)

from arcadia_pipeline.errors import MAX_LISTED, BadSourceData
from arcadia_pipeline.pricing.rules import overage_qty_sql
from arcadia_pipeline.pricing.tiers import graduated_usd_sql

LINE_COLUMNS = (
    "deployment_id", "billing_kind", "qty", "billable_qty", "included_qty", "overage_qty",
    "unit_price_usd", "amount_usd",
)  # fmt: skip


def head_columns() -> list[Column]:
    """The columns of a scope's heads (see the module), for a table holding them."""
    return [
        Column("deployment_id", Text),
        Column("plan_code", Text),
        Column("base_usd", Numeric),  # NULL: a plan not in the catalog
        Column("frozen", Boolean),  # priced on the terms its closed month kept
        Column("minimum_usd", Numeric),  # prorated; NULL: no minimum commitment
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
    """A scope cannot be priced: a deployment's plan, or the overage tiers of its plan and a
    billing kind, are missing from the catalog. Raised before anything is written, naming
    them."""


def _open_inclusions(heads, inclusions):
    """The inclusions of the heads that are not frozen."""
    h, i = heads.c, inclusions.c
    return select(i.deployment_id, i.billing_kind, i.included_qty).join_from(
        inclusions, heads, and_(h.deployment_id == i.deployment_id, not_(h.frozen))
    )


def priced_lines(heads, inclusions, usage, tiers, frozen=None):
    """SELECT LINE_COLUMNS: a line for every billing kind a head used or its terms include,
    quantities in the kind's unit and money in USD: the overage (billable usage above the
    inclusion) priced on the graduated tiers of the head's plan and the kind (pricing/tiers.py),
    the amount rounded half-up to the cent once, unit_price_usd the tier price of its last
    unit.

    heads, inclusions: see the module; usage: (deployment_id, billing_kind, qty,
    billable_qty) of those deployments (pricing/usage.billable_usage_of); tiers: the overage
    tiers in effect for the billing month (plan_code, billing_kind, up_to_qty,
    unit_price_usd: pricing/proration.stage_terms' staged tiers); frozen:
    pricing.terms.frozen_lines of the month (None: no head is frozen). A frozen head's lines
    keep their included quantity; a kind it used only after its close takes its prorated
    inclusion. Its tiers are the closed month's, which never change (migration 0007's
    guard).
    One hashed full join of the terms with the usage, then one join with the tiers."""
    h = heads.c
    open_terms = _open_inclusions(heads, inclusions).subquery("open_terms")
    terms = select(open_terms.c.deployment_id, open_terms.c.billing_kind, open_terms.c.included_qty)
    if frozen is not None:
        f = frozen.c
        terms = union_all(terms, select(f.deployment_id, f.billing_kind, f.included_qty))
    terms = terms.subquery("terms")
    joined = terms.join(usage, same_line(usage, terms), full=True)
    deployment_id = func.coalesce(terms.c.deployment_id, usage.c.deployment_id)
    billing_kind = func.coalesce(terms.c.billing_kind, usage.c.billing_kind)
    qty = func.coalesce(usage.c.qty, 0)
    billable = func.coalesce(usage.c.billable_qty, 0)
    included = func.coalesce(terms.c.included_qty, 0)
    query = select().select_from(joined).join(heads, h.deployment_id == deployment_id)
    if frozen is not None:  # a frozen head's kind used after its close: its inclusion now
        later = inclusions.alias("later")
        query = query.outerjoin(
            later,
            and_(
                h.frozen,
                later.c.deployment_id == deployment_id,
                later.c.billing_kind == billing_kind,
            ),
        )
        included = func.coalesce(terms.c.included_qty, later.c.included_qty, 0)
    quantities = query.add_columns(
        deployment_id.label("deployment_id"),
        billing_kind.label("billing_kind"),
        qty.label("qty"),
        billable.label("billable_qty"),
        included.label("included_qty"),
        overage_qty_sql(billable, included).label("overage_qty"),
        h.plan_code,
    )
    # Materialised: each line meets its own plan's tiers. Flattened into the tiers' join, the
    # planner (blind to the COALESCEd keys) joined every line with every plan's tiers of its
    # kind and sorted those rows on disk: on tiered plans at 1M resources the quotes'
    # statement took 9.8 s against 5.5 s (benchmarks/README.md, the 2026-12-01 round).
    quantities = quantities.cte("quantities").prefix_with("MATERIALIZED")
    return graduated_usd_sql(quantities, tiers, *LINE_COLUMNS[:6])


def raise_if_unpriceable(
    connection: Connection, heads, inclusions, usage, tiers, frozen, scope: str
) -> None:
    """Raise PricingError naming the heads without a plan in the catalog, then the (plan,
    billing kind) of its lines without an open (last) overage tier among `tiers` (those in
    effect for the billing month: see priced_lines), of the scope ("quoted on 2025-03-04",
    "of 2025-02"), each with one deployment."""
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
    # Every line needs an open (last) tier for its head's plan and its kind; each side is
    # filtered to the lines without one first (an anti-join): a handful of rows, not all.
    open_tiers = select(tiers.c.plan_code, tiers.c.billing_kind).where(tiers.c.up_to_qty.is_(None))
    open_terms = _open_inclusions(heads, inclusions).subquery("open_terms")
    sides = [open_terms, usage] if frozen is None else [open_terms, usage, frozen]
    untiered = union_all(
        *(
            select(h.plan_code, side.c.billing_kind, side.c.deployment_id)
            .join_from(side, heads, h.deployment_id == side.c.deployment_id)
            .where(tuple_(h.plan_code, side.c.billing_kind).not_in(open_tiers))
            for side in sides
        )
    ).subquery("untiered")
    x = untiered.c
    rows = connection.execute(
        select(x.plan_code, x.billing_kind, func.min(x.deployment_id))
        .group_by(x.plan_code, x.billing_kind)
        .order_by(x.plan_code, x.billing_kind)
    ).all()
    if rows:
        listed = ", ".join(
            f"{kind} of plan {plan!r} (e.g. deployment {dep})" for plan, kind, dep in rows
        )
        raise PricingError(
            f"billing kinds {scope} have no open (last) overage tier in metering.overage_tiers:"
            f" {listed}"
        )
