"""The quote rule (docs/domain.md "Plan catalog"): plan base (not prorated) plus, per billing
kind, round_half_up(max(0, usage - included) * unit_price, 0.01).

The pure functions are the reference (pricing/reference.py prices with them); the `_sql`
twins generate the same arithmetic for quotes and statements, and the tests check that the
two agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from sqlalchemy import func, or_
from sqlalchemy.sql.elements import ColumnElement

CENT = Decimal("0.01")
# Enough digits that usage (38 digits, 18 after the point) minus included, times a price,
# is exact: the only rounding is the one to the cent (the default context keeps 28).
EXACT_DIGITS = 100


def round_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(amount: Decimal) -> str:
    """USD as people read it (CLI JSON, the UI's tables): two decimals, rounded half up to the
    cent as the rule rounds. Decimal('-3') -> '-3.00'."""
    return f"{round_cents(Decimal(amount)):f}"


def decimal_text(value: Decimal) -> str:
    """An exact decimal as people read it: no exponent, no trailing zeros, no minus zero.
    Decimal('24.000') -> '24', Decimal('1E-3') -> '0.001', Decimal('-0.0') -> '0'."""
    text = f"{Decimal(value):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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
