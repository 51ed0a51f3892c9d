"""The rules the usage_records checks apply to a day: completeness, bounds, month closure.

Each finds the problems of one day as readable ids, listed up to MAX_LISTED and counted in
full (flow.py declares them as the step's checks; the Dagster layer runs them).
"""

from datetime import date

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from arcadia_pipeline.catalog.kinds import Accrual
from arcadia_pipeline.days.steps import Problems
from arcadia_pipeline.db.schema import UNATTRIBUTED, kind_map, resource_inventory, usage_records
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.metering.accrual import accrued_qty_sql
from arcadia_pipeline.metering.records import metered_rows, records_of_days
from arcadia_pipeline.utc import days_bounds, month_end, month_start

_KEY = ("deployment_id", "resource_id", "period_start", "granularity")


def incomplete_records(connection: Connection, day: date) -> Problems:
    """Keys expected from the day's inventory but missing, and records nothing explains.

    One full join of the expected keys with the written ones: the metering is recomputed
    once, not once per direction as two EXCEPTs would."""
    expected = metered_rows(day, "check", keys_only=True).subquery("expected")
    actual = select(*(usage_records.c[k] for k in _KEY)).where(records_of_days(day, day))
    actual = actual.subquery("actual")
    joined = expected.join(actual, and_(*(expected.c[k] == actual.c[k] for k in _KEY)), full=True)
    rows = connection.execute(
        select(
            case((actual.c.deployment_id.is_(None), "missing"), else_="unexpected").label("what"),
            *(func.coalesce(expected.c[k], actual.c[k]).label(k) for k in _KEY),
            func.count().over().label("total"),
        )
        .select_from(joined)
        .where(or_(expected.c.deployment_id.is_(None), actual.c.deployment_id.is_(None)))
        .limit(MAX_LISTED)
    )
    return Problems.of_rows(
        rows,
        lambda r: (
            f"{r.what} {r.deployment_id}/{r.resource_id}@{r.period_start:%Y-%m-%dT%H:%M}Z"
            f" ({r.granularity})"
        ),
    )


def out_of_bounds_records(connection: Connection, day: date) -> Problems:
    """qty < 0, sub_attribution written, or more than 24 h a day / 1 h an hour of a resource."""
    u = usage_records.c
    total = func.count().over().label("total")
    found = Problems.of_rows(
        connection.execute(
            select(u.deployment_id, u.resource_id, u.period_start, u.qty, total)
            .where(records_of_days(day, day), or_(u.qty < 0, u.sub_attribution.is_not(None)))
            .limit(MAX_LISTED)
        ),
        lambda r: (
            f"{r.deployment_id}/{r.resource_id}@{r.period_start:%Y-%m-%dT%H:%M}Z: "
            + ("qty < 0" if r.qty < 0 else "sub_attribution is written")
        ),
    )
    k = in_effect(kind_map, day).c
    hour_kinds = select(k.billing_kind).where(k.accrual == Accrual.ACTIVE_HOURS.value)
    hours = u.resource_kind.in_(hour_kinds)
    per_day = (
        select(u.resource_id, func.sum(u.qty).label("qty"), total)
        .where(records_of_days(day, day), hours)
        .group_by(u.resource_id)
        .having(func.sum(u.qty) > 24)
        .limit(MAX_LISTED)
    )
    found = found + Problems.of_rows(
        connection.execute(per_day), lambda r: f"{r.resource_id}: {r.qty} hours on {day}"
    )
    per_hour = (
        select(u.resource_id, u.period_start, func.sum(u.qty).label("qty"), total)
        .where(records_of_days(day, day), hours, u.granularity == "hour")
        .group_by(u.resource_id, u.period_start)
        .having(func.sum(u.qty) > 1)
        .limit(MAX_LISTED)
    )
    return found + Problems.of_rows(
        connection.execute(per_hour),
        lambda r: f"{r.resource_id}: {r.qty} hours in the hour {r.period_start:%Y-%m-%dT%H:%M}Z",
    )


def month_closure_errors(connection: Connection, last_day: date) -> Problems:
    """Each resource that existed from the month's start through last_day with one
    deployment, kind, size and status has records summing to exactly what the accrual gives for
    that whole stretch at once (its GB-months, 1 zone, its hours): the records telescope.

    Grouped by deployment and resource, so each join of the per-deployment tables is on
    deployment_id (what Citus pushes down to the shards): a resource attributed to one
    deployment for part of the month, to another or none for the rest, covers the whole
    month in no group, and is passed over as when it was grouped by resource alone (a
    resource's versions never overlap: validation)."""
    first = month_start(last_day)
    days = (last_day - first).days + 1
    i = resource_inventory.c
    stable = (
        select(
            i.deployment_id,
            i.resource_id,
            func.min(i.accrual).label("accrual"),
            func.min(i.status).label("status"),
            func.min(i.size_gb).label("size_gb"),
        )
        .where(
            i.day.between(first, last_day),
            i.deployment_id != UNATTRIBUTED,
            i.billing_kind.is_not(None),
        )
        .group_by(i.deployment_id, i.resource_id)
        # min = max, not count(DISTINCT) = 1: a hashed aggregate instead of a sort of the
        # month's inventory per column.
        .having(
            func.sum(func.extract("epoch", i.ends_at - i.starts_at)) == days * 86400,
            # One kind all month: a resource that changed kind at midnight is two stretches.
            func.min(i.inventory_kind) == func.max(i.inventory_kind),
            func.min(i.status) == func.max(i.status),
            or_(func.min(i.size_gb) == func.max(i.size_gb), func.max(i.size_gb).is_(None)),
        )
    ).subquery("stable")
    start, end = days_bounds(first, last_day)
    whole_stretch = accrued_qty_sql(
        stable.c.accrual, stable.c.status, stable.c.size_gb, literal(start), literal(end)
    )
    u = usage_records.c
    month_sum = func.coalesce(
        select(func.sum(u.qty))
        .where(
            u.resource_id == stable.c.resource_id,
            u.deployment_id == stable.c.deployment_id,
            records_of_days(first, last_day),
        )
        .scalar_subquery(),
        0,
    )
    rows = connection.execute(
        select(
            stable.c.resource_id,
            whole_stretch.label("expected"),
            month_sum.label("actual"),
            func.count().over().label("total"),
        )
        .where(month_sum != whole_stretch)
        .order_by(stable.c.resource_id)
        .limit(MAX_LISTED)
    )
    return Problems.of_rows(
        rows, lambda r: f"{r.resource_id}: month sums to {r.actual}, expected {r.expected}"
    )


def month_closure_problems(connection: Connection, day: date) -> Problems:
    """month_closure_errors on a month's last day; no problem on the other days."""
    return month_closure_errors(connection, day) if day == month_end(day) else Problems()
