"""A plan as the quote rule prices it, and the billing kind a base fee is booked under."""

from dataclasses import dataclass
from decimal import Decimal

# The billing kind of a base fee in the ledger of a month (statement_adjustments.billing_kind).
BASE_FEE = "base"


@dataclass(frozen=True)
class Plan:
    """One row of `metering.plans` with its `plan_items`: the base fee (USD, a month) and the
    quantity of each billing kind it includes."""

    plan_code: str
    base_usd: Decimal
    included: dict[str, Decimal]
