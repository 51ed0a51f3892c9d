"""When a billing month closes, and what it needs first.

A month's statements are drafts until the month has ended plus ARCADIA_CLOSE_GRACE_DAYS;
the first statement run after that closes them, and a closed month is only ever adjusted.
Closing, and adjusting a closed month, need every day of the month metered by the four daily
assets with their checks passing, and no day stale (a month-to-date figure older than a
correction of its month): a final statement is priced from final days or not at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import AssetPartitionStatus, DagsterEventType, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from sqlalchemy import Connection

from arcadia_pipeline.automation.daily_job import METERING_ASSET_KEYS
from arcadia_pipeline.billing.checks import aggregates_equal_usage_records, quote_totals_add_up
from arcadia_pipeline.metering.checks import (
    usage_records_complete,
    usage_records_month_closure,
    usage_records_within_bounds,
)
from arcadia_pipeline.orchestration.day_lineage import stale_days
from arcadia_pipeline.orchestration.partitions import daily_partitions
from arcadia_pipeline.retention.sql import retention_cutoffs
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import add_months, contiguous_ranges, day_start, iter_days, month_end

# The daily checks a month's days must pass before the month closes (all blocking).
DAILY_CHECKS = (
    usage_records_complete,
    usage_records_within_bounds,
    usage_records_month_closure,
    aggregates_equal_usage_records,
    quote_totals_add_up,
)
DAILY_CHECK_KEYS = tuple(key for check in DAILY_CHECKS for key in check.check_keys)


def utc_now() -> datetime:
    """The one reading of the clock that decides draft or closed (tests hold it still)."""
    return datetime.now(UTC)


def closes_at(month: date, grace_days: int | None = None) -> datetime:
    """The month's end plus the grace period: from then on a statement run closes it."""
    grace = settings().close_grace_days if grace_days is None else grace_days
    return day_start(add_months(month, 1)) + timedelta(days=grace)


def due_to_close(month: date, now: datetime) -> bool:
    return now >= closes_at(month)


def month_text(month: date) -> str:
    return f"{month:%Y-%m}"


def month_days(month: date) -> list[date]:
    """The month's days that are daily partitions (a first month may start mid-month)."""
    return list(iter_days(max(month, settings().metering_start_date), month_end(month)))


def days_text(days: list[date]) -> str:
    return ", ".join(
        f"{first}" if first == last else f"{first} to {last}"
        for first, last in contiguous_ranges(days)
    )


def checks_passed(instance: DagsterInstance, keys: list[str]) -> set[tuple]:
    """(check key, day) of the daily checks whose latest planned evaluation on the day
    passed. A range run evaluates a check once for all its days (Dagster records that
    evaluation without a partition), so a day's result is its latest planning run's."""
    infos = instance.event_log_storage.get_asset_check_partition_info(
        list(DAILY_CHECK_KEYS), partition_keys=keys
    )
    passed_in: dict[str, set] = {}
    for run_id in {info.latest_planned_run_id for info in infos}:
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        evaluations = [
            record.event_log_entry.dagster_event.event_specific_data for record in records
        ]
        passed_in[run_id] = {e.asset_check_key for e in evaluations if e.passed}
    return {
        (info.check_key, info.partition_key)
        for info in infos
        if info.latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED
        or info.check_key in passed_in[info.latest_planned_run_id]
    }


def unready_days(
    instance: DagsterInstance, connection: Connection, month: date, complete: bool = True
) -> list[str]:
    """Why the month's days cannot be priced for good yet, each reason with its days; empty
    when they can. `complete=False` (a draft) only waits for days being written or stale."""
    days = month_days(month)
    if not complete:  # a draft of the month in progress: its days so far
        days = [day for day in days if day < utc_now().date()]
    keys = [day.isoformat() for day in days]
    statuses = [
        instance.get_status_by_partition(asset, keys, daily_partitions) or {}
        for asset in METERING_ASSET_KEYS
    ]
    of_day = {
        day: [status.get(key) for status in statuses] for day, key in zip(days, keys, strict=True)
    }
    busy = [day for day, s in of_day.items() if AssetPartitionStatus.IN_PROGRESS in s]
    reasons = []
    if busy:
        reasons.append(f"being metered: {days_text(busy)}")
    if complete:
        missing = [
            day
            for day, s in of_day.items()
            if day not in busy and any(x != AssetPartitionStatus.MATERIALIZED for x in s)
        ]
        if missing:
            reasons.append(f"not metered by every daily asset: {days_text(missing)}")
        passed = checks_passed(instance, keys)
        failing = [
            day
            for day, key in zip(days, keys, strict=True)
            if day not in busy
            and day not in missing
            and any((check, key) not in passed for check in DAILY_CHECK_KEYS)
        ]
        if failing:
            reasons.append(f"daily checks not passed: {days_text(failing)}")
    stale = sorted(
        {day for of_asset in stale_days(connection, month).values() for day in of_asset} & set(days)
    )
    if stale:
        reasons.append(f"stale (to be refreshed by missed_days_sensor): {days_text(stale)}")
    return reasons


def past_retention(connection: Connection, month: date, today: date) -> str | None:
    """Why the month can no longer be priced: retention may have removed some of its
    records (a closed statement then stands as it is); None while every kind keeps it."""
    cutoffs = retention_cutoffs(connection, today)
    expired = sorted(kind for kind, first_kept in cutoffs.items() if first_kept > month)
    if not expired:
        return None
    return (
        f"{month_text(month)} is past the retention of its usage records "
        f"({', '.join(expired)} kept from {max(cutoffs[k] for k in expired)} on)"
    )
