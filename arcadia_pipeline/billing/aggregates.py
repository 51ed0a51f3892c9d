"""A day's billing-period-to-date usage per (deployment, billing kind), raw and billable (each
resource's month of a capped kind counted at most its cap): the usage_period_aggregates step,
set-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Connection, delete, func, insert, literal, select, union_all

from arcadia_pipeline.days.locks import is_current
from arcadia_pipeline.days.steps import DailyStep
from arcadia_pipeline.db.schema import usage_period_aggregates
from arcadia_pipeline.metering.records import billable_kinds
from arcadia_pipeline.pricing.usage import summed_with_billable, usage_of
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


def _month_to_date(connection: Connection, step: DailyStep, day: date):
    """(deployment, kind, qty, records) rows whose sums are the month to date as of day."""
    if not builds_on_day_before(connection, step, day):
        return usage_of(month_start(day), day)
    a = usage_period_aggregates.c
    return union_all(
        select(a.deployment_id, a.billing_kind, a.qty, a.records).where(
            a.as_of_date == day - timedelta(days=1)
        ),
        usage_of(day, day),
    )


def replace_aggregates_day(
    connection: Connection, day: date, run_id: str, step: DailyStep
) -> AggregatedDay:
    """Billing-period-to-date SUM(qty) per (deployment, kind) as of day (the caller holds
    the day's transaction and the usage days it reads): the day before's totals plus the
    day's records when the day before is current, else the month's records summed. The
    billable quantity of a capped kind sums its resources' month to date, each capped
    (pricing/usage.capped_usage_of: the month's records of capped kinds only); of any other
    kind it is the raw sum."""
    a = usage_period_aggregates.c
    connection.execute(delete(usage_period_aggregates).where(a.as_of_date == day))
    parts = _month_to_date(connection, step, day)
    billable = summed_with_billable(parts, month_start(day), day).subquery("billable")
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
