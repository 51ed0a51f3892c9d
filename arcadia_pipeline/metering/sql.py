"""Set-based SQL of the usage_records asset: a day's inventory snapshot -> usage records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Connection,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline.db.schema import (
    inventory_snapshots,
    metering_config,
    resource_inventory,
    usage_records,
)
from arcadia_pipeline.metering.accrual import DEFAULT_GRANULARITY, accrued_qty_sql
from arcadia_pipeline.utc import day_start, days_bounds


@dataclass(frozen=True)
class MeteredDay:
    day: date
    records: dict[str, int]  # per billing kind
    qty: dict[str, Decimal]  # per billing kind
    deployments: int
    unattributed_resources: int
    snapshot_id: int | None


class MissingInventory(Exception):
    """usage_records needs the day's resource_inventory snapshot first."""


def records_of_days(first: date, last: date) -> ColumnElement[bool]:
    """usage_records whose period starts on a UTC day of [first, last]."""
    start, end = days_bounds(first, last)
    return and_(usage_records.c.period_start >= start, usage_records.c.period_start < end)


def _interval(spec: str):
    return cast(literal(spec), INTERVAL)


def metered_rows(day: date, run_id: str):
    """SELECT of the day's usage records from its inventory snapshot.

    Each attributed, billable version is cut into the periods of its kind's granularity
    (the day, or each hour it touches); a record sums its versions' accrual per
    (deployment, resource, period, granularity).
    """
    d0 = day_start(day)
    i = resource_inventory.c
    granularity = func.coalesce(metering_config.c.granularity, DEFAULT_GRANULARITY)
    hourly = granularity == "hour"
    # '24 hours', not '1 day': a calendar day may be 23 or 25 hours in a non-UTC session.
    step = case((hourly, _interval("1 hour")), else_=_interval("24 hours"))
    first_period = case((hourly, func.date_trunc("hour", i.starts_at, "UTC")), else_=d0)
    periods = select(
        func.generate_series(
            first_period, i.ends_at - _interval("1 microsecond"), step
        ).column_valued("period_start")
    ).lateral("periods")
    period_start = periods.c.period_start
    period_end = period_start + step
    qty = accrued_qty_sql(
        i.accrual,
        i.status,
        i.size_gb,
        func.greatest(i.starts_at, period_start),
        func.least(i.ends_at, period_end),
    )
    return (
        select(
            i.deployment_id,
            i.resource_id,
            i.billing_kind.label("resource_kind"),
            period_start.label("period_start"),
            granularity.label("granularity"),
            func.sum(qty).label("qty"),
            literal(run_id).label("run_id"),
            func.max(i.snapshot_id).label("inventory_snapshot_id"),
        )
        .select_from(resource_inventory)
        .outerjoin(metering_config, metering_config.c.billing_kind == i.billing_kind)
        .join(periods, true())
        .where(i.day == day, i.deployment_id.is_not(None), i.billing_kind.is_not(None))
        .group_by(i.deployment_id, i.resource_id, i.billing_kind, period_start, granularity)
    )


def replace_usage_day(connection: Connection, day: date, run_id: str) -> MeteredDay:
    """Replace every record of the day, whatever its granularity (caller holds the txn)."""
    snapshot_id = connection.execute(
        select(inventory_snapshots.c.snapshot_id).where(inventory_snapshots.c.day == day)
    ).scalar_one_or_none()
    if snapshot_id is None:
        raise MissingInventory(
            f"no resource_inventory snapshot for {day.isoformat()}: materialise "
            "resource_inventory for that day first"
        )
    connection.execute(delete(usage_records).where(records_of_days(day, day)))
    rows = metered_rows(day, run_id)
    connection.execute(
        insert(usage_records).from_select([c.name for c in rows.selected_columns], rows)
    )
    return summarise_day(connection, day, snapshot_id)


def summarise_day(connection: Connection, day: date, snapshot_id: int | None) -> MeteredDay:
    u = usage_records.c
    in_day = records_of_days(day, day)
    per_kind = connection.execute(
        select(u.resource_kind, func.count(), func.sum(u.qty))
        .where(in_day)
        .group_by(u.resource_kind)
    ).all()
    deployments = connection.execute(
        select(func.count(distinct(u.deployment_id))).where(in_day)
    ).scalar_one()
    unattributed = connection.execute(
        select(inventory_snapshots.c.unattributed_resources).where(inventory_snapshots.c.day == day)
    ).scalar_one_or_none()
    return MeteredDay(
        day=day,
        records={kind: n for kind, n, _ in per_kind},
        qty={kind: q for kind, _, q in per_kind},
        deployments=deployments,
        unattributed_resources=unattributed or 0,
        snapshot_id=snapshot_id,
    )
