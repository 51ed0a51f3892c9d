"""Retention of usage records: per billing kind, never inside the open or previous month,
never in a month that has not closed, and recorded.

Each kind keeps `retention_days` of the metering config in effect today. Retention waits for
a month to close before it removes any of its records (a month priced from what is left
would bill less), and records what it removed per billing month and kind
(`metering.retention_removals`): such a month's closed statements stand as they are, it is
never priced again, and no day of it is metered again (`refuse_removed_days`).

The inventory snapshots behind the records (their lineage, as large as the records) go with
the last record of their day: kept while any kind still keeps that day."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Date, cast, delete, func, insert, select, text

from arcadia_pipeline.catalog.kinds import GRANULARITIES, MIN_RETENTION_DAYS
from arcadia_pipeline.db.partitions import partition_name
from arcadia_pipeline.db.schema import (
    SCHEMA,
    capped_resource_usage,
    day_fingerprints,
    inventory_deployments,
    inventory_snapshots,
    kind_map,
    metering_config,
    resource_inventory,
    retention_removals,
    source_findings,
    statement_months,
    usage_records,
)
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.utc import add_months, day_start, month_end, month_start, month_text


class InvalidMeteringConfig(BadSourceData):
    """metering.metering_config holds a value the pipeline refuses to act on."""


class RemovedByRetention(BadSourceData):
    """A day of a billing month some of whose usage records retention removed: its closed
    statements stand, and it is never metered or priced again."""


def protected_from(today: date) -> date:
    """First day of the previous billing month: nothing on or after it is ever removed."""
    return add_months(today, -1)


def retention_cutoffs(connection: Connection, today: date) -> dict[str, date]:
    """Per billing kind, the first day its retention_days (the metering config in effect for
    today's month) keeps; never later than the previous month's first day."""
    rows = connection.execute(select(in_effect(metering_config, today))).all()
    bad = [
        f"{r.billing_kind}: granularity {r.granularity!r} (expected one of {GRANULARITIES})"
        for r in rows
        if r.granularity not in GRANULARITIES
    ] + [
        f"{r.billing_kind}: retention_days {r.retention_days} would reach into the open or "
        f"previous billing month (minimum {MIN_RETENTION_DAYS})"
        for r in rows
        if r.retention_days is None or r.retention_days < MIN_RETENTION_DAYS
    ]
    if bad:
        raise InvalidMeteringConfig("invalid metering.metering_config: " + "; ".join(bad))
    floor = protected_from(today)
    return {r.billing_kind: min(today - timedelta(days=r.retention_days), floor) for r in rows}


@dataclass(frozen=True)
class RetentionResult:
    removed: dict[str, int]  # rows removed per billing kind
    dropped_partitions: list[str]
    # First day whose inventory every kind may still need; None: keep all inventory (a
    # billing kind without metering_config keeps its records for good).
    inventory_kept_from: date | None = None
    # What retention would have removed but keeps until a month closes, one line per kind.
    waiting: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InventoryRetention:
    rows_removed: int
    dropped_partitions: list[str]


def first_unclosed_month(connection: Connection, before: date) -> date:
    """The first billing month holding usage records that has not closed (`before` when
    every month before it has): retention removes nothing from it on."""
    closed = set(
        connection.execute(
            select(statement_months.c.month).where(statement_months.c.closed_at.is_not(None))
        ).scalars()
    )
    u = usage_records.c
    month = date.min
    while month < before:
        # The next month holding records (the period_start index: one probe a month).
        oldest = connection.execute(
            select(func.min(u.period_start)).where(u.period_start >= day_start(month))
        ).scalar()
        if oldest is None:
            return before
        month = month_start(oldest.date())
        if month not in closed:
            return min(month, before)
        month = add_months(month, 1)
    return before


def _waiting_for_close(cutoffs: dict[str, date], hold: date) -> list[str]:
    return [
        f"{kind}: records from {hold} on kept until {month_text(hold)} closes (retention "
        f"would remove them before {cutoff})"
        for kind, cutoff in sorted(cutoffs.items())
        if cutoff > hold
    ]


def apply_retention(
    connection: Connection, today: date, run_id: str | None = None
) -> RetentionResult:
    """Remove expired usage records of closed months and record what was removed, per
    billing month and kind (caller holds the transaction).

    Whole monthly partitions that every kind has expired are dropped (cheap at scale);
    the rest is deleted per kind.
    """
    cutoffs = retention_cutoffs(connection, today)
    if not cutoffs:
        return RetentionResult({}, [])
    hold = first_unclosed_month(connection, max(cutoffs.values()))
    waiting = _waiting_for_close(cutoffs, hold)
    cutoffs = {kind: min(cutoff, hold) for kind, cutoff in cutoffs.items()}
    removed_at = connection.execute(select(func.now())).scalar_one()
    unconfigured = connection.execute(
        select(kind_map.c.billing_kind)
        .where(
            kind_map.c.billing_kind.is_not(None),
            kind_map.c.billing_kind.not_in(list(cutoffs)),
        )
        .limit(1)
    ).first()
    u = usage_records.c
    removed = dict.fromkeys(cutoffs, 0)
    oldest_kept = min(cutoffs.values())
    dropped, months = [], set()
    for upper, name in _expired_partitions(connection, "usage_records", oldest_kept):
        partition = text(
            "SELECT date_trunc('month', period_start)::date AS month, resource_kind, "
            "min(period_start)::date AS first_day, max(period_start)::date AS last_day, "
            f"count(*) AS records FROM {SCHEMA}.{name} GROUP BY 1, 2"
        )
        counts = connection.execute(partition).all()
        if any(r.resource_kind not in cutoffs or upper > cutoffs[r.resource_kind] for r in counts):
            continue  # a kind without config, or one that keeps longer: delete per kind
        _record_removals(connection, counts, removed_at, run_id)
        months |= {r.month for r in counts}
        for r in counts:
            removed[r.resource_kind] += r.records
        connection.execute(text(f"DROP TABLE {SCHEMA}.{name}"))
        dropped.append(name)
    for kind, cutoff in cutoffs.items():
        gone = (
            delete(usage_records)
            .where(u.resource_kind == kind, u.period_start < day_start(cutoff))
            .returning(u.resource_kind, u.period_start)
            .cte("gone")
        )
        day = cast(gone.c.period_start, Date)
        month = cast(func.date_trunc("month", gone.c.period_start), Date)
        counts = connection.execute(
            select(
                month.label("month"),
                gone.c.resource_kind,
                func.min(day).label("first_day"),
                func.max(day).label("last_day"),
                func.count().label("records"),
            ).group_by(month, gone.c.resource_kind)
        ).all()
        _record_removals(connection, counts, removed_at, run_id)
        removed[kind] += sum(r.records for r in counts)
        months |= {r.month for r in counts}
    _remove_capped_months(connection, months)
    return RetentionResult(removed, dropped, None if unconfigured else oldest_kept, waiting)


def _remove_capped_months(connection: Connection, months: set[date]) -> None:
    """Remove the capped_resource_usage rows of the billing months retention removed records
    of: a day's rows are kept for the next day to build on, and no day of such a month is
    metered again (refuse_removed_days)."""
    c = capped_resource_usage.c
    for month in sorted(months):
        connection.execute(
            delete(capped_resource_usage).where(
                c.as_of_date >= month, c.as_of_date <= month_end(month)
            )
        )


def _record_removals(connection: Connection, counts, removed_at: datetime, run_id) -> None:
    """One retention_removals row per (month, billing kind) of `counts` (rows of month,
    resource_kind, first_day, last_day, records)."""
    if counts:
        connection.execute(
            insert(retention_removals),
            [
                {"month": r.month, "billing_kind": r.resource_kind, "first_day": r.first_day,
                 "last_day": r.last_day, "records": r.records, "removed_at": removed_at,
                 "run_id": run_id}
                for r in counts
            ],
        )  # fmt: skip


def removed_by_retention(connection: Connection, month: date) -> str | None:
    """What retention removed of the billing month's usage records, as a message naming the
    kinds, their days and when ("droplet_hours 2026-05-01 to 2026-05-31 (744 records, on
    2026-07-16)"); None when it removed nothing of it."""
    r = retention_removals.c
    rows = connection.execute(
        select(
            r.billing_kind,
            func.min(r.first_day),
            func.max(r.last_day),
            func.sum(r.records),
            func.min(r.removed_at),
        )
        .where(r.month == month_start(month))
        .group_by(r.billing_kind)
        .order_by(r.billing_kind)
    ).all()
    if not rows:
        return None
    removed = "; ".join(
        f"{kind} {first} to {last} ({records} records, on {when.date()})"
        for kind, first, last, records, when in rows
    )
    return f"retention removed usage records of {month_text(month)}: {removed}"


def refuse_removed_days(connection: Connection, days: Sequence[date]) -> None:
    """Raise RemovedByRetention when a day of `days` is in a month retention removed records
    of: metering it again would bill the month from what is left."""
    for month in sorted({month_start(day) for day in days}):
        removed = removed_by_retention(connection, month)
        if removed:
            raise RemovedByRetention(
                f"{removed}: its statements stand as they closed, and its days are not "
                "metered again (a correction into it is refused)"
            )


def remove_inventory_before(connection: Connection, first_kept: date) -> InventoryRetention:
    """Inventory snapshots of the days before first_kept: whole months dropped, the rest
    deleted (caller holds the transaction: its own, after the records' has committed, so
    the two tables' locks are never held together)."""
    removed, dropped = 0, []
    for _, name in _expired_partitions(connection, "resource_inventory", first_kept):
        removed += connection.execute(text(f"SELECT count(*) FROM {SCHEMA}.{name}")).scalar_one()
        connection.execute(text(f"DROP TABLE {SCHEMA}.{name}"))
        dropped.append(name)
    removed += connection.execute(
        delete(resource_inventory).where(resource_inventory.c.day < first_kept)
    ).rowcount
    for table in (inventory_deployments, inventory_snapshots, day_fingerprints, source_findings):
        connection.execute(delete(table).where(table.c.day < first_kept))
    return InventoryRetention(removed, dropped)


def _expired_partitions(connection: Connection, table: str, first_kept: date):
    """(upper bound, name) of the monthly partitions of `table` wholly before first_kept."""
    for month, name in _partitions(connection, table):
        upper = add_months(month, 1)
        if upper <= first_kept:
            yield upper, name


def _partitions(connection: Connection, table: str) -> list[tuple[date, str]]:
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:parent AS regclass) ORDER BY c.relname"
        ),
        {"parent": f"{SCHEMA}.{table}"},
    ).scalars()
    partitions = []
    for name in names:
        year, number = name.removeprefix(f"{table}_").split("_")
        month = date(int(year), int(number), 1)
        if partition_name(table, month) == name:
            partitions.append((month, name))
    return partitions
