"""Every billing month at a glance: draft or closed, when it was priced and closed, its
statements' total and its adjustments. A month with metered days that no statement run has
priced yet is listed too, as "not priced"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Date, cast, func, select, union

from arcadia_pipeline.db.schema import (
    day_writes,
    monthly_statements,
    statement_adjustments,
    statement_months,
)

NOT_PRICED = "not priced"


@dataclass(frozen=True)
class BillingMonth:
    """One billing month's standing: status `draft`, `closed` or `not priced`; money in USD."""

    month: date  # its first day
    status: str
    priced_at: datetime | None  # when its statements were last priced from (UTC)
    closed_at: datetime | None
    statements: int
    total_usd: Decimal  # the statements' totals
    adjustments: int
    adjustments_usd: Decimal

    @property
    def total_with_adjustments_usd(self) -> Decimal:
        return self.total_usd + self.adjustments_usd


def billing_months(connection: Connection) -> list[BillingMonth]:
    """Every month priced or with a metered day, newest first."""
    m, s, adj = statement_months.c, monthly_statements.c, statement_adjustments.c
    months = union(
        select(m.month),
        select(cast(func.date_trunc("month", day_writes.c.day), Date)).distinct(),
    ).subquery("months")
    totals = (
        select(s.month, func.count().label("count"), func.sum(s.total_usd).label("total"))
        .group_by(s.month)
        .subquery("totals")
    )
    adjusted = (
        select(adj.month, func.count().label("count"), func.sum(adj.amount_usd).label("amount"))
        .group_by(adj.month)
        .subquery("adjusted")
    )
    month = months.c.month
    rows = connection.execute(
        select(
            month,
            m.repriced_at,
            m.closed_at,
            func.coalesce(totals.c.count, 0),
            func.coalesce(totals.c.total, 0),
            func.coalesce(adjusted.c.count, 0),
            func.coalesce(adjusted.c.amount, 0),
        )
        .select_from(months)
        .outerjoin(statement_months, m.month == month)
        .outerjoin(totals, totals.c.month == month)
        .outerjoin(adjusted, adjusted.c.month == month)
        .order_by(month.desc())
    ).all()
    return [
        BillingMonth(
            month=row[0],
            status="closed" if row[2] else ("draft" if row[1] else NOT_PRICED),
            priced_at=row[1],
            closed_at=row[2],
            statements=row[3],
            total_usd=Decimal(row[4]),
            adjustments=row[5],
            adjustments_usd=Decimal(row[6]),
        )
        for row in rows
    ]
