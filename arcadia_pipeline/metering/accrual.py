"""The accrual model: the one place that says how usage accrues, as a Python reference and as SQL.

A version of a resource accrues, over the part of it inside a metering period, either
droplet hours (`s / 3600` while active), GB-months (`size_gb * s / seconds_in_month`) or
unit-months (`s / seconds_in_month`). The kind map (data in `metering.kind_map`, seeded
by the migrations) assigns each inventory kind a billing kind and one of these rules,
so a new billable kind needs a row, not code.

Exactness: a quantity is the difference of two *rounded cumulative* positions measured
from the start of the period's UTC month,

    qty(x, y) = R(w * (y - m0) / unit) - R(w * (x - m0) / unit),   R = round half-up to 1e-18

so the records of adjacent periods telescope: a resource that exists all month sums to
exactly its size in GB-months (or exactly 1 zone), and 24 hourly records sum to exactly the
daily one. The pure functions below are the reference; `accrued_qty_sql` generates the same
arithmetic for PostgreSQL (integer `div`, no float, no intermediate rounding), and the
tests check that the two agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import Numeric, case, cast, extract, func, literal
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline import utc
from arcadia_pipeline.catalog.kinds import Accrual
from arcadia_pipeline.db.types import QTY, QTY_SCALE, TSTZ
from arcadia_pipeline.utc import day_start

_QUANTUM = 10**QTY_SCALE


# ---- pure reference ---------------------------------------------------------------------


def month_start_at(t: datetime) -> datetime:
    """00:00 UTC on the first day of t's billing month."""
    return day_start(utc.month_start(t.astimezone(UTC).date()))


def seconds_in_month(t: datetime) -> int:
    return utc.days_in_month(t.astimezone(UTC).date()) * 86400


def unit_seconds(accrual: Accrual, period_start: datetime) -> int:
    return 3600 if accrual is Accrual.ACTIVE_HOURS else seconds_in_month(period_start)


def weight(accrual: Accrual, status: str, size_gb: Decimal | None) -> Decimal:
    if accrual is Accrual.ACTIVE_HOURS:
        return Decimal(1) if status == "active" else Decimal(0)
    if accrual is Accrual.SIZE_MONTH:
        if size_gb is None:
            raise ValueError("a storage kind needs size_gb")
        return Decimal(size_gb)
    return Decimal(1)


def _seconds(delta: timedelta) -> Fraction:
    return Fraction(delta.days * 86400 + delta.seconds) + Fraction(delta.microseconds, 10**6)


def _cumulative_units(w: Decimal, offset: timedelta, unit: int) -> int:
    """R(w * offset / unit) in units of 1e-18, rounding half-up (quantities are >= 0)."""
    exact = Fraction(w) * _seconds(offset) * _QUANTUM / unit
    return (exact + Fraction(1, 2)).__floor__()


def accrued_qty(
    accrual: Accrual,
    status: str,
    size_gb: Decimal | None,
    start: datetime,
    end: datetime,
) -> Decimal:
    """Quantity a version accrues over [start, end), an interval inside one UTC month."""
    if end <= start:
        return Decimal(0)
    m0 = month_start_at(start)
    if end > m0 + timedelta(seconds=seconds_in_month(start)):
        raise ValueError("an accrual interval must lie inside one UTC month")
    w, unit = weight(accrual, status, size_gb), unit_seconds(accrual, start)
    units = _cumulative_units(w, end - m0, unit) - _cumulative_units(w, start - m0, unit)
    return Decimal(units).scaleb(-QTY_SCALE)


# ---- the same arithmetic as SQL ----------------------------------------------------------


def weight_sql(accrual, status, size_gb) -> ColumnElement:
    return case(
        (accrual == Accrual.ACTIVE_HOURS.value, case((status == "active", 1), else_=0)),
        (accrual == Accrual.SIZE_MONTH.value, size_gb),
        else_=1,
    )


def _cumulative_units_sql(w, offset_seconds, unit) -> ColumnElement:
    # div() is PostgreSQL's exact truncating division; adding unit/2 first rounds half-up.
    return func.div(w * offset_seconds * literal(2 * _QUANTUM, Numeric) + unit, 2 * unit)


def accrued_qty_sql(
    accrual, status, size_gb, start, end, month: date | None = None
) -> ColumnElement:
    """SQL for `accrued_qty` over [start, end) (timestamptz expressions in one UTC month).

    `month`: the UTC month every row's interval lies in, when the caller knows it (a day's
    records): its start and length are then constants instead of being derived per row."""
    if month is None:
        # Month bounds in UTC whatever the session's time zone (32 days past a month's start
        # is always inside the next month).
        m0 = func.date_trunc("month", start, "UTC")
        next_month = func.date_trunc("month", m0 + cast(literal("32 days"), INTERVAL), "UTC")
        month_seconds = extract("epoch", next_month - m0)
    else:
        m0 = literal(day_start(utc.month_start(month)), TSTZ)
        month_seconds = literal(utc.days_in_month(month) * 86400)
    unit = case((accrual == Accrual.ACTIVE_HOURS.value, 3600), else_=month_seconds)
    w = weight_sql(accrual, status, size_gb)
    units = _cumulative_units_sql(w, extract("epoch", end - m0), unit) - _cumulative_units_sql(
        w, extract("epoch", start - m0), unit
    )
    # Multiplying by 1e-18 (not dividing) keeps the scale at exactly 18 digits.
    return cast(units * literal(Decimal(1).scaleb(-QTY_SCALE), Numeric), QTY)
