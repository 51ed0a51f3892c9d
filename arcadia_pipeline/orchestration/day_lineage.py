"""What each daily asset's day reads, and when each was last written: the one map that both
the locks (a day waits for the days it reads) and staleness (a day older than a day it
reads) come from.

Every asset's day transaction takes its own (asset, day) lock exclusively and the days it
reads shared, then stamps `metering.day_writes` with clock_timestamp() *after* the locks:
the stamps then follow the order in which the transactions really saw each other. A day is
stale when a day it reads was written after it (a correction re-metered the 3rd after the
month-to-date figures of the 20th were computed); the catch-up sensor refreshes it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, NamedTuple

from sqlalchemy import Connection, and_, func, literal, or_, select, text, union_all
from sqlalchemy.dialects.postgresql import insert

from arcadia_pipeline.db.schema import day_writes
from arcadia_pipeline.utc import iter_days, month_start


class Reads(NamedTuple):
    asset: str
    span: Literal["day", "month_to_date"]  # the same day, or the month's days up to it


READS: dict[str, tuple[Reads, ...]] = {
    "resource_inventory": (),
    "usage_records": (Reads("resource_inventory", "day"),),
    "usage_period_aggregates": (Reads("usage_records", "month_to_date"),),
    "deployment_quotes": (
        Reads("usage_period_aggregates", "day"),
        Reads("resource_inventory", "day"),  # the plan of the day
    ),
}
FLOW = tuple(READS)  # the daily assets in the order they run


def read_days(reads: Reads, day: date) -> list[date]:
    return [day] if reads.span == "day" else list(iter_days(month_start(day), day))


def _lock(connection: Connection, asset: str, day: date, shared: bool) -> None:
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(
        text(f"SELECT {function}(hashtext(:asset), :day)"),
        {"asset": asset, "day": day.toordinal()},
    )


def lock_reads(connection: Connection, asset: str, days: list[date]) -> datetime:
    """Wait for any writer of the days `asset`'s `days` read, and keep them out until the
    transaction ends (shared: readers never wait for each other); the time from which what
    they read is fixed."""
    read = {
        (reads.asset, read_day)
        for day in days
        for reads in READS[asset]
        for read_day in read_days(reads, day)
    }
    for read_asset, read_day in sorted(read):
        _lock(connection, read_asset, read_day, shared=True)
    return connection.execute(select(func.clock_timestamp())).scalar_one()


def lock_for_reading(connection: Connection, asset: str, day: date) -> None:
    """Keep writers of the asset's day, and of what it reads, out until the transaction
    ends (a check reads a consistent day)."""
    _lock(connection, asset, day, shared=True)
    lock_reads(connection, asset, [day])


def is_current(connection: Connection, asset: str, day: date) -> bool:
    """Whether the asset's day is written and no day it read was written since, holding it
    (shared) until the transaction ends: a later day may then build on it."""
    _lock(connection, asset, day, shared=True)
    written = connection.execute(
        select(day_writes.c.day).where(day_writes.c.asset == asset, day_writes.c.day == day)
    ).first()
    return written is not None and not is_stale(connection, asset, day)


def hold_day(connection: Connection, asset: str, day: date, run_id: str) -> None:
    """In the day's transaction, before writing: the day's own lock (two runs of a day leave
    the rows of one, never a mix), then the days it reads, then its stamp: when its inputs
    were read."""
    _lock(connection, asset, day, shared=False)
    read_at = lock_reads(connection, asset, [day])
    stamp = {"written_at": read_at, "run_id": run_id}
    connection.execute(
        insert(day_writes)
        .values(asset=asset, day=day, **stamp)
        .on_conflict_do_update(index_elements=["asset", "day"], set_=stamp)
    )


def _stale_of(asset: str):
    """(asset, day, newest upstream stamp) of the days of `asset` some read day is newer than."""
    this, upstream = day_writes.alias("this"), day_writes.alias("upstream")
    spans = []
    for reads in READS[asset]:
        if reads.span == "day":
            same = upstream.c.day == this.c.day
        else:
            same = upstream.c.day.between(func.date_trunc("month", this.c.day), this.c.day)
        spans.append(and_(upstream.c.asset == reads.asset, same))
    return (
        select(
            literal(asset).label("asset"),
            this.c.day,
            func.max(upstream.c.written_at).label("upstream_written_at"),
        )
        .join_from(this, upstream, and_(or_(*spans), upstream.c.written_at > this.c.written_at))
        .where(this.c.asset == asset)
        .group_by(this.c.day)
    )


def stale_days(connection: Connection, first: date | None = None) -> dict[str, dict]:
    """Per asset, {day: newest stamp of what it read} for the days older than a day they
    read (from `first` on)."""
    query = union_all(*(_stale_of(asset) for asset in FLOW if READS[asset])).subquery()
    if first is not None:
        query = select(query).where(query.c.day >= first).subquery()
    stale: dict[str, dict] = {asset: {} for asset in FLOW}
    for asset, day, written_at in connection.execute(select(query)):
        stale[asset][day] = written_at
    return stale


def is_stale(connection: Connection, asset: str, day: date) -> bool:
    """Whether a day `asset`'s day read was written after it read it."""
    if not READS[asset]:
        return False
    query = _stale_of(asset).subquery()
    return connection.execute(select(query.c.day).where(query.c.day == day)).first() is not None
