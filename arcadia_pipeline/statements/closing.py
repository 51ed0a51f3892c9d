"""When a billing month closes, what it needs first, and one statement run of a month.

A month's statements are drafts until the month has ended plus ARCADIA_CLOSE_GRACE_DAYS;
the first statement run after that closes them, and a closed month is only ever adjusted.
Closing, and adjusting a closed month, need every day of the month written by every gating
daily step with its checks passed since, and no day stale (a month-to-date figure older than
a correction of its month): a final statement is priced from final days or not at all. That
is one query over the warehouse (days/verdicts.py); nothing here asks Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from arcadia_pipeline.days.verdicts import CloseStatus, close_status
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.retention.expiry import removed_by_retention
from arcadia_pipeline.settings import settings
from arcadia_pipeline.statements.ledger import (
    MonthSummary,
    close_drafts,
    summarise_month,
    write_adjustments,
    write_drafts,
)
from arcadia_pipeline.statements.month import closed_at, hold_month, mark_priced, price_month
from arcadia_pipeline.utc import (
    DAY,
    add_months,
    day_start,
    month_end,
    month_start,
    month_text,
)


class MonthNotReady(Exception):
    """A month due to close (or closed) whose days are not all metered, checked and fresh,
    or some of whose records retention removed: it cannot be priced for good now."""


def closes_at(month: date, grace_days: int | None = None) -> datetime:
    """The month's end plus the grace period: from then on a statement run closes it."""
    grace = settings().close_grace_days if grace_days is None else grace_days
    return day_start(add_months(month, 1)) + timedelta(days=grace)


def due_to_close(month: date, now: datetime) -> bool:
    return now >= closes_at(month)


# A month is late a day after it was due to close: the day the close schedule's run and its
# retries have to close it.
CLOSE_DEADLINE_AFTER = timedelta(days=1)


def close_deadline(month: date) -> datetime:
    """When the month must be closed by: its end plus the grace days plus one day."""
    return closes_at(month) + CLOSE_DEADLINE_AFTER


def last_month_due(now: datetime, deadline: Callable[[date], datetime] = close_deadline) -> date:
    """The latest billing month whose `deadline` (by default its close deadline; closes_at:
    from when a statement run closes it) is `now` or before."""
    month = add_months(month_start(now.date()), -1)
    while deadline(month) > now:
        month = add_months(month, -1)
    return month


def month_status(connection: Connection, month: date, through: date | None = None) -> CloseStatus:
    """Whether the month's days are final: its days that are daily partitions (a first month
    may start mid-month), through `through` (default: its last day)."""
    first = max(month, settings().metering_start_date)
    last = min(through or month_end(month), month_end(month))
    return close_status(connection, DAILY_FLOW, first, last)


def unclosed_reason(waiting: Sequence[str], failed_run: str | None) -> str:
    """Why a month past its close deadline is not closed, in the words the alert and the
    freshness check share: its days not final (`waiting`, from unready_days), its close run
    that failed (`failed_run`, a Dagster run id), or no run closed it."""
    if waiting:
        return "its days are not final: " + "; ".join(waiting)
    if failed_run:
        return f"its close failed (run {failed_run})"
    return "no run closed it (the close schedule's tick was missed)"


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


def price_and_book(connection: Connection, month: date, now: datetime, run_id: str) -> MonthSummary:
    """One statement run of one month, in its transaction (caller begins it): a draft
    replaced, the month closed once it is due and its days are final, or a closed month's
    changes booked as adjustments. Raises MonthNotReady (writing nothing) for a month due
    or closed whose days are not final, or some of whose records retention removed."""
    read_at = hold_month(connection, month)
    closed = closed_at(connection, month)
    closes = closed is None and due_to_close(month, now)
    removed = removed_by_retention(connection, month)
    if removed:
        raise MonthNotReady(f"cannot price {month_text(month)}: {removed}")
    if closed is not None or closes:
        unready = unready_days(connection, month, now.date())
        if unready:
            verb = "close" if closes else "adjust closed"
            raise MonthNotReady(
                f"cannot {verb} {month_text(month)}, its days are not final: " + "; ".join(unready)
            )
    priced = price_month(connection, month)
    added = 0
    if closed is not None:
        added = write_adjustments(connection, priced, run_id, now)
    else:
        write_drafts(connection, priced, run_id)
        if closes:
            close_drafts(connection, month, now)
    mark_priced(connection, month, read_at, run_id, now if closes else None)
    return summarise_month(connection, month, added)
