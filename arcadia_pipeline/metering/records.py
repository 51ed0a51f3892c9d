"""A day's usage records from its inventory snapshot (the usage_records step), set-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Connection,
    FromClause,
    Integer,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline.catalog.kinds import DEFAULT_GRANULARITY
from arcadia_pipeline.db.schema import (
    UNATTRIBUTED,
    inventory_snapshots,
    kind_map,
    metering_config,
    resource_inventory,
    usage_records,
)
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.db.types import TSTZ
from arcadia_pipeline.metering.accrual import accrued_qty_sql
from arcadia_pipeline.utc import day_start, days_bounds


@dataclass(frozen=True)
class MeteredDay:
    day: date
    records: dict[str, int]  # per billing kind of the kind map (0 where none)
    qty: dict[str, Decimal]  # per billing kind of the kind map (0 where none)
    deployments: int
    unattributed_resources: int
    snapshot_id: int | None


class MissingInventory(Exception):
    """usage_records needs the day's resource_inventory snapshot first."""


def billable_kinds(connection: Connection, day: date) -> list[str]:
    """The billing kinds the kind map in effect for the day's month maps some inventory kind
    to, in order."""
    k = in_effect(kind_map, day).c
    query = select(k.billing_kind).distinct().where(k.billing_kind.is_not(None))
    return list(connection.execute(query.order_by(k.billing_kind)).scalars())


def records_of_days(
    first: date, last: date, records: FromClause = usage_records
) -> ColumnElement[bool]:
    """usage_records (or `records`, one month's partition of them) whose period starts on a
    UTC day of [first, last]."""
    start, end = days_bounds(first, last)
    return and_(records.c.period_start >= start, records.c.period_start < end)


def _interval(spec: str):
    return cast(literal(spec), INTERVAL)


def metered_rows(day: date, run_id: str, keys_only: bool = False):
    """SELECT of the day's usage records from its inventory snapshot.

    Each attributed, billable version is cut into the periods of its kind's granularity
    (the day, or each hour it touches); a record sums its versions' accrual per
    (deployment, resource, period, granularity). The snapshot is already clipped to the
    day, so a daily version accrues over its own bounds: only hourly kinds need the series
    of periods. keys_only: the records' keys alone, without their accrual (what the
    completeness check compares).
    """
    i = resource_inventory.c
    config = in_effect(metering_config, day)
    granularity = func.coalesce(config.c.granularity, DEFAULT_GRANULARITY)
    hourly = granularity == "hour"
    one_hour = _interval("1 hour")
    day0 = literal(day_start(day), TSTZ)
    # The hours a version touches, numbered from the day's start: h from the hour holding
    # starts_at to the last hour starting before ends_at. Integers of immutable functions,
    # not a series of timestamptz (generate_series and date_trunc of timestamptz are STABLE,
    # which Citus refuses as a table function of a query over shards).
    starts_h, ends_h = (func.extract("epoch", at - day0) / 3600 for at in (i.starts_at, i.ends_at))
    periods = select(
        func.generate_series(
            cast(func.floor(starts_h), Integer), cast(func.ceil(ends_h), Integer) - 1
        ).column_valued("h")
    ).lateral("periods")
    hour = periods.c.h
    hour_start = day0 + hour * one_hour

    def records(period_start, starts_at, ends_at, where, period_key, *joins):
        columns = [
            i.deployment_id,
            i.resource_id,
            i.billing_kind.label("resource_kind"),
            period_start.label("period_start"),
            granularity.label("granularity"),
        ]
        if not keys_only:
            columns += [
                # Every period of the day lies in the day's month: its bounds are constants.
                func.sum(
                    accrued_qty_sql(i.accrual, i.status, i.size_gb, starts_at, ends_at, month=day)
                ).label("qty"),
                literal(run_id).label("run_id"),
                func.max(i.snapshot_id).label("inventory_snapshot_id"),
            ]
        query = select(*columns).select_from(resource_inventory)
        query = query.outerjoin(config, config.c.billing_kind == i.billing_kind)
        for join in joins:
            query = query.join(join, true())
        return query.where(
            i.day == day, i.deployment_id != UNATTRIBUTED, i.billing_kind.is_not(None), where
        ).group_by(i.deployment_id, i.resource_id, i.billing_kind, granularity, *period_key)

    daily = records(day0, i.starts_at, i.ends_at, ~hourly, ())
    by_hour = records(
        hour_start,
        func.greatest(i.starts_at, hour_start),
        func.least(i.ends_at, hour_start + one_hour),
        hourly,
        (hour,),
        periods,
    )
    return union_all(daily, by_hour)


_RECORD_COLUMNS = [
    "deployment_id", "resource_id", "resource_kind", "period_start", "granularity", "qty",
    "run_id", "inventory_snapshot_id",
]  # fmt: skip


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
    # Selected from the UNION as a subquery: Citus then inserts shard by shard into the
    # co-located shard (a bare UNION it would repartition between the workers first).
    rows = metered_rows(day, run_id).subquery("metered")
    connection.execute(insert(usage_records).from_select(_RECORD_COLUMNS, select(rows)))
    return summarise_day(connection, day, snapshot_id)


def summarise_day(connection: Connection, day: date, snapshot_id: int | None) -> MeteredDay:
    u = usage_records.c
    in_day = records_of_days(day, day)
    per_kind = connection.execute(
        select(u.resource_kind, func.count(), func.sum(u.qty))
        .where(in_day)
        .group_by(u.resource_kind)
    ).all()
    # A hashed GROUP BY, not count(DISTINCT), which sorts the day's records.
    metered = select(u.deployment_id).where(in_day).group_by(u.deployment_id).subquery()
    deployments = connection.execute(select(func.count()).select_from(metered)).scalar_one()
    unattributed = connection.execute(
        select(inventory_snapshots.c.unattributed_resources).where(inventory_snapshots.c.day == day)
    ).scalar_one_or_none()
    kinds = dict.fromkeys(billable_kinds(connection, day), 0)
    return MeteredDay(
        day=day,
        records=kinds | {kind: n for kind, n, _ in per_kind},
        qty=kinds | {kind: q for kind, _, q in per_kind},
        deployments=deployments,
        unattributed_resources=unattributed or 0,
        snapshot_id=snapshot_id,
    )
