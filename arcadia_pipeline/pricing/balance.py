"""Whether written totals balance: a quote's or a statement's total is its base plus its
lines, each line priced by the quote rule (both balance checks are built on this)."""

from __future__ import annotations

from sqlalchemy import func, select

from arcadia_pipeline.pricing.rules import mispriced_sql


def lines_per_deployment(where, deployment_id, usage, included, unit_price, overage_qty, amount):
    """Per deployment, the written lines matching `where`: their total amount and how many
    are not priced by the rule (what a quote's or a statement's total must agree with)."""
    return (
        select(
            deployment_id.label("deployment_id"),
            func.sum(amount).label("amount"),
            func.count()
            .filter(mispriced_sql(usage, included, unit_price, overage_qty, amount))
            .label("mispriced"),
        )
        .where(where)
        .group_by(deployment_id)
        .subquery("lines")
    )


def unbalanced_text(deployment_id, total, base, lines, mispriced) -> str:
    """How a total that is not base + lines (or has mispriced lines) is reported."""
    text = f"{deployment_id}: total {total} != base {base} + lines {lines}"
    return text + (f" ({mispriced} mispriced line(s))" if mispriced else "")
