"""What the pipeline's day is compared with: the floor and the seed's way.

The floor: one hand-written INSERT … SELECT of the day's usage rows from the source
versions, with the per-second accrual, into a table with usage_records' indexes. Nothing
else: no snapshot, no validation, no day lineage, no Dagster, no statistics, no checks.

The seed's way: the Elixir worker walked every resource and inserted its record one at a
time. The same walk in Python (one SELECT and one INSERT per resource, each committed) is
timed on a sample and extrapolated to every resource.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

FLOOR_TABLE = "bench_floor_usage"

# The accrual of metering/accrual.py written out by hand: the difference of two rounded
# cumulative positions (1e-18 units) from the start of the UTC month.
FLOOR_SQL = f"""
INSERT INTO {FLOOR_TABLE}
  (deployment_id, resource_id, resource_kind, period_start, granularity, qty, run_id)
SELECT v.deployment_id, v.resource_id, k.billing_kind, :d0, 'day',
       sum((div(x.w * extract(epoch FROM least(coalesce(v.valid_to, :d1), :d1) - :m0)
                * 2000000000000000000::numeric + x.u, 2 * x.u)
          - div(x.w * extract(epoch FROM greatest(v.valid_from, :d0) - :m0)
                * 2000000000000000000::numeric + x.u, 2 * x.u))
           * 0.000000000000000001::numeric)::numeric(38, 18),
       'floor'
FROM arcadia.resource_versions v
JOIN metering.kind_map k ON k.inventory_kind = v.inventory_kind
CROSS JOIN LATERAL (
  SELECT CASE k.accrual WHEN 'active_hours' THEN (v.status = 'active')::int::numeric
                        WHEN 'size_month' THEN v.size_gb ELSE 1 END AS w,
         CASE k.accrual WHEN 'active_hours' THEN 3600 ELSE :month_seconds END AS u
) x
WHERE v.deployment_id IS NOT NULL AND k.billing_kind IS NOT NULL
  AND v.valid_from < :d1 AND (v.valid_to IS NULL OR v.valid_to > :d0)
GROUP BY v.deployment_id, v.resource_id, k.billing_kind
"""


def _bounds(day: date) -> dict:
    d0 = datetime(day.year, day.month, day.day, tzinfo=UTC)
    m0 = d0.replace(day=1)
    next_month = (m0 + timedelta(days=32)).replace(day=1)
    return {
        "d0": d0,
        "d1": d0 + timedelta(days=1),
        "m0": m0,
        "month_seconds": int((next_month - m0).total_seconds()),
    }


def create_floor_table(connection) -> None:
    """A plain table with usage_records' columns and the same indexes (read from the
    catalog, so they stay the same when the migrations change them)."""
    from sqlalchemy import text

    connection.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
    connection.execute(
        text(f"CREATE TABLE {FLOOR_TABLE} (LIKE metering.usage_records INCLUDING DEFAULTS)")
    )
    definitions = connection.execute(
        text(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = 'metering.usage_records'::regclass"
        )
    ).scalars()
    for n, definition in enumerate(definitions):
        columns = definition[definition.index(" USING ") :]
        unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
        connection.execute(
            text(f"CREATE {unique}INDEX {FLOOR_TABLE}_{n} ON {FLOOR_TABLE}{columns}")
        )


@dataclass
class Floor:
    seconds: float
    rows: int
    equal_to_pipeline: bool  # same keys and quantities as usage_records of the day


def measure_floor(engine, day: date, checkpoint) -> Floor:
    """The floor for `day`: the INSERT … SELECT and its commit, timed (after a checkpoint,
    as each pipeline measurement starts)."""
    from sqlalchemy import text

    with engine.begin() as connection:
        create_floor_table(connection)
    checkpoint()
    started = time.perf_counter()
    with engine.begin() as connection:
        rows = connection.execute(text(FLOOR_SQL), _bounds(day)).rowcount
    return Floor(time.perf_counter() - started, rows, floor_equals_pipeline(engine, day))


def floor_equals_pipeline(engine, day: date) -> bool:
    """Whether the floor wrote exactly the pipeline's records of the day (same work)."""
    from sqlalchemy import text

    differ = f"""
    SELECT count(*) FROM (
      (SELECT deployment_id, resource_id, resource_kind, period_start, granularity, qty
         FROM {FLOOR_TABLE}
       EXCEPT ALL
       SELECT deployment_id, resource_id, resource_kind, period_start, granularity, qty
         FROM metering.usage_records WHERE period_start >= :d0 AND period_start < :d1)
      UNION ALL
      (SELECT deployment_id, resource_id, resource_kind, period_start, granularity, qty
         FROM metering.usage_records WHERE period_start >= :d0 AND period_start < :d1
       EXCEPT ALL
       SELECT deployment_id, resource_id, resource_kind, period_start, granularity, qty
         FROM {FLOOR_TABLE})
    ) d
    """
    with engine.connect() as connection:
        return connection.execute(text(differ), _bounds(day)).scalar_one() == 0


@dataclass
class SeedsWay:
    sample: int
    seconds: float  # for the sample
    per_resource_ms: float
    extrapolated_seconds: float  # for every resource of the day


def measure_seeds_way(engine, day: date, resources: int, sample: int) -> SeedsWay:
    """One SELECT and one committed INSERT per resource, for `sample` resources spread over
    the inventory, accrued by the package's pure reference (metering/accrual.py). An index
    on resource_id (the source has none) is created first: the walk gets its best case."""
    from sqlalchemy import text

    from arcadia_pipeline.metering.accrual import accrued_qty
    from arcadia_pipeline_tests.shipped_catalog import DEFAULT_KIND_MAP

    kinds = {m.inventory_kind: m for m in DEFAULT_KIND_MAP}
    b = _bounds(day)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {FLOOR_TABLE}"))
        connection.execute(
            text(
                "CREATE INDEX IF NOT EXISTS bench_versions_resource_idx "
                "ON arcadia.resource_versions (resource_id)"
            )
        )
        connection.execute(text("ANALYZE arcadia.resource_versions"))
        ids = (
            connection.execute(
                text(
                    "SELECT DISTINCT resource_id FROM arcadia.resource_versions "
                    "WHERE deployment_id IS NOT NULL ORDER BY resource_id LIMIT :n"
                ),
                {"n": sample},
            )
            .scalars()
            .all()
        )
    select_versions = text(
        "SELECT deployment_id, inventory_kind, size_gb, status, valid_from, valid_to "
        "FROM arcadia.resource_versions WHERE resource_id = :r "
        "AND valid_from < :d1 AND (valid_to IS NULL OR valid_to > :d0)"
    )
    insert_record = text(
        f"INSERT INTO {FLOOR_TABLE} (deployment_id, resource_id, resource_kind, period_start, "
        "granularity, qty, run_id) VALUES (:dep, :r, :kind, :d0, 'day', :qty, 'seed')"
    )
    with engine.connect() as connection:
        started = time.perf_counter()
        for resource_id in ids:
            versions = connection.execute(
                select_versions, {"r": resource_id, "d0": b["d0"], "d1": b["d1"]}
            ).all()
            connection.commit()
            if not versions:
                continue
            mapping = kinds[versions[0].inventory_kind]
            qty = sum(
                (
                    accrued_qty(
                        mapping.accrual,
                        v.status,
                        v.size_gb,
                        max(v.valid_from, b["d0"]),
                        min(v.valid_to or b["d1"], b["d1"]),
                    )
                    for v in versions
                ),
                Decimal(0),
            )
            connection.execute(
                insert_record,
                {"dep": versions[0].deployment_id, "r": resource_id,
                 "kind": mapping.billing_kind, "d0": b["d0"], "qty": qty},
            )  # fmt: skip
            connection.commit()
        seconds = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX arcadia.bench_versions_resource_idx"))
    per_resource = seconds / len(ids)
    return SeedsWay(len(ids), seconds, per_resource * 1000, per_resource * resources)


def bytes_per_record(engine, day: date) -> float:
    """Heap + indexes of the month partition holding `day`, per record in it."""
    from sqlalchemy import text

    partition = f"metering.usage_records_{day:%Y_%m}"
    with engine.connect() as connection:
        size = connection.execute(text(f"SELECT pg_total_relation_size('{partition}')")).scalar()
        rows = connection.execute(text(f"SELECT count(*) FROM {partition}")).scalar()
    return size / rows if rows else 0.0
