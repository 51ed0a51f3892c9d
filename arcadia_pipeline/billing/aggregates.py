"""A day's billing-period-to-date usage per (deployment, billing kind), raw and billable (each
resource's month of a capped kind counted at most its cap): the usage_period_aggregates step,
set-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Connection, Select, delete, func, insert, literal, select, union_all

from arcadia_pipeline.days.locks import is_current
from arcadia_pipeline.days.steps import DailyStep
from arcadia_pipeline.db.schema import (
    billing_caps,
    capped_resource_usage,
    usage_period_aggregates,
    usage_records,
)
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.metering.records import billable_kinds, records_of_days
from arcadia_pipeline.pricing.usage import capped_resource_sums, summed_with_billable, usage_of
from arcadia_pipeline.utc import month_start


@dataclass(frozen=True)
class AggregatedDay:
    day: date
    deployments: int
    qty: dict[str, Decimal]  # per billing kind of the kind map (0 where none)


def builds_on_day_before(connection: Connection, step: DailyStep, day: date) -> bool:
    """Whether day's aggregates can be the day before's plus day's own records: the day
    before is in the same month and current (days.locks.is_current: written, and no usage
    day it read re-metered since), held so until the transaction ends."""
    return day != month_start(day) and is_current(connection, step, day - timedelta(days=1))


def _month_to_date(day: date, builds: bool):
    """(deployment, kind, qty, records) rows whose sums are the month to date as of day."""
    if not builds:
        return usage_of(month_start(day), day)
    a = usage_period_aggregates.c
    return union_all(
        select(a.deployment_id, a.billing_kind, a.qty, a.records).where(
            a.as_of_date == day - timedelta(days=1)
        ),
        usage_of(day, day),
    )


def replace_capped_resources(connection: Connection, day: date, builds: bool) -> None:
    """Each resource's month to date as of day, of the kinds capped in day's month, into
    capped_resource_usage (what the day's billable quantities and its projection cap): the
    day before's rows plus the day's records when `builds` (the day before is current), else
    the month's records. Summed per resource grouped by the distribution column first: a
    Citus cluster sums each shard on its worker."""
    c, u = capped_resource_usage.c, usage_records.c
    connection.execute(delete(capped_resource_usage).where(c.as_of_date == day))
    caps = in_effect(billing_caps, month_start(day))
    records = select(u.deployment_id, u.resource_kind, u.resource_id, u.qty).join_from(
        usage_records, caps, caps.c.billing_kind == u.resource_kind
    )
    if builds:
        before = select(c.deployment_id, c.billing_kind, c.resource_id, c.qty).where(
            c.as_of_date == day - timedelta(days=1)
        )
        rows = union_all(records.where(records_of_days(day, day)), before)
    else:
        rows = records.where(records_of_days(month_start(day), day))
    r = rows.subquery("resource_rows").c
    summed = select(
        literal(day), r.deployment_id, r.resource_kind, r.resource_id, func.sum(r.qty)
    ).group_by(r.deployment_id, r.resource_kind, r.resource_id)
    columns = ["as_of_date", "deployment_id", "billing_kind", "resource_id", "qty"]
    connection.execute(insert(capped_resource_usage).from_select(columns, summed))


def capped_of_day(day: date) -> Select:
    """SELECT (deployment_id, billing_kind, billable_qty) as of day: capped_resource_usage's
    rows of the day, each counted at most its cap, summed per (deployment, kind)."""
    c = capped_resource_usage.c
    rows = select(capped_resource_usage).where(c.as_of_date == day).subquery("resource_rows")
    return capped_resource_sums(rows, day, one_per_resource=True)


def replace_aggregates_day(
    connection: Connection, day: date, run_id: str, step: DailyStep
) -> AggregatedDay:
    """Billing-period-to-date SUM(qty) per (deployment, kind) as of day (the caller holds
    the day's transaction and the usage days it reads): the day before's totals plus the
    day's records when the day before is current, else the month's records summed. The
    billable quantity of a capped kind sums its resources' month to date, each capped
    (replace_capped_resources, built the same way); of any other kind it is the raw sum."""
    a = usage_period_aggregates.c
    connection.execute(delete(usage_period_aggregates).where(a.as_of_date == day))
    builds = builds_on_day_before(connection, step, day)
    replace_capped_resources(connection, day, builds)
    parts = _month_to_date(day, builds)
    billable = summed_with_billable(parts, capped_of_day(day)).subquery("billable")
    b = billable.c
    rows = select(
        literal(day), b.deployment_id, b.billing_kind, literal(month_start(day)), b.qty,
        b.billable_qty, b.records, literal(run_id),
    )  # fmt: skip
    columns = [
        "as_of_date", "deployment_id", "billing_kind", "period_start", "qty", "billable_qty",
        "records", "run_id",
    ]  # fmt: skip
    connection.execute(insert(usage_period_aggregates).from_select(columns, rows))
    totals = connection.execute(
        select(a.billing_kind, func.sum(a.qty)).where(a.as_of_date == day).group_by(a.billing_kind)
    ).all()
    # A hashed GROUP BY, not count(DISTINCT), which sorts the day's aggregates.
    aggregated = select(a.deployment_id).where(a.as_of_date == day).group_by(a.deployment_id)
    deployments = connection.execute(
        select(func.count()).select_from(aggregated.subquery())
    ).scalar_one()
    kinds = dict.fromkeys(billable_kinds(connection, day), 0)
    return AggregatedDay(day, deployments, kinds | {kind: qty for kind, qty in totals})
