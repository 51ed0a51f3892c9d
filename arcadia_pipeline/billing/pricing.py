"""The quote rule: plan base (not prorated) plus, per billing kind,
round_half_up(max(0, usage - included) * unit_price, 0.01).

The pure functions are the reference (the CLI's live quotes use them); the `_sql` twins
generate the same arithmetic for the deployment_quotes asset, and the tests check that
the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from sqlalchemy import func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline.errors import BadSourceData

CENT = Decimal("0.01")
# Enough digits that usage (38 digits, 18 after the point) minus included, times a price,
# is exact: the only rounding is the one to the cent (the default context keeps 28).
EXACT_DIGITS = 100


def round_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def overage_qty(usage: Decimal, included: Decimal) -> Decimal:
    with localcontext(prec=EXACT_DIGITS):
        return max(Decimal(0), usage - included)


def overage_usd(usage: Decimal, included: Decimal, unit_price: Decimal) -> Decimal:
    with localcontext(prec=EXACT_DIGITS):
        return round_cents(overage_qty(usage, included) * unit_price)


def overage_qty_sql(usage, included) -> ColumnElement:
    return func.greatest(usage - included, 0)


def overage_usd_sql(usage, included, unit_price) -> ColumnElement:
    # PostgreSQL's round(numeric, 2) rounds half away from zero: half-up for amounts >= 0.
    return func.round(overage_qty_sql(usage, included) * unit_price, 2)


def mispriced_sql(usage, included, unit_price, overage_qty, overage_usd) -> ColumnElement[bool]:
    """A written line whose overage quantity or amount is not what the rule gives."""
    return or_(
        overage_qty != overage_qty_sql(usage, included),
        overage_usd != overage_usd_sql(usage, included, unit_price),
    )


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


@dataclass(frozen=True)
class QuoteLine:
    billing_kind: str
    usage: Decimal
    included: Decimal
    overage_qty: Decimal
    unit_price_usd: Decimal
    overage_usd: Decimal


@dataclass(frozen=True)
class Quote:
    deployment_id: str
    plan_code: str
    period_start: date
    as_of: date
    base_usd: Decimal
    lines: list[QuoteLine] = field(default_factory=list)

    @property
    def total_usd(self) -> Decimal:
        return self.base_usd + sum((line.overage_usd for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class Plan:
    plan_code: str
    base_usd: Decimal
    included: dict[str, Decimal]


class UnpricedKind(BadSourceData):
    """A billing kind has usage but no overage price in metering.overage_prices."""


def price_quote(
    deployment_id: str,
    plan: Plan,
    prices: dict[str, Decimal],
    usage: dict[str, Decimal],
    period_start: date,
    as_of: date,
) -> Quote:
    """A quote line for every kind the plan includes or the deployment used."""
    lines = []
    for kind in sorted(set(plan.included) | set(usage)):
        if kind not in prices:
            raise UnpricedKind(
                f"billing kind {kind!r} in the quote of deployment {deployment_id!r} has "
                "no overage price in metering.overage_prices"
            )
        used = usage.get(kind, Decimal(0))
        included = plan.included.get(kind, Decimal(0))
        lines.append(
            QuoteLine(
                billing_kind=kind,
                usage=used,
                included=included,
                overage_qty=overage_qty(used, included),
                unit_price_usd=prices[kind],
                overage_usd=overage_usd(used, included, prices[kind]),
            )
        )
    return Quote(deployment_id, plan.plan_code, period_start, as_of, plan.base_usd, lines)
