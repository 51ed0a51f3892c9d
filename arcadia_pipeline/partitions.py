"""The one partitioning of every asset: UTC days from ARCADIA_METERING_START_DATE."""

import os
from datetime import UTC, date, timedelta

from dagster import BackfillPolicy, DailyPartitionsDefinition, TimeWindow, asset

from arcadia_pipeline.db.retry import DATABASE_RETRY_POLICY

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


def days_in_window(window: TimeWindow) -> list[date]:
    """The UTC days a partition time window (one day or a backfill range) covers."""
    first = window.start.astimezone(UTC).date()
    last = window.end.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days)]


def daily_asset(**kwargs):
    """@asset on the daily partitions, a range as one run, database retries: every asset."""
    return asset(
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=DATABASE_RETRY_POLICY,
        kinds={"postgres"},
        **kwargs,
    )
