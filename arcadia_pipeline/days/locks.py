"""A day's locks and its write stamp: a day waits for the days it reads, and two runs of a
day leave the rows of one.

Every step's day transaction takes its own (asset, day) lock exclusively and the days it
reads shared, then stamps `metering.day_writes` with clock_timestamp() *after* the locks:
the stamps then follow the order in which the transactions really saw each other, which is
what staleness (days/staleness.py) compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import Connection, func, select, text

from arcadia_pipeline.days.staleness import is_stale
from arcadia_pipeline.days.steps import DailyStep
from arcadia_pipeline.db.schema import day_writes

# The lock a change of the terms (kind map, metering config, plan catalog) takes exclusively in
# migration 0007's trigger, by these literals: a day's stamp is then either before a change
# (the change waits for the day's transaction: the day is stale) or after its commit (the
# day reads the new terms), never in between.
TERMS_LOCK = ("metering.terms", date(1970, 1, 1))


# A day's write stamp, replacing the one before. Text: SQLAlchemy 2.0 never caches a
# PostgreSQL INSERT … ON CONFLICT (days/verdicts.RECORD_VERDICT).
STAMP_WRITE = text(
    f"""
    INSERT INTO {day_writes.fullname} (asset, day, written_at, run_id)
    VALUES (:asset, :day, :written_at, :run_id)
    ON CONFLICT (asset, day) DO UPDATE
    SET written_at = excluded.written_at, run_id = excluded.run_id
    """
)


def lock(connection: Connection, name: str, day: date, shared: bool) -> None:
    """The transaction-scoped advisory lock of (name, day): an asset's day, or a month (its
    first day) of the statements."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(
        text(f"SELECT {function}(hashtext(:name), :day)"),
        {"name": name, "day": day.toordinal()},
    )


# Shared advisory locks of (name, day) keys in one statement, taken in the arrays' order:
# a function scan of unnest yields its rows in order, and the aggregate locks each as it
# comes. One round trip, not one per key: a day's projection reads a month of inventory.
LOCK_SHARED_IN_ORDER = text(
    """
    SELECT count(pg_advisory_xact_lock_shared(hashtext(k.name), k.day))
    FROM unnest(CAST(:names AS text[]), CAST(:days AS integer[])) AS k(name, day)
    """
)


def lock_shared(connection: Connection, keys: Sequence[tuple[str, date]]) -> None:
    """The shared transaction-scoped advisory locks of (name, day) `keys`, in their order (a
    fixed order everywhere keeps two transactions from waiting for each other)."""
    connection.execute(
        LOCK_SHARED_IN_ORDER,
        {"names": [name for name, _ in keys], "days": [day.toordinal() for _, day in keys]},
    )


def clock(connection: Connection) -> datetime:
    """The database's clock now (not the transaction's start): a stamp taken after locks."""
    return connection.execute(select(func.clock_timestamp())).scalar_one()


def lock_reads(connection: Connection, step: DailyStep, days: Iterable[date]) -> datetime:
    """Wait for any writer of the days `step`'s `days` read, and of the terms, and keep them
    out until the transaction ends (shared: readers never wait for each other); the time from
    which what they read is fixed."""
    read = {
        (reads.step.asset, read_day)
        for day in days
        for reads in step.reads
        for read_day in reads.days(day)
    }
    lock_shared(connection, [*sorted(read), TERMS_LOCK])
    return clock(connection)


def lock_for_reading(connection: Connection, step: DailyStep, day: date) -> None:
    """Keep writers of the step's day, and of what it reads, out until the transaction ends
    (a check, or a month's statements, read a consistent day)."""
    lock(connection, step.asset, day, shared=True)
    lock_reads(connection, step, [day])


def is_current(connection: Connection, step: DailyStep, day: date) -> bool:
    """Whether the step's day is written and no day it read was written since, holding it
    (shared) until the transaction ends: a later day may then build on it."""
    lock(connection, step.asset, day, shared=True)
    written = connection.execute(
        select(day_writes.c.day).where(day_writes.c.asset == step.asset, day_writes.c.day == day)
    ).first()
    return written is not None and not is_stale(connection, step, day)


def hold_day(connection: Connection, step: DailyStep, day: date, run_id: str) -> None:
    """In the day's transaction, before writing: the day's own lock (two runs of a day leave
    the rows of one, never a mix), then the days it reads, then its stamp: when its inputs
    were read."""
    lock(connection, step.asset, day, shared=False)
    read_at = lock_reads(connection, step, [day])
    stamp = {"asset": step.asset, "day": day, "written_at": read_at, "run_id": run_id}
    connection.execute(STAMP_WRITE, stamp)
