"""A plan as the quote rule prices it, and the billing kind a base fee is booked under."""

from dataclasses import dataclass
from decimal import Decimal

# The billing kinds of a base fee and of a minimum true-up in the ledger of a month
# (statement_adjustments.billing_kind).
BASE_FEE = "base"
MINIMUM_TRUE_UP = "minimum_true_up"


@dataclass(frozen=True)
class Plan:
    """One row of `metering.plans` with its `plan_items`: the base fee (USD, a month), the
    quantity of each billing kind it includes and its minimum commitment (USD, a month;
    None: none)."""

    plan_code: str
    base_usd: Decimal
    included: dict[str, Decimal]
    minimum_usd: Decimal | None = None
