"""When a billing month closes, and what it needs first.

A month's statements are drafts until the month has ended plus ARCADIA_CLOSE_GRACE_DAYS;
the first statement run after that closes them, and a closed month is only ever adjusted.
Closing, and adjusting a closed month, need every day of the month written by every gating
daily step with its checks passed since, and no day stale (a month-to-date figure older than
a correction of its month): a final statement is priced from final days or not at all. That
is one query over the warehouse (days/verdicts.py); nothing here asks Dagster.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from arcadia_pipeline.days.verdicts import CloseStatus, close_status
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.retention.expiry import retention_cutoffs
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import DAY, add_months, day_start, month_end, month_text


def closes_at(month: date, grace_days: int | None = None) -> datetime:
    """The month's end plus the grace period: from then on a statement run closes it."""
    grace = settings().close_grace_days if grace_days is None else grace_days
    return day_start(add_months(month, 1)) + timedelta(days=grace)


def due_to_close(month: date, now: datetime) -> bool:
    return now >= closes_at(month)


def month_status(connection: Connection, month: date, through: date | None = None) -> CloseStatus:
    """Whether the month's days are final: its days that are daily partitions (a first month
    may start mid-month), through `through` (default: its last day)."""
    first = max(month, settings().metering_start_date)
    last = min(through or month_end(month), month_end(month))
    return close_status(connection, DAILY_FLOW, first, last)


def unready_days(
    connection: Connection, month: date, today: date, complete: bool = True
) -> list[str]:
    """Why the month's days cannot be priced for good yet, each reason with its days; empty
    when they can. `complete=False` (a draft of the days before `today`) only waits for
    stale days."""
    if complete:
        return month_status(connection, month).reasons()
    if today <= max(month, settings().metering_start_date):
        return []
    status = month_status(connection, month, through=today - DAY)
    return CloseStatus(month, [], {}, status.stale_days).reasons()


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
