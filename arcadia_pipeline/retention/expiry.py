"""Retention of usage records: per billing kind, never inside the open or previous month.

The inventory snapshots behind them (their lineage, as large as the records) go with the
last record of their day: kept while any kind still keeps that day."""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, delete, select, text

from arcadia_pipeline.catalog.kinds import GRANULARITIES, MIN_RETENTION_DAYS
from arcadia_pipeline.db.partitions import partition_name
from arcadia_pipeline.db.schema import (
    SCHEMA,
    inventory_deployments,
    inventory_snapshots,
    kind_map,
    metering_config,
    resource_inventory,
    usage_records,
)
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.utc import add_months, day_start


class InvalidMeteringConfig(BadSourceData):
    """metering.metering_config holds a value the pipeline refuses to act on."""


def protected_from(today: date) -> date:
    """First day of the previous billing month: nothing on or after it is ever removed."""
    return add_months(today, -1)


def retention_cutoffs(connection: Connection, today: date) -> dict[str, date]:
    """Per billing kind, the first day kept; records before it are removed."""
    rows = connection.execute(select(metering_config)).all()
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


@dataclass(frozen=True)
class InventoryRetention:
    rows_removed: int
    dropped_partitions: list[str]


def apply_retention(connection: Connection, today: date) -> RetentionResult:
    """Remove expired usage records (caller holds the transaction).

    Whole monthly partitions that every kind has expired are dropped (cheap at scale);
    the rest is deleted per kind.
    """
    cutoffs = retention_cutoffs(connection, today)
    if not cutoffs:
        return RetentionResult({}, [])
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
    dropped = []
    for upper, name in _expired_partitions(connection, "usage_records", oldest_kept):
        counts = connection.execute(
            text(f"SELECT resource_kind, count(*) FROM {SCHEMA}.{name} GROUP BY resource_kind")
        ).all()
        if any(kind not in cutoffs or upper > cutoffs[kind] for kind, _ in counts):
            continue  # a kind without config, or one that keeps longer: delete per kind
        for kind, n in counts:
            removed[kind] += n
        connection.execute(text(f"DROP TABLE {SCHEMA}.{name}"))
        dropped.append(name)
    for kind, cutoff in cutoffs.items():
        result = connection.execute(
            delete(usage_records).where(u.resource_kind == kind, u.period_start < day_start(cutoff))
        )
        removed[kind] += result.rowcount
    return RetentionResult(removed, dropped, None if unconfigured else oldest_kept)


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
    for table in (inventory_deployments, inventory_snapshots):
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
