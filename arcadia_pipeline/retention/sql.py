"""Retention of usage records: per billing kind, never inside the open or previous month."""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, delete, select, text

from arcadia_pipeline.days import day_start
from arcadia_pipeline.db.partitions import partition_name
from arcadia_pipeline.db.schema import SCHEMA, metering_config, usage_records
from arcadia_pipeline.metering.accrual import GRANULARITIES, MIN_RETENTION_DAYS


class InvalidMeteringConfig(ValueError):
    """metering.metering_config holds a value the pipeline refuses to act on."""


def protected_from(today: date) -> date:
    """First day of the previous billing month: nothing on or after it is ever removed."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


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


def apply_retention(connection: Connection, today: date) -> RetentionResult:
    """Remove expired usage records (caller holds the transaction).

    Whole monthly partitions that every kind has expired are dropped (cheap at scale);
    the rest is deleted per kind.
    """
    cutoffs = retention_cutoffs(connection, today)
    u = usage_records.c
    removed = dict.fromkeys(cutoffs, 0)
    dropped = []
    if cutoffs:
        oldest_kept = min(cutoffs.values())
        for month_start, name in _partitions(connection):
            upper = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
            if upper > oldest_kept:
                continue
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
    return RetentionResult(removed, dropped)


def _partitions(connection: Connection) -> list[tuple[date, str]]:
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'metering.usage_records'::regclass ORDER BY c.relname"
        )
    ).scalars()
    partitions = []
    for name in names:
        year, month = name.removeprefix("usage_records_").split("_")
        month_start = date(int(year), int(month), 1)
        if partition_name("usage_records", month_start) == name:
            partitions.append((month_start, name))
    return partitions
