"""The quote rule's quantities and money (docs/domain.md "Plan catalog"): a line's overage
is max(0, usage - included), priced on the graduated tiers of pricing/tiers.py and rounded
half-up to the cent once; money and exact decimals as people read them.

The pure functions are the reference (pricing/reference.py prices with them); the `_sql`
twins generate the same arithmetic for quotes and statements, and the tests check that the
two agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from sqlalchemy import func
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


def overage_qty_sql(usage, included) -> ColumnElement:
    return func.greatest(usage - included, 0)
