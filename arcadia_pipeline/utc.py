"""UTC days and billing months: the one place for the clock, day bounds, month arithmetic,
day ranges and how a set of days is written in a message.

Plain date arithmetic, no Dagster and no SQL (every layer imports it). A day is
[00:00, next 00:00) UTC; a billing month is a UTC calendar month, named by its first day.
"""

import calendar
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

DAY = timedelta(days=1)


def now() -> datetime:
    """The one reading of the clock (sensors, month close, the CLI; tests hold it still)."""
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of the UTC day."""
    return day_start(day), day_start(day + DAY)


def days_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of first, end of last) of the inclusive range of UTC days."""
    return day_start(first), day_start(last + DAY)


def iter_days(first: date, last: date) -> Iterator[date]:
    """first..last inclusive."""
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days of the half-open window [start, end) (both at UTC midnight)."""
    first, end_day = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    return list(iter_days(first, end_day - DAY))


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Group days into (first, last) runs of consecutive days, in order."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + DAY:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def month_start(day: date) -> date:
    """The first day of day's billing month."""
    return day.replace(day=1)


def add_months(day: date, n: int) -> date:
    """The first day of the month n months after day's (n may be negative)."""
    index = day.year * 12 + day.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    """The last day of day's billing month."""
    return add_months(day, 1) - DAY


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def days_text(days: Iterable[date]) -> str:
    """Days as contiguous ranges for a message: '2025-02-17, 2025-02-19 to 2025-02-28'."""
    return ", ".join(
        f"{first}" if first == last else f"{first} to {last}"
        for first, last in contiguous_ranges(days)
    )


def month_text(month: date) -> str:
    """A billing month as messages and the CLI write it: YYYY-MM."""
    return f"{month:%Y-%m}"
