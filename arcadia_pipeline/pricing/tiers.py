"""Graduated overage tiers, per-resource monthly caps and the minimum commitment: the pure
reference of each rule and its SQL twin (issue 19; tested to agree to the cent).

- **Cap** (`metering.billing_caps`): a resource's quantity of a billing kind in one billing
  month counts at most `monthly_cap_qty` toward its deployment's billable usage, per
  deployment and resource (a resource that moved between deployments is capped on each side),
  as DigitalOcean caps a droplet's billable hours in a month. No cap row: no cap.
- **Graduated tiers** (`metering.overage_tiers`): a line's overage quantity (billable usage
  above the plan's prorated inclusion) is cut into consecutive tiers, tier k covering
  (up_to of tier k-1, up_to of tier k], the first from 0 and the last open (up_to NULL); the
  amount is round_half_up(Σ tier quantity × tier unit price, 0.01), as Stripe's and Lago's
  graduated pricing charge each unit at the price of the tier it falls in.
- **Minimum commitment** (`metering.plans.minimum_usd`, prorated by existence like the base
  fee): a quote or statement whose total is below it gets a `minimum_true_up` line up to it.

Quantities are in the billing kind's unit, money in USD (Decimal, exact until the one
rounding to the cent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from sqlalchemy import ARRAY, Numeric, and_, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline.pricing.rules import EXACT_DIGITS, round_cents


@dataclass(frozen=True)
class Tier:
    """One graduated tier: up to `up_to_qty` of overage (None: no upper bound) at
    `unit_price_usd` per unit of the billing kind."""

    up_to_qty: Decimal | None
    unit_price_usd: Decimal


@dataclass(frozen=True)
class TierCharge:
    """The part of a line's overage that fell in one tier, and what it costs (unrounded)."""

    from_qty: Decimal
    up_to_qty: Decimal | None
    qty: Decimal
    unit_price_usd: Decimal
    amount_usd: Decimal


class BadTiers(ValueError):
    """Tiers that do not cover the overage once: bounds not increasing, an open tier that is
    not last, no open last tier, a negative or non-finite bound or price."""


def check_tiers(tiers: Sequence[Tier]) -> None:
    """Raise BadTiers unless `tiers` (in order) are increasing finite bounds > 0, each price
    finite and >= 0, and only the last tier open."""
    if not tiers:
        raise BadTiers("no tier: a billing kind needs at least one, the last open")
    previous = Decimal(0)
    for n, tier in enumerate(tiers):
        if not tier.unit_price_usd.is_finite() or tier.unit_price_usd < 0:
            raise BadTiers(f"tier {n + 1}: unit price {tier.unit_price_usd} is not >= 0")
        last = n == len(tiers) - 1
        if tier.up_to_qty is None:
            if not last:
                raise BadTiers(f"tier {n + 1} is open (no up_to_qty) but is not the last")
            continue
        if last:
            raise BadTiers(f"the last tier ends at {tier.up_to_qty}: it must be open")
        if not tier.up_to_qty.is_finite() or tier.up_to_qty <= previous:
            raise BadTiers(f"tier {n + 1}: up_to_qty {tier.up_to_qty} is not above {previous}")
        previous = tier.up_to_qty


def billable_qty(qty: Decimal, monthly_cap_qty: Decimal | None) -> Decimal:
    """One resource's month of one billing kind, capped: min(qty, cap); no cap -> qty."""
    return qty if monthly_cap_qty is None else min(qty, monthly_cap_qty)


def tier_charges(overage_qty: Decimal, tiers: Sequence[Tier]) -> list[TierCharge]:
    """The overage cut into `tiers` (checked by check_tiers): one charge per tier it reaches."""
    check_tiers(tiers)
    charges = []
    with localcontext(prec=EXACT_DIGITS):
        lower = Decimal(0)
        for tier in tiers:
            if overage_qty <= lower:
                break
            upper = overage_qty if tier.up_to_qty is None else min(overage_qty, tier.up_to_qty)
            qty = upper - lower
            charges.append(
                TierCharge(
                    lower, tier.up_to_qty, qty, tier.unit_price_usd, qty * tier.unit_price_usd
                )
            )
            if tier.up_to_qty is None:
                break
            lower = tier.up_to_qty
    return charges


def graduated_usd(overage_qty: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """round_half_up(Σ tier quantity × tier price, 0.01): one rounding per line, not per tier."""
    with localcontext(prec=EXACT_DIGITS):
        return round_cents(
            sum((c.amount_usd for c in tier_charges(overage_qty, tiers)), Decimal(0))
        )


def marginal_price(overage_qty: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """The unit price a line shows: that of the tier its last unit of overage falls in, the
    first tier's with no overage (a single open tier: the kind's flat price)."""
    charges = tier_charges(overage_qty, tiers)
    return charges[-1].unit_price_usd if charges else tiers[0].unit_price_usd


def minimum_true_up(total_usd: Decimal, minimum_usd: Decimal | None) -> Decimal:
    """What lifts a total to the (prorated, cent-rounded) minimum commitment; 0 when the total
    reaches it or there is none."""
    if minimum_usd is None:
        return Decimal("0.00")
    return max(Decimal("0.00"), round_cents(minimum_usd) - total_usd)


# ---- the SQL twins ---------------------------------------------------------------------


def billable_qty_sql(qty, monthly_cap_qty) -> ColumnElement:
    """billable_qty in SQL; a NULL cap is no cap (least() ignores NULLs)."""
    return func.least(qty, monthly_cap_qty)


def tier_lower_sql(tiers) -> ColumnElement:
    """Each tier row's lower bound: the up_to_qty of the tier before it in its (plan, kind),
    0 for the first; `tiers` has plan_code, billing_kind, up_to_qty, unit_price_usd."""
    t = tiers.c
    return func.coalesce(
        func.lag(t.up_to_qty).over(
            partition_by=(t.plan_code, t.billing_kind), order_by=t.up_to_qty.asc().nulls_last()
        ),
        literal(0, Numeric),
    )


def graduated_usd_sql(lines, tiers, *keys: str):
    """SELECT keys…, unit_price_usd, amount_usd: marginal_price and graduated_usd of each line
    of `lines` (its keys, plan_code, billing_kind, overage_qty) on its plan's and kind's
    `tiers`, one row per distinct keys (keys must name a line); a line with no overage costs
    0.00; a line whose kind has no tier is left out (the caller refuses it, naming it)."""
    t = tiers.c
    bounded = select(
        t.plan_code,
        t.billing_kind,
        t.unit_price_usd,
        tier_lower_sql(tiers).label("lower_qty"),
        t.up_to_qty,
    ).subquery("bounded_tiers")
    b, line = bounded.c, lines.c
    in_tier = func.greatest(
        func.least(line.overage_qty, func.coalesce(b.up_to_qty, line.overage_qty)) - b.lower_qty,
        0,
    )
    # The tier holding the last unit: the highest whose lower bound the overage passes (the
    # first with none).
    reached = or_(b.lower_qty < line.overage_qty, b.lower_qty == 0)
    marginal = func.array_agg(
        aggregate_order_by(b.unit_price_usd, b.lower_qty.desc()), type_=ARRAY(Numeric)
    ).filter(reached)[1]
    return (
        select(
            *(line[k] for k in keys),
            marginal.label("unit_price_usd"),
            # round(numeric, 2) rounds half away from zero: half-up, amounts being >= 0.
            func.round(cast(func.sum(in_tier * b.unit_price_usd), Numeric), 2).label("amount_usd"),
        )
        .join_from(
            lines, bounded, and_(b.plan_code == line.plan_code, b.billing_kind == line.billing_kind)
        )
        .group_by(*(line[k] for k in keys))
    )


def minimum_true_up_sql(total_usd, minimum_usd) -> ColumnElement:
    """minimum_true_up in SQL: 0 with no minimum (NULL) or a total at or above it."""
    return func.greatest(func.coalesce(func.round(minimum_usd, 2) - total_usd, 0), 0)
