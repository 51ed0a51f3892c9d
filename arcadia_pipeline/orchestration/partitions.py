"""The partitionings: UTC days from ARCADIA_METERING_START_DATE for every daily asset, and
the UTC billing months they fall in for the monthly statements; the days or months a run's
window covers; and how a backfill of a range becomes runs (one run, or runs of at most
ARCADIA_MAX_DAYS_PER_RUN days: docs/scaling.md). Built from the settings when the
definitions are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    Failure,
    MonthlyPartitionsDefinition,
    RunRequest,
    TimeWindow,
)

from arcadia_pipeline.settings import Settings
from arcadia_pipeline.utc import days_between, month_start


def daily_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """One partition per UTC day, from the first metered day through yesterday."""
    return DailyPartitionsDefinition(
        start_date=settings.metering_start_date.isoformat(), timezone="UTC"
    )


def monthly_partitions(settings: Settings) -> MonthlyPartitionsDefinition:
    """Keys YYYY-MM-01, from the month of the first day. end_offset=1: the month in progress
    is a partition too, so it can hold a draft statement."""
    return MonthlyPartitionsDefinition(
        start_date=month_start(settings.metering_start_date).isoformat(),
        timezone="UTC",
        end_offset=1,
    )


def days_in_window(window: TimeWindow) -> list[date]:
    """The UTC days a partition time window (one day or a backfill range) covers; refuses
    an empty window at once, never retried."""
    days = days_between(window.start, window.end)
    if not days:
        raise Failure(
            description=f"the window {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d} holds no "
            "day (a reversed partition range?)",
            allow_retries=False,
        )
    return days


def months_in_window(window: TimeWindow) -> list[date]:
    """The billing months (their first days) a partition time window covers."""
    return sorted({month_start(day) for day in days_in_window(window)})


def checked_range(context: AssetExecutionContext) -> None:
    """Refuse, at once and never retried, a run whose partition range is reversed or names a
    key that is not a partition of the asset (a day not over yet, a month to come): Dagster
    checks neither for a range a sensor or a job launches, and its CLI names the wrong key."""
    first, last = context.partition_key_range
    if first > last:  # ISO keys order as their days do
        raise Failure(
            description=f"partition range {first}...{last} is reversed: its start is after its end",
            allow_retries=False,
        )
    keys = context.assets_def.partitions_def.get_partition_keys()
    missing = [key for key in dict.fromkeys((first, last)) if key not in set(keys)]
    if missing:
        raise Failure(
            description=f"partition range {first}...{last}: {', '.join(missing)} "
            f"{'is not a partition' if len(missing) == 1 else 'are not partitions'} "
            f"(the partitions run from {keys[0]} to {keys[-1]})",
            allow_retries=False,
        )


def run_days(context: AssetExecutionContext) -> list[date]:
    """The UTC days of a daily asset's run, its range checked first (checked_range)."""
    checked_range(context)
    return days_in_window(context.partition_time_window)


def run_months(context: AssetExecutionContext) -> list[date]:
    """The billing months of a monthly asset's run, its range checked first."""
    checked_range(context)
    return months_in_window(context.partition_time_window)


# The run tag that says which UTC days a metering run covers, in the UI's run list and run
# page (Dagster hides its own `dagster/` range tags): `2026-10-01...2026-10-31`, as
# `dg launch --partition-range` takes it, or the one day.
DAYS_TAG = "arcadia/days"


def days_tag(first: date, last: date) -> dict[str, str]:
    """{DAYS_TAG: the days [first, last]}: one day's ISO date, or `first...last`."""
    days = first.isoformat() if first == last else f"{first.isoformat()}...{last.isoformat()}"
    return {DAYS_TAG: days}


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover [first, last] (a single-run backfill of the range), and
    say so in the UI (DAYS_TAG)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
        **days_tag(first, last),
    }


def days_request(
    first: date,
    last: date,
    *,
    run_key: str,
    tags: Mapping[str, str] | None = None,
    asset_selection: Sequence[AssetKey] | None = None,
) -> RunRequest:
    """A sensor's request to meter the days [first, last]: one day as that day's partition
    (`partition_key`, so the day's checks count for the day in the UI: Dagster 1.13 records
    a range run's check results for its window, not per day), more as one range run
    (range_tags). Both carry DAYS_TAG and `tags`."""
    if first == last:
        return RunRequest(
            run_key=run_key,
            partition_key=first.isoformat(),
            tags={**days_tag(first, last), **(tags or {})},
            asset_selection=asset_selection,
        )
    return RunRequest(
        run_key=run_key,
        tags={**range_tags(first, last), **(tags or {})},
        asset_selection=asset_selection,
    )


def daily_backfill_policy(max_days_per_run: int | None) -> BackfillPolicy:
    """How a backfill of a range of days becomes runs: one run for the whole range (None, the
    default), or runs of at most `max_days_per_run` consecutive days each
    (ARCADIA_MAX_DAYS_PER_RUN). Every daily asset has the same policy, so a chunk's run
    holds all the daily assets and their checks for its days."""
    if max_days_per_run is None:
        return BackfillPolicy.single_run()
    return BackfillPolicy.multi_run(max_partitions_per_run=max_days_per_run)
