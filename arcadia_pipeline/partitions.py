"""The one partitioning of every asset: UTC days from ARCADIA_METERING_START_DATE."""

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from dagster import DailyPartitionsDefinition, TimeWindow

DEFAULT_START_DATE = "2025-01-01"


def metering_start_date() -> str:
    value = os.getenv("ARCADIA_METERING_START_DATE") or DEFAULT_START_DATE
    try:
        date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(
            f"ARCADIA_METERING_START_DATE must be YYYY-MM-DD, got {value!r}"
        ) from error
    return value


daily_partitions = DailyPartitionsDefinition(start_date=metering_start_date(), timezone="UTC")


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_in_window(window: TimeWindow) -> list[date]:
    """The UTC days a partition time window (one day or a backfill range) covers."""
    first = window.start.astimezone(UTC).date()
    last = window.end.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days)]


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
