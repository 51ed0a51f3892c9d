"""Asset checks on usage_records: completeness, bounds, month closure (all blocking)."""

from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
)
from sqlalchemy import Connection, and_, case, func, literal, or_, select

from arcadia_pipeline.db.schema import kind_map, resource_inventory, usage_records
from arcadia_pipeline.metering.accrual import Accrual, accrued_qty_sql
from arcadia_pipeline.metering.assets import usage_records as usage_records_asset
from arcadia_pipeline.metering.sql import metered_rows, records_of_days
from arcadia_pipeline.orchestration.check_results import check_each_day
from arcadia_pipeline.orchestration.partitions import daily_check
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.utc import days_bounds, month_end, month_start

_KEY = ("deployment_id", "resource_id", "period_start", "granularity")


def incomplete_records(connection: Connection, day: date) -> list[str]:
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
        )
        .select_from(joined)
        .where(or_(expected.c.deployment_id.is_(None), actual.c.deployment_id.is_(None)))
        .limit(40)
    )
    return [
        f"{r.what} {r.deployment_id}/{r.resource_id}@{r.period_start:%Y-%m-%dT%H:%M}Z"
        f" ({r.granularity})"
        for r in rows
    ]


def out_of_bounds_records(connection: Connection, day: date) -> list[str]:
    """qty < 0, sub_attribution written, or more than 24 h a day / 1 h an hour of a resource."""
    u = usage_records.c
    found = [
        f"{r.deployment_id}/{r.resource_id}@{r.period_start:%Y-%m-%dT%H:%M}Z: "
        + ("qty < 0" if r.qty < 0 else "sub_attribution is written")
        for r in connection.execute(
            select(u.deployment_id, u.resource_id, u.period_start, u.qty)
            .where(records_of_days(day, day), or_(u.qty < 0, u.sub_attribution.is_not(None)))
            .limit(20)
        )
    ]
    hour_kinds = select(kind_map.c.billing_kind).where(
        kind_map.c.accrual == Accrual.ACTIVE_HOURS.value
    )
    hours = u.resource_kind.in_(hour_kinds)
    per_day = (
        select(u.resource_id, func.sum(u.qty).label("qty"))
        .where(records_of_days(day, day), hours)
        .group_by(u.resource_id)
        .having(func.sum(u.qty) > 24)
    )
    found += [f"{r.resource_id}: {r.qty} hours on {day}" for r in connection.execute(per_day)]
    per_hour = (
        select(u.resource_id, u.period_start, func.sum(u.qty).label("qty"))
        .where(records_of_days(day, day), hours, u.granularity == "hour")
        .group_by(u.resource_id, u.period_start)
        .having(func.sum(u.qty) > 1)
    )
    found += [
        f"{r.resource_id}: {r.qty} hours in the hour {r.period_start:%Y-%m-%dT%H:%M}Z"
        for r in connection.execute(per_hour)
    ]
    return found


def month_closure_errors(connection: Connection, last_day: date) -> list[str]:
    """Each resource that existed from the month's start through last_day with one
    deployment, size and status has records summing to exactly what the accrual gives for
    that whole stretch at once (its GB-months, 1 zone, its hours): the records telescope."""
    first = month_start(last_day)
    days = (last_day - first).days + 1
    i = resource_inventory.c
    stable = (
        select(
            i.resource_id,
            func.min(i.deployment_id).label("deployment_id"),
            func.min(i.accrual).label("accrual"),
            func.min(i.status).label("status"),
            func.min(i.size_gb).label("size_gb"),
        )
        .where(i.day.between(first, last_day), i.billing_kind.is_not(None))
        .group_by(i.resource_id)
        # min = max, not count(DISTINCT) = 1: a hashed aggregate instead of a sort of the
        # month's inventory per column.
        .having(
            func.sum(func.extract("epoch", i.ends_at - i.starts_at)) == days * 86400,
            func.count(i.deployment_id) == func.count(),  # attributed all month
            func.min(i.deployment_id) == func.max(i.deployment_id),
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
        select(stable.c.resource_id, whole_stretch.label("expected"), month_sum.label("actual"))
        .where(month_sum != whole_stretch)
        .order_by(stable.c.resource_id)
        .limit(20)
    ).all()
    return [f"{r.resource_id}: month sums to {r.actual}, expected {r.expected}" for r in rows]


@daily_check(usage_records_asset)
def usage_records_complete(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Every attributed billable version of the day's inventory has its record(s) for each
    period of its granularity, and no record exists that the inventory does not explain."""
    return check_each_day(context, warehouse, incomplete_records)


@daily_check(usage_records_asset)
def usage_records_within_bounds(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """qty >= 0; droplet hours per resource <= 24 a day and <= 1 an hour; sub_attribution
    never written."""
    return check_each_day(context, warehouse, out_of_bounds_records)


@daily_check(usage_records_asset)
def usage_records_month_closure(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """When a month's last day is metered, every resource that existed all month with one
    size sums to exactly its GB-months / 1 zone / hours-in-month."""

    def closure(connection, day):
        return month_closure_errors(connection, day) if day == month_end(day) else []

    return check_each_day(context, warehouse, closure)
