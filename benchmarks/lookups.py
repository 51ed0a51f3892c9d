"""What other systems ask of the warehouse: usage_for_period, and the corrections tick.

usage_for_period is timed call by call (the quote engine asks for one deployment and one
month at a time) on a usage_records table holding at least 10M records. The corrections
tick is the late_corrections_sensor's work (defs/daily/corrections.changed_since) after 1%
of the resources had a version corrected.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

# Synthetic records of one whole month for the usage_for_period measurement: every resource
# of the benchmark's deployments, one daily record per day, in a month no other
# measurement writes.
LOOKUP_MONTH = date(2025, 4, 1)
LOOKUP_DAYS = 30
RECORDS_SQL = """
INSERT INTO metering.usage_records
  (deployment_id, resource_id, resource_kind, period_start, granularity, qty, run_id)
SELECT 'dep-' || lpad(((i - 1) / :per_deployment + 1)::text, 7, '0'),
       'r:' || i,
       (ARRAY['droplet_hours', 'droplet_hours', 'spaces_gb_month', 'dns_zones'])[1 + i % 4],
       CAST(:month_start AS timestamptz) + d * interval '1 day',
       'day',
       (i % 24 + 1)::numeric,
       'bench-lookup'
FROM generate_series(0, :days - 1) AS d CROSS JOIN generate_series(1, :resources) AS i
"""


@dataclass
class Lookups:
    records: int  # usage_records in the table when timed
    calls: int
    p50_ms: float
    p99_ms: float
    fill_seconds: float


def fill_records(engine, records: int, per_deployment: int) -> float:
    """Add `records` synthetic daily records to LOOKUP_MONTH; the seconds it took."""
    from sqlalchemy import text

    from arcadia_pipeline.db.partitions import ensure_month_partitions

    resources = -(-records // LOOKUP_DAYS)
    started = time.perf_counter()
    with engine.begin() as connection:
        ensure_month_partitions(connection, LOOKUP_MONTH, LOOKUP_MONTH)
        connection.execute(
            text(RECORDS_SQL),
            {
                "per_deployment": per_deployment,
                "month_start": datetime(LOOKUP_MONTH.year, LOOKUP_MONTH.month, 1, tzinfo=UTC),
                "days": LOOKUP_DAYS,
                "resources": resources,
            },
        )
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text("VACUUM ANALYZE metering.usage_records"))
    return time.perf_counter() - started


def time_usage_for_period(engine, deployments: int, calls: int = 1000) -> Lookups:
    """usage_for_period(deployment, month) for `calls` random deployments, one by one,
    each on a connection already open (as the quote engine's pool would have it)."""
    from sqlalchemy import text

    from arcadia_pipeline.pricing.usage import usage_for_period

    rng = random.Random(7)
    month_end = date(LOOKUP_MONTH.year, LOOKUP_MONTH.month, LOOKUP_DAYS)
    timings = []
    with engine.connect() as connection:
        records = connection.execute(text("SELECT count(*) FROM metering.usage_records")).scalar()
        for n in range(calls + calls // 10):
            deployment = f"dep-{rng.randint(1, deployments):07d}"
            started = time.perf_counter()
            usage = usage_for_period(connection, deployment, LOOKUP_MONTH, month_end)
            elapsed = time.perf_counter() - started
            connection.rollback()
            if not usage:
                raise SystemExit(f"usage_for_period found no usage for {deployment}")
            if n >= calls // 10:  # the first tenth warms the cache and the statement
                timings.append(elapsed * 1000)
    timings.sort()
    return Lookups(
        records=records,
        calls=len(timings),
        p50_ms=statistics.median(timings),
        p99_ms=timings[int(len(timings) * 0.99) - 1],
        fill_seconds=0.0,
    )


@dataclass
class Tick:
    resources: int
    changed: int
    metered_days: int
    stale_days: int
    seconds: float


# 1% of the resources (i % 100 = 7) have the version covering the day corrected: a storage
# kind's size grows by 1 GB, a droplet's status flips; recorded now, as a sync would.
CORRECT_SQL = """
UPDATE arcadia.resource_versions
SET size_gb = size_gb + 1,
    status = CASE WHEN inventory_kind = 'droplet'
                  THEN CASE status WHEN 'active' THEN 'off' ELSE 'active' END
                  ELSE status END,
    recorded_at = clock_timestamp()
WHERE split_part(resource_id, ':', 2)::bigint % 100 = 7
  AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)
"""


def time_corrections_tick(url: str, resources: int, at: datetime, today: date) -> Tick:
    """Correct 1% of the resources at `at`, then time one corrections tick as of `today`
    whose cursor is the moment before the correction."""
    from sqlalchemy import text

    from arcadia_pipeline.defs.daily.corrections import changed_since
    from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource

    warehouse = WarehouseResource(database_url=url)
    source = ArcadiaSourceResource(database_url=url)
    with warehouse.engine.begin() as connection:
        cursor = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
        changed = connection.execute(text(CORRECT_SQL), {"at": at}).rowcount
        metered = connection.execute(
            text("SELECT count(*) FROM metering.inventory_snapshots")
        ).scalar_one()
    with warehouse.engine.connect() as connection:
        connection.execute(text("ANALYZE arcadia.resource_versions"))
        connection.commit()
    started = time.perf_counter()
    now = datetime.combine(today, datetime.min.time(), UTC)  # the tick's clock: `today`
    stale = changed_since(warehouse, source, cursor, now).changed
    seconds = time.perf_counter() - started
    if not stale:
        raise SystemExit("the corrections tick found no stale day: the correction was not seen")
    return Tick(resources, changed, metered, len(stale), seconds)
