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
from arcadia_pipeline.pricing.rules import overage_qty
from arcadia_pipeline.pricing.terms import load_caps, load_plan, load_tiers
from arcadia_pipeline.pricing.tiers import (
    Tier,
    TierCharge,
    billable_qty,
    graduated_usd,
    marginal_price,
    minimum_true_up,
    tier_charges,
)
from arcadia_pipeline.pricing.usage import usage_by_resource, usage_for_period
from arcadia_pipeline.utc import month_start


@dataclass(frozen=True)
class QuoteLine:
    billing_kind: str
    usage: Decimal  # in the kind's unit
    billable: Decimal  # usage with each resource's month capped (pricing/tiers.billable_qty)
    included: Decimal
    overage_qty: Decimal
    unit_price_usd: Decimal  # the price of the tier its last unit of overage falls in
    overage_usd: Decimal  # Σ tiers' amounts, rounded half-up to the cent once
    tiers: tuple[TierCharge, ...] = ()  # the overage cut into the plan's tiers


@dataclass(frozen=True)
class Quote:
    deployment_id: str
    plan_code: str
    period_start: date
    as_of: date
    base_usd: Decimal
    lines: list[QuoteLine] = field(default_factory=list)
    minimum_usd: Decimal | None = None  # the prorated minimum commitment; None: none

    @property
    def lines_usd(self) -> Decimal:
        return sum((line.overage_usd for line in self.lines), Decimal(0))

    @property
    def minimum_true_up_usd(self) -> Decimal:
        """What lifts base + lines to the minimum (pricing/tiers.minimum_true_up)."""
        return minimum_true_up(self.base_usd + self.lines_usd, self.minimum_usd)

    @property
    def total_usd(self) -> Decimal:
        """base + lines + the true-up: the larger of base + lines and the minimum."""
        before = self.base_usd + self.lines_usd
        return before + minimum_true_up(before, self.minimum_usd)


class UnpricedKind(PricingError):
    """A billing kind has usage or an inclusion but no overage tiers for the plan."""


def price_quote(
    deployment_id: str,
    plan: Plan,
    tiers: dict[str, list[Tier]],
    usage: dict[str, Decimal],
    period_start: date,
    as_of: date,
    billable: dict[str, Decimal] | None = None,
) -> Quote:
    """A line for every kind the plan includes or the deployment used, sorted by kind, its
    overage (billable usage above the inclusion; `billable` None: no cap, the usage) priced on
    the kind's graduated `tiers` (pricing/tiers.py; a single open tier is a flat price);
    raises UnpricedKind for a kind without tiers, BadTiers for a tier set that does not end
    open."""
    billable = usage if billable is None else billable
    lines = []
    for kind in sorted(set(plan.included) | set(usage)):
        if kind not in tiers:
            raise UnpricedKind(
                f"billing kind {kind!r} in the quote of deployment {deployment_id!r} has "
                f"no overage tier for plan {plan.plan_code!r} in metering.overage_tiers"
            )
        used = usage.get(kind, Decimal(0))
        included = plan.included.get(kind, Decimal(0))
        over = overage_qty(billable.get(kind, Decimal(0)), included)
        lines.append(
            QuoteLine(
                billing_kind=kind,
                usage=used,
                billable=billable.get(kind, Decimal(0)),
                included=included,
                overage_qty=over,
                unit_price_usd=marginal_price(over, tiers[kind]),
                overage_usd=graduated_usd(over, tiers[kind]),
                tiers=tuple(tier_charges(over, tiers[kind])),
            )
        )
    return Quote(
        deployment_id, plan.plan_code, period_start, as_of, plan.base_usd, lines, plan.minimum_usd
    )


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
    billable = capped_usage(
        usage_by_resource(connection, deployment_id, period_start, as_of),
        load_caps(connection, as_of),
    )
    # After a plan change in the month, the last plan's tiers price the overage (as the heads
    # of pricing/lines.py carry the last plan).
    tiers = load_tiers(connection, terms.plan_code, as_of)
    return price_quote(deployment_id, terms, tiers, usage, period_start, as_of, billable)


def capped_usage(
    per_resource: list[tuple[str, str, Decimal]], caps: dict[str, Decimal]
) -> dict[str, Decimal]:
    """{billing_kind: billable qty}: each (kind, resource, month's qty) of one deployment
    counted at most its kind's cap (pricing/tiers.billable_qty), summed per kind."""
    billable: dict[str, Decimal] = {}
    for kind, _resource, qty in per_resource:
        billable[kind] = billable.get(kind, Decimal(0)) + billable_qty(qty, caps.get(kind))
    return billable
