"""Whether written totals balance: a quote's or a statement's total is its base plus its
lines plus its minimum true-up, each line priced by the quote rule on its plan's tiers and
the true-up by the minimum commitment (both balance checks are built on this)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline.db.schema import overage_tiers
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.pricing.rules import overage_qty_sql
from arcadia_pipeline.pricing.tiers import graduated_usd_sql, minimum_true_up_sql


def lines_per_deployment(written, month: date):
    """Per deployment, the written lines `written` (a subquery of deployment_id, plan_code,
    billing_kind, qty, billable_qty, included_qty, overage_qty, unit_price_usd, amount_usd):
    their total amount and how many are not priced by the rule (on their billable quantity and
    the tiers of their plan in effect for `month`): what a quote's or a statement's total must
    agree with."""
    w = written.c
    repriced = graduated_usd_sql(
        written, in_effect(overage_tiers, month), "deployment_id", "billing_kind"
    ).subquery("repriced")
    r = repriced.c
    mispriced = or_(
        w.overage_qty != overage_qty_sql(w.billable_qty, w.included_qty),
        w.billable_qty > w.qty,
        w.amount_usd.is_distinct_from(r.amount_usd),
        w.unit_price_usd.is_distinct_from(r.unit_price_usd),
    )
    return (
        select(
            w.deployment_id,
            func.sum(w.amount_usd).label("amount"),
            func.count().filter(mispriced).label("mispriced"),
        )
        .outerjoin_from(
            written,
            repriced,
            (r.deployment_id == w.deployment_id) & (r.billing_kind == w.billing_kind),
        )
        .group_by(w.deployment_id)
        .subquery("lines")
    )


def unbalanced_sql(total, base, lines, minimum, true_up) -> ColumnElement[bool]:
    """A written total that is not base + lines + true-up, or a true-up that is not what the
    minimum commitment gives (pricing/tiers.minimum_true_up)."""
    return or_(
        total != base + lines + true_up,
        true_up != minimum_true_up_sql(base + lines, minimum),
    )


def unbalanced_text(deployment_id, total, base, lines, true_up, mispriced) -> str:
    """How a total that is not base + lines + true-up (or has mispriced lines or a wrong
    true-up) is reported."""
    text = f"{deployment_id}: total {total} != base {base} + lines {lines}"
    text += f" + true-up {true_up}" if true_up else ""
    return text + (f" ({mispriced} mispriced line(s))" if mispriced else "")
