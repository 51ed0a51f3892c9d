"""The pure Python reference of priced lines: what `pricing.lines.priced_lines` computes in
SQL, for one deployment on the catalog's terms prorated by its history (the CLI's live
`quote` prices with it, and the tests hold the SQL to it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, select

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.db.schema import inventory_deployments, inventory_snapshots
from arcadia_pipeline.pricing.lines import PricingError
from arcadia_pipeline.pricing.proration import (
    PlanPeriod,
    covered_seconds,
    metered_spans,
    month_seconds,
    prorated_plan,
)
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


def month_to_date_quote(connection: Connection, deployment_id: str, as_of: date) -> Quote | None:
    """The quote for as_of's billing month from its first day through as_of, on the
    catalog's terms for that month prorated by the deployment's versions in the month's snapshots
    through as_of (pricing/proration.py); None when it did not exist in the month by then."""
    period_start = month_start(as_of)
    d, s = inventory_deployments.c, inventory_snapshots.c
    metered = connection.execute(select(s.day).where(s.day.between(period_start, as_of))).scalars()
    spans = metered_spans(list(metered), as_of)
    rows = connection.execute(
        select(d.day, d.plan_code, d.valid_from, d.valid_to)
        .where(d.deployment_id == deployment_id, d.day.between(period_start, as_of))
        .order_by(d.starts_at)
    ).all()
    covered = [(r.plan_code, covered_seconds(r.valid_from, r.valid_to, spans[r.day])) for r in rows]
    covered = [(code, seconds) for code, seconds in covered if seconds > 0]
    if not covered:
        return None
    plans = {code: load_plan(connection, code, as_of) for code, _ in covered}
    terms = prorated_plan(
        [PlanPeriod(plans[code], seconds) for code, seconds in covered], month_seconds(as_of)
    )
    usage = usage_for_period(connection, deployment_id, period_start, as_of)
    prices = load_prices(connection, as_of)
    return price_quote(deployment_id, terms, prices, usage, period_start, as_of)
