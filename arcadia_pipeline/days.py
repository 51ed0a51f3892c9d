"""UTC days and ranges of days: plain date arithmetic, no Dagster (the CLI imports it)."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def iter_days(first: date, last: date) -> Iterator[date]:
    """first..last inclusive."""
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def contiguous_ranges(days: set[date] | list[date]) -> list[tuple[date, date]]:
    """Group days into (first, last) runs of consecutive days, in order."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover [first, last] (a single-run backfill of the range)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
