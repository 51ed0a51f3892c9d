"""The partitionings: UTC days from ARCADIA_METERING_START_DATE for every daily asset, and
the UTC billing months they fall in for the monthly statements; and how a backfill of a range
becomes runs (one run, or runs of at most ARCADIA_MAX_DAYS_PER_RUN days: docs/scaling.md)."""

import warnings
from datetime import date

from dagster import (
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PreviewWarning,
    TimeWindow,
    asset,
    asset_check,
)

from arcadia_pipeline.orchestration.retry import DATABASE_RETRY_POLICY
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import days_between, month_start

daily_partitions = DailyPartitionsDefinition(
    start_date=settings().metering_start_date.isoformat(), timezone="UTC"
)

# Keys YYYY-MM-01, from the month of the first day. end_offset=1: the month in progress is a
# partition too, so it can hold a draft statement.
monthly_partitions = MonthlyPartitionsDefinition(
    start_date=month_start(settings().metering_start_date).isoformat(),
    timezone="UTC",
    end_offset=1,
)


def days_in_window(window: TimeWindow) -> list[date]:
    """The UTC days a partition time window (one day or a backfill range) covers."""
    return days_between(window.start, window.end)


def months_in_window(window: TimeWindow) -> list[date]:
    """The billing months (their first days) a partition time window covers."""
    return sorted({month_start(day) for day in days_in_window(window)})


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover [first, last] (a single-run backfill of the range)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def daily_backfill_policy(max_days_per_run: int | None) -> BackfillPolicy:
    """How a backfill of a range of days becomes runs: one run for the whole range (None, the
    default), or runs of at most `max_days_per_run` consecutive days each
    (ARCADIA_MAX_DAYS_PER_RUN). Every daily asset has the same policy, so a chunk's run
    holds all four assets and their checks for its days."""
    if max_days_per_run is None:
        return BackfillPolicy.single_run()
    return BackfillPolicy.multi_run(max_partitions_per_run=max_days_per_run)


def daily_asset(**kwargs):
    """@asset on the daily partitions, a range as one run (or as runs of at most
    ARCADIA_MAX_DAYS_PER_RUN days), database retries: every asset."""
    with warnings.catch_warnings():
        # Range backfills are the design (one run per range, or per chunk), beta or not.
        warnings.simplefilter("ignore", BetaWarning)
        return asset(
            partitions_def=daily_partitions,
            backfill_policy=daily_backfill_policy(settings().max_days_per_run),
            retry_policy=DATABASE_RETRY_POLICY,
            kinds={"postgres"},
            **kwargs,
        )


def daily_check(asset_def):
    """@asset_check on the daily partitions of `asset_def`, blocking its downstream assets."""

    def decorate(fn):
        with warnings.catch_warnings():
            # Checks per partition are how a day's check shows in the UI, preview or not.
            warnings.simplefilter("ignore", PreviewWarning)
            return asset_check(asset=asset_def, blocking=True, partitions_def=daily_partitions)(fn)

    return decorate


def monthly_asset(**kwargs):
    """@asset on the monthly partitions: a range of months as one run, database retries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return asset(
            partitions_def=monthly_partitions,
            backfill_policy=BackfillPolicy.single_run(),
            retry_policy=DATABASE_RETRY_POLICY,
            kinds={"postgres"},
            **kwargs,
        )


def monthly_check(asset_def):
    """@asset_check on the monthly partitions of `asset_def`, blocking."""

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PreviewWarning)
            return asset_check(asset=asset_def, blocking=True, partitions_def=monthly_partitions)(
                fn
            )

    return decorate
