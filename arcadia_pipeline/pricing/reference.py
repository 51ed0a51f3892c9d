"""The pure Python reference of priced lines: what `pricing.lines.priced_lines` computes in
SQL, for one deployment on the catalog's terms (the CLI's live `quote` prices with it, and
the tests hold the SQL to it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.pricing.lines import PricingError
from arcadia_pipeline.pricing.rules import overage_qty, overage_usd
from arcadia_pipeline.pricing.terms import load_plan, load_prices
from arcadia_pipeline.pricing.usage import usage_for_period
from arcadia_pipeline.utc import month_start


@dataclass(frozen=True)
class QuoteLine:
    billing_kind: str
    usage: Decimal  # in the kind's unit
    included: Decimal
    overage_qty: Decimal
    unit_price_usd: Decimal
    overage_usd: Decimal  # rounded half-up to the cent


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


class UnpricedKind(PricingError):
    """A billing kind has usage or an inclusion but no overage price."""


def price_quote(
    deployment_id: str,
    plan: Plan,
    prices: dict[str, Decimal],
    usage: dict[str, Decimal],
    period_start: date,
    as_of: date,
) -> Quote:
    """A line for every kind the plan includes or the deployment used, sorted by kind;
    raises UnpricedKind for a kind without a price in `prices`."""
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


def month_to_date_quote(
    connection: Connection, deployment_id: str, plan_code: str, as_of: date
) -> Quote:
    """The quote for as_of's billing month from its first day through as_of, on the
    catalog's terms now."""
    period_start = month_start(as_of)
    usage = usage_for_period(connection, deployment_id, period_start, as_of)
    return price_quote(
        deployment_id,
        load_plan(connection, plan_code),
        load_prices(connection),
        usage,
        period_start,
        as_of,
    )
