"""Proration by existence (docs/domain.md §7): the terms a deployment is
priced on for a billing month are its versions' plans, each weighted by how much of the month
the version covers, to the microsecond.

    share(version)   = seconds the version covers in the month / seconds in the month
    base_usd         = round_half_up(Σ base(plan) × share, 0.01)
    minimum_usd      = round_half_up(Σ minimum(plan) × share, 0.01)  (none: 0; all none: NULL)
    included_qty(k)  = R(Σ included(plan, k) × share),  R = round half-up to 1e-18 (exact
                       to the quantities' scale, like accrual: no other rounding)

A deployment on one plan all month is priced on its plan unchanged (share 1); one that did
not exist in a month has no share of it and no terms.

Which versions cover which time, month to date as of day D: each metered day of the month
through D speaks, with the versions its snapshot holds (their whole [valid_from, valid_to)),
for its *span*: from its own start to the next metered day's start. The first metered day's
span starts at the month's start and the last one's (D's, once D is metered) ends at the
month's end. On a fully metered month every span is its day, so each day's versions count
exactly the part of the day they cover; a version still open at the end of D counts on to
its known end or the month's end (a quote on the 10th shows the base fee the month will
have if nothing changes); and a month whose first days are not metered yet is still known
from the versions that began before them (a deployment on one plan since before the month
is quoted its whole plan whatever day is metered first).

`prorated_plan` is the pure reference; `prorated_sql` and the queries below generate the same
arithmetic for PostgreSQL (integer `div`, no float), and the tests hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Numeric,
    Table,
    Text,
    and_,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline import utc
from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.db.schema import (
    inventory_deployments,
    inventory_snapshots,
    overage_tiers,
    plan_items,
    plans,
)
from arcadia_pipeline.db.staging import staged, transaction_table
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.db.types import MONEY, QTY, QTY_SCALE, TSTZ
from arcadia_pipeline.pricing.lines import head_columns
from arcadia_pipeline.utc import DAY, day_start, month_end

CENT_PLACES = 2


def month_seconds(month: date) -> int:
    """Seconds in the UTC billing month of `month`."""
    return utc.days_in_month(month) * 86400


# ---- pure reference ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlanPeriod:
    """A deployment version's part of a billing month: its plan and the seconds it covers
    (to the microsecond)."""

    plan: Plan
    seconds: Decimal


def _rounded(exact: Fraction, places: int) -> Decimal:
    """exact (>= 0) rounded half-up to `places` decimal places."""
    scaled = (exact * 10**places + Fraction(1, 2)).__floor__()
    return Decimal(scaled).scaleb(-places)


def prorated_plan(periods: list[PlanPeriod], seconds_in_month: int) -> Plan:
    """The terms of a deployment's month: a Plan named for its last period's plan, with the
    prorated base fee (USD, to the cent), included quantities (the kinds' units, to 1e-18)
    and minimum commitment (USD, to the cent; a plan without one counts 0 for its time, and
    None when none of them has one). Raises ValueError for no periods or more seconds than
    the month has."""
    if not periods:
        raise ValueError("a deployment with no version in the month has no terms for it")
    total = sum((Fraction(p.seconds) for p in periods), Fraction(0))
    if total > seconds_in_month or any(p.seconds < 0 for p in periods):
        raise ValueError(f"periods cover {total} s, outside 0..{seconds_in_month} s")
    base = sum((Fraction(p.plan.base_usd) * Fraction(p.seconds) for p in periods), Fraction(0))
    minimum = sum(
        (Fraction(p.plan.minimum_usd or 0) * Fraction(p.seconds) for p in periods), Fraction(0)
    )
    committed = any(p.plan.minimum_usd is not None for p in periods)
    included: dict[str, Fraction] = {}
    for period in periods:
        for kind, qty in period.plan.included.items():
            weighted = Fraction(qty) * Fraction(period.seconds)
            included[kind] = included.get(kind, Fraction(0)) + weighted
    return Plan(
        periods[-1].plan.plan_code,
        _rounded(base / seconds_in_month, CENT_PLACES),
        {kind: _rounded(q / seconds_in_month, QTY_SCALE) for kind, q in included.items()},
        _rounded(minimum / seconds_in_month, CENT_PLACES) if committed else None,
    )


def period_bases(periods: list[PlanPeriod], seconds_in_month: int) -> list[Decimal]:
    """Each period's part of the prorated base fee (USD), periods in time order: the
    difference of the rounded cumulative bases, so the parts add up to prorated_plan's
    base_usd exactly."""
    parts, cumulative, shown = [], Fraction(0), Decimal("0.00")
    for period in periods:
        cumulative += Fraction(period.plan.base_usd) * Fraction(period.seconds)
        rounded = _rounded(cumulative / seconds_in_month, CENT_PLACES)
        parts.append(rounded - shown)
        shown = rounded
    return parts


def metered_spans(metered_days: list[date], as_of: date) -> dict[date, tuple[datetime, datetime]]:
    """{day: (span_start, span_end)} of the metered days of as_of's month through as_of (see
    the module): the instants each day's snapshot speaks for."""
    days = sorted(d for d in metered_days if utc.month_start(as_of) <= d <= as_of)
    month_over = day_start(month_end(as_of)) + DAY
    starts = [day_start(utc.month_start(as_of)), *(day_start(d) for d in days[1:])]
    ends = [*(day_start(d) for d in days[1:]), month_over]
    return {d: (start, end) for d, start, end in zip(days, starts, ends, strict=True)}


def covered_seconds(
    valid_from: datetime, valid_to: datetime | None, span: tuple[datetime, datetime]
) -> Decimal:
    """Seconds (to the microsecond, >= 0) of a span a deployment version of that day's
    snapshot covers: [valid_from, valid_to) clipped to the span, an open version to its end."""
    start, end = max(valid_from, span[0]), min(valid_to or span[1], span[1])
    if end <= start:
        return Decimal(0)
    delta = end - start
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


# ---- the same arithmetic as SQL ----------------------------------------------------------


def prorated_sql(weighted_seconds, seconds_in_month, places: int) -> ColumnElement:
    """round_half_up(weighted_seconds / seconds_in_month, places) exactly: `div` is
    PostgreSQL's exact truncating division, adding half the divisor first rounds half-up."""
    scale = literal(10**places, Numeric)
    units = func.div(weighted_seconds * scale * 2 + seconds_in_month, 2 * seconds_in_month)
    # Multiplying by 10^-places (not dividing) gives exactly `places` digits after the point.
    kind = QTY if places > CENT_PLACES else MONEY
    return cast(units * literal(Decimal(1).scaleb(-places), Numeric), kind)


def _metered_spans_sql(as_of: date):
    """(day, span_start, span_end) of the metered days of as_of's month through as_of: the
    SQL twin of metered_spans."""
    s = inventory_snapshots.c
    d0 = func.timezone("UTC", cast(s.day, DateTime))
    month_begins = literal(day_start(utc.month_start(as_of)), TSTZ)
    month_over = literal(day_start(month_end(as_of)) + DAY, TSTZ)
    return (
        select(
            s.day,
            case((s.day == func.min(s.day).over(), month_begins), else_=d0).label("span_start"),
            func.coalesce(func.lead(d0).over(order_by=s.day), month_over).label("span_end"),
        )
        .where(s.day.between(utc.month_start(as_of), as_of))
        .subquery("spans")
    )


def covered_rows(as_of: date):
    """(deployment_id, plan_code, starts_at, ends_at): the part of as_of's month each
    deployment version of a metered day's snapshot covers in that day's span (covered_seconds
    in SQL); the spans never overlap, so neither do the parts of one deployment."""
    spans = _metered_spans_sql(as_of)
    d = inventory_deployments.c
    starts_at = func.greatest(d.valid_from, spans.c.span_start)
    ends_at = func.least(func.coalesce(d.valid_to, spans.c.span_end), spans.c.span_end)
    return (
        select(d.deployment_id, d.plan_code, starts_at.label("starts_at"), ends_at.label("ends_at"))
        .join_from(inventory_deployments, spans, spans.c.day == d.day)
        .where(ends_at > starts_at)
        .subquery("covered")
    )


def _seconds(rows) -> ColumnElement:
    return extract("epoch", rows.c.ends_at - rows.c.starts_at)


def plan_shares(as_of: date):
    """(deployment_id, plan_code, seconds, last_end): each plan's seconds of as_of's month
    to date (see covered_rows) per deployment, and when its time ends."""
    rows = covered_rows(as_of)
    return (
        select(
            rows.c.deployment_id,
            rows.c.plan_code,
            func.sum(_seconds(rows)).label("seconds"),
            func.max(rows.c.ends_at).label("last_end"),
        )
        .group_by(rows.c.deployment_id, rows.c.plan_code)
        .subquery("plan_shares")
    )


def prorated_heads(as_of: date):
    """(deployment_id, plan_code, base_usd, frozen, minimum_usd): the heads of
    pricing/lines.py for every deployment that existed in as_of's month through as_of,
    plan_code its last plan, base_usd its prorated base fee (NULL when one of its plans is
    not in the month's metering.plans) and minimum_usd its prorated minimum commitment
    (prorated_plan's rule; NULL when none of its plans has one)."""
    shares = plan_shares(as_of)
    s = shares.c
    month_plans = in_effect(plans, as_of)
    seconds_in_month = literal(month_seconds(as_of), Numeric)
    all_known = func.count(month_plans.c.plan_code) == func.count()
    base = prorated_sql(func.sum(month_plans.c.base_usd * s.seconds), seconds_in_month, CENT_PLACES)
    minimum = prorated_sql(
        func.sum(func.coalesce(month_plans.c.minimum_usd, 0) * s.seconds),
        seconds_in_month,
        CENT_PLACES,
    )
    committed = func.count(month_plans.c.minimum_usd) > 0
    last_plan = func.array_agg(aggregate_order_by(s.plan_code, s.last_end.desc()))[1]
    return (
        select(
            s.deployment_id,
            last_plan.label("plan_code"),
            case((all_known, base)).label("base_usd"),
            false().label("frozen"),
            case((committed, minimum)).label("minimum_usd"),
        )
        .outerjoin_from(shares, month_plans, month_plans.c.plan_code == s.plan_code)
        .group_by(s.deployment_id)
    )


def prorated_inclusions(as_of: date):
    """(deployment_id, billing_kind, included_qty): each deployment's prorated included
    quantity of every billing kind one of its plans includes, as_of's month to date."""
    shares = plan_shares(as_of)
    items = in_effect(plan_items, as_of)
    s, p = shares.c, items.c
    seconds_in_month = literal(month_seconds(as_of), Numeric)
    return (
        select(
            s.deployment_id,
            p.billing_kind,
            prorated_sql(func.sum(p.included_qty * s.seconds), seconds_in_month, QTY_SCALE).label(
                "included_qty"
            ),
        )
        .join_from(shares, items, p.plan_code == s.plan_code)
        .group_by(s.deployment_id, p.billing_kind)
    )


def plan_periods(as_of: date):
    """(deployment_id, plan_periods): each deployment's plans of as_of's month to date in
    time order as JSON [{plan_code, valid_from, valid_to, base_usd}], consecutive versions on
    one plan (a rename) being one period; base_usd each period's part of the prorated base
    fee (see period_bases)."""
    rows = covered_rows(as_of)
    r = rows.c
    order = {"partition_by": r.deployment_id, "order_by": r.starts_at}
    starts_period = case(
        (and_(func.lag(r.plan_code).over(**order) == r.plan_code,
              func.lag(r.ends_at).over(**order) == r.starts_at), 0),
        else_=1,
    )  # fmt: skip
    flagged = select(rows, starts_period.label("starts_period")).subquery("flagged")
    f = flagged.c
    numbered = select(
        flagged,
        func.sum(f.starts_period)
        .over(partition_by=f.deployment_id, order_by=f.starts_at)
        .label("period"),
    ).subquery("numbered")
    n = numbered.c
    periods = (
        select(
            n.deployment_id,
            n.plan_code,
            func.min(n.starts_at).label("valid_from"),
            func.max(n.ends_at).label("valid_to"),
            func.sum(_seconds(numbered)).label("seconds"),
        )
        .group_by(n.deployment_id, n.period, n.plan_code)
        .subquery("periods")
    )
    p = periods.c
    # Each period's base is the difference of the rounded cumulative bases in time order, so
    # the periods add up to the statement's base exactly (they telescope, like accrual).
    month_plans = in_effect(plans, as_of)
    weighted = func.coalesce(month_plans.c.base_usd, 0) * p.seconds
    cumulative = func.sum(weighted).over(partition_by=p.deployment_id, order_by=p.valid_from)
    seconds_in_month = literal(month_seconds(as_of), Numeric)
    base = prorated_sql(cumulative, seconds_in_month, CENT_PLACES) - prorated_sql(
        cumulative - weighted, seconds_in_month, CENT_PLACES
    )
    priced = (
        select(p.deployment_id, p.plan_code, p.valid_from, p.valid_to, base.label("base_usd"))
        .outerjoin_from(periods, month_plans, month_plans.c.plan_code == p.plan_code)
        .subquery("priced_periods")
    )
    p = priced.c
    period = func.jsonb_build_object(
        "plan_code", p.plan_code,
        "valid_from", p.valid_from,
        "valid_to", p.valid_to,
        "base_usd", cast(p.base_usd, Text),  # a string: JSON numbers are read as floats
    )  # fmt: skip
    return select(
        p.deployment_id,
        func.jsonb_agg(aggregate_order_by(period, p.valid_from)).label("plan_periods"),
    ).group_by(p.deployment_id)


@dataclass(frozen=True)
class StagedTerms:
    """as_of's month-to-date terms, computed once into temporary tables of the transaction
    (dropped at its commit): `heads` (prorated_heads' columns), `inclusions`
    (prorated_inclusions') and `tiers` (the overage tiers in effect for the month: plan_code,
    billing_kind, up_to_qty, unit_price_usd)."""

    heads: Table
    inclusions: Table
    tiers: Table


# What stage_terms and stage_tiers compute once per pricing transaction.
STAGED_HEADS = transaction_table("staged_heads", *head_columns())
STAGED_INCLUSIONS = transaction_table(
    "staged_inclusions",
    Column("deployment_id", Text),
    Column("billing_kind", Text),
    Column("included_qty", Numeric),
)
STAGED_TIERS = transaction_table(
    "staged_tiers",
    Column("plan_code", Text),
    Column("billing_kind", Text),
    Column("up_to_qty", Numeric),
    Column("unit_price_usd", Numeric),
)


def stage_terms(connection: Connection, as_of: date) -> StagedTerms:
    """Compute prorated_heads, prorated_inclusions and the tiers in effect of as_of's month
    once (caller holds the transaction): a quote or a statement reads them several times;
    analysed, so that the planner counts their rows instead of guessing (the tiers in effect,
    a window over the catalog, were guessed at one or two rows)."""
    staged(connection, STAGED_HEADS, prorated_heads(as_of))
    staged(connection, STAGED_INCLUSIONS, prorated_inclusions(as_of))
    return StagedTerms(STAGED_HEADS, STAGED_INCLUSIONS, stage_tiers(connection, as_of))


def stage_tiers(connection: Connection, as_of: date) -> Table:
    """The overage tiers in effect for as_of's billing month (plan_code, billing_kind,
    up_to_qty, unit_price_usd), computed once into a temporary table of the transaction."""
    t = in_effect(overage_tiers, as_of).c
    return staged(
        connection,
        STAGED_TIERS,
        select(t.plan_code, t.billing_kind, t.up_to_qty, t.unit_price_usd),
    )
