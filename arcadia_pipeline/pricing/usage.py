"""The usage of a scope: SUM(qty) per (deployment, billing kind) of the usage records whose
period starts on a UTC day of an inclusive range. Quotes, aggregates, statements, their
checks and the quote engine's `usage_for_period` all sum usage through `usage_of`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, Select, func, literal, select

from arcadia_pipeline.db.schema import usage_records
from arcadia_pipeline.metering.records import records_of_days


def usage_of(first: date, last: date, deployment_id: str | None = None) -> Select:
    """SELECT (deployment_id, billing_kind, qty, records) over the days [first, last], for
    one deployment or all: qty in the kind's unit (numeric(38,18) sums), records a count."""
    u = usage_records.c
    sums = (u.resource_kind.label("billing_kind"), func.sum(u.qty).label("qty"))
    records = func.count().label("records")
    if deployment_id is None:
        return (
            select(u.deployment_id, *sums, records)
            .where(records_of_days(first, last))
            .group_by(u.deployment_id, u.resource_kind)
        )
    # One deployment: grouped by kind alone (a hashed aggregate of its few rows).
    return (
        select(literal(deployment_id).label("deployment_id"), *sums, records)
        .where(u.deployment_id == deployment_id, records_of_days(first, last))
        .group_by(u.resource_kind)
    )


def usage_for_period(
    connection: Connection, deployment_id: str, start_date: date, end_date: date
) -> dict[str, Decimal]:
    """{billing_kind: SUM(qty)} of one deployment over the inclusive UTC date range
    [start_date, end_date]; raises ValueError when start_date is after end_date."""
    if start_date > end_date:
        raise ValueError(f"start date {start_date} is after end date {end_date}")
    usage = usage_of(start_date, end_date, deployment_id).order_by("billing_kind")
    return {kind: qty for _, kind, qty, _ in connection.execute(usage)}
