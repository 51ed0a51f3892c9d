"""The warning a look-up prints on stderr when a day it reads is stale: older than what it
read (a correction re-metered an earlier day of its month), than a change of its month's
terms, or than a reconciliation's finding that the source changed (days/staleness.py).
The figures are still printed (stdout stays clean JSON or the table); the warning says which
days and what refreshes them."""

from __future__ import annotations

import sys
from datetime import date

from sqlalchemy import Connection

from arcadia_pipeline.days.staleness import stale_days
from arcadia_pipeline.days.steps import DailyStep
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.utc import days_text


def stale_days_read(
    connection: Connection, first: date, last: date, through: DailyStep
) -> list[date]:
    """The days of [first, last] on which `through` or a daily step before it is stale."""
    read = {step.asset for step in DAILY_FLOW.steps[: DAILY_FLOW.steps.index(through) + 1]}
    stale = stale_days(connection, DAILY_FLOW, first)
    return sorted({day for asset in read for day in stale[asset] if day <= last})


def warn_if_stale(
    connection: Connection, first: date, last: date, through: DailyStep, what: str
) -> None:
    """Print one warning line on stderr naming the days of [first, last] that `what` (e.g.
    "the quote") reads from `through` and the steps before it, and that are stale; nothing
    when none is."""
    days = stale_days_read(connection, first, last, through)
    if days:
        print(
            f"arcadia-pipeline: warning: {what} reads {len(days)} stale day(s) "
            f"({days_text(days)}): a later correction, terms change or reconciliation finding "
            "is not metered into them yet; missed_days_sensor refreshes them, then the "
            "figures may change",
            file=sys.stderr,
        )
