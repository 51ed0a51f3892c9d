"""Speed and memory of the metering pipeline at scale, measured side by side in one run.

    scripts/bench.sh [--quick | --scale N] [--no-citus]   (make bench, BENCH_ARGS=--quick)

Needs ARCADIA_DATABASE_URL pointing at a PostgreSQL server, and for the Citus column a Citus
coordinator with its workers in ARCADIA_BENCH_CITUS_URL, ARCADIA_BENCH_CITUS_ADMIN_URL and
ARCADIA_BENCH_CITUS_WORKERS (HOST:PORT,…); scripts/bench.sh starts a throwaway one of each.
On each it creates the database `arcadia_bench` (on Citus on every node), migrates it,
creates the source tables and fills them with a synthetic inventory (one set-based statement
per table), then materialises the five assets and their checks — each configuration in its own
subprocess, so that the peak RSS reported is that configuration's — and prints the figures
with the ratios that matter next to them. Machines are noisy: nothing here is a pass/fail
threshold, the ratios are what to read. The databases are dropped at the end.

Measurements (N = --scale, default 1,000,000 resources; --quick uses 100,000):
  (a) one day at N/10 vs one day at N       seconds ≈ ×10 (linear), peak RSS ≈ ×1 (flat)
                                            at N: its slowest statements (statements.py)
  (b) 7 days as one run vs 7 one-day runs   at N/10: one single-run backfill vs the schedule
  (c) droplet_hours hourly vs daily         at N/10: records and seconds
  (d) the floor (baselines.py)              a hand-written INSERT … SELECT of the day at N
  (e) the seed's way (baselines.py)         one SELECT + one INSERT per resource, extrapolated
  (f) day 31 vs day 1 of a month            at N/10: aggregates + quotes, the month metered
  (g) a year as one run vs 365 × one day    10,000 resources
  (h) usage_for_period p50/p99 (lookups.py) on ≥ 10M records
  (i) a corrections tick (lookups.py)       1% of the resources corrected
  (j), (k) reconciling a day, the weekly sweep (reconcile.py)
  (l) the day at N again, on the shipped catalog and on three tiers per plan and kind with
      minimums and a droplet cap (pricing_terms.py): the aggregates' and quotes' steps and
      their checks, side by side (the caps are computed with the aggregates); (f)'s day 31
      again on that catalog (the caps read the month's records of capped kinds); and the
      projection to the month's end (projected_quotes) against the quotes, on the shipped
      catalog
  Citus: (a)'s day at N/10 and at N on the coordinator and its workers against the single
  node's (a): rows written, seconds per step, µs per inventory version and per usage record
and the targets of each, met or not, in one table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import baselines  # benchmarks/ is the script's folder, first on sys.path
import lookups
import pricing_terms
import reconcile
import statements

BENCH_DATABASE = "arcadia_bench"
METERING_START_DATE = "2025-01-01"
# The benchmark month: every resource has a version from HISTORY_START on (the last one is
# still current), so each covers the whole month; changes happen on days of MONTH.
MONTH = date(2025, 3, 1)
MONTH_DAYS = 31
HISTORY_START = date(2025, 2, 1)
DAY = date(2025, 3, 10)  # the day of (a) and (c): mid-month, so no month-closure work
RANGE = (date(2025, 3, 10), date(2025, 3, 16))  # the 7 days of (b)
MONTH_LAST = date(2025, 3, 31)  # (f): day 1 against day 31, the month metered before it
# (g) a year as one run: 365 days from the first day every resource exists.
YEAR = (date(2025, 2, 1), date(2026, 1, 31))
# (k): the weekly sweep over two months, February and March metered at N/10.
SWEEP = (date(2025, 2, 1), MONTH_LAST)
YEAR_DAY = date(2025, 6, 10)  # its one-day baseline
YEAR_RESOURCES = 10_000
LOOKUP_RECORDS = 10_000_000  # (h) usage_records in the table, at N = 1M (scaled with N)
SEED_SAMPLE = 2_000  # (e) resources walked the seed's way
DEFAULT_SCALE = 1_000_000
QUICK_SCALE = 100_000
RESOURCES_PER_DEPLOYMENT = 20
# Every resource changes (mid-day) on every CHANGE_EVERY-th day of the month: 1/5 = 20% of
# the resources change on each day.
CHANGE_EVERY = 5

# ---- synthetic inventory: one set-based statement per table ------------------------------

DEPLOYMENTS_SQL = """
INSERT INTO arcadia.deployment_versions (deployment_id, name, plan_code, valid_from, valid_to,
                                         recorded_at)
SELECT 'dep-' || lpad(d::text, 7, '0'),
       'Deployment ' || d,
       (ARRAY['starter', 'studio', 'agency'])[1 + d % 3],
       :history_start, NULL, :history_start
FROM generate_series(1, :deployments) AS d
"""

# Resource i: kind by i % 10 (60% droplet, 10% each storage kind and dns_zone), deployment
# (i - 1) / 20 + 1 so each deployment has every kind, unattributed when (i / 10) % 50 = 3
# (2%, spread over the kinds). Its first change day is 1 + i % 5, then every 5th day, at a
# time between 06:00 and 17:59 UTC that varies with the resource and the day. Version k
# (0..changes) runs from the k-th change (version 0 from HISTORY_START) to the next (the
# last one is still current): contiguous, never overlapping. A change flips a droplet's
# status and grows a storage kind's size_gb by 5 GB.
VERSIONS_SQL = """
INSERT INTO arcadia.resource_versions
  (resource_id, deployment_id, inventory_kind, size_gb, status, valid_from, valid_to,
   recorded_at)
WITH r AS (
  SELECT i,
         CASE i % 10 WHEN 6 THEN 'spaces_bucket' WHEN 7 THEN 'snapshot'
                     WHEN 8 THEN 'droplet_backup' WHEN 9 THEN 'dns_zone'
                     ELSE 'droplet' END AS kind,
         CASE WHEN (i / 10) % 50 = 3 THEN NULL
              ELSE 'dep-' || lpad(((i - 1) / :per_deployment + 1)::text, 7, '0') END
           AS deployment_id,
         1 + i % :every AS first_change,
         (:month_days - (1 + i % :every)) / :every + 1 AS changes
  FROM generate_series(1, :resources) AS i
), v AS (
  SELECT r.*, k,
         CASE WHEN k = 0 THEN CAST(:history_start AS timestamptz)
              ELSE CAST(:month_start AS timestamptz)
                   + (r.first_change + :every * (k - 1) - 1) * interval '1 day'
                   + interval '6 hours'
                   + ((r.i * 37 + (r.first_change + :every * (k - 1)) * 11) % 720)
                     * interval '1 minute'
         END AS valid_from,
         CASE WHEN k = r.changes THEN NULL
              ELSE CAST(:month_start AS timestamptz)
                   + (r.first_change + :every * k - 1) * interval '1 day'
                   + interval '6 hours'
                   + ((r.i * 37 + (r.first_change + :every * k) * 11) % 720)
                     * interval '1 minute'
         END AS valid_to
  FROM r CROSS JOIN LATERAL generate_series(0, r.changes) AS k
)
SELECT kind || ':' || i,
       deployment_id,
       kind,
       CASE WHEN kind IN ('spaces_bucket', 'snapshot', 'droplet_backup')
            THEN (10 + i % 490 + 5 * k)::numeric END,
       CASE WHEN kind = 'droplet' AND (k + (i % 4 = 0)::int) % 2 = 1 THEN 'off'
            ELSE 'active' END,
       valid_from,
       valid_to,
       valid_from
FROM v
"""


@dataclass(frozen=True)
class Backend:
    """Where the bench database is made: one PostgreSQL server, or a Citus coordinator and
    its workers (the database then exists on every node, and `db upgrade` distributes it)."""

    name: str  # "single" or "citus", as the report names it
    server_url: str  # the warehouse login on the server (its database part is replaced)
    admin_url: str  # a superuser: CREATE/DROP DATABASE and CHECKPOINT
    workers: tuple[tuple[str, int], ...] = ()  # (host, port) of each Citus worker

    @property
    def url(self) -> str:
        """The bench database, as the warehouse login (which owns it and meters)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.server_url).set(database=BENCH_DATABASE)
        return url.render_as_string(hide_password=False)

    def node_admin_urls(self) -> list[str]:
        """The superuser's URL on each node (the coordinator first), database postgres."""
        from sqlalchemy.engine import make_url

        admin = make_url(self.admin_url).set(database="postgres")
        nodes = [admin, *(admin.set(host=host, port=port) for host, port in self.workers)]
        return [node.render_as_string(hide_password=False) for node in nodes]


def single_backend(server_url: str) -> Backend:
    """The server of ARCADIA_DATABASE_URL; its superuser is ARCADIA_ADMIN_DATABASE_URL
    (scripts/pg-cluster.sh exports it; the pipeline itself runs as the warehouse login)."""
    return Backend("single", server_url, os.getenv("ARCADIA_ADMIN_DATABASE_URL") or server_url)


def citus_backend() -> Backend | None:
    """The Citus cluster scripts/bench.sh started beside the single node (its
    ARCADIA_BENCH_CITUS_* variables), or None when there is none."""
    from arcadia_pipeline.db import citus

    url, admin = os.getenv("ARCADIA_BENCH_CITUS_URL"), os.getenv("ARCADIA_BENCH_CITUS_ADMIN_URL")
    workers = os.getenv("ARCADIA_BENCH_CITUS_WORKERS", "")
    if not (url and admin and workers):
        return None
    return Backend("citus", url, admin, citus.parse_workers(workers.split(",")))


def checkpoint(backend: Backend) -> None:
    """Write dirty pages out on every node so each measurement starts alike (as the
    superuser: CHECKPOINT is per server, and on Citus the workers hold the rows)."""
    from sqlalchemy import text

    for node in backend.node_admin_urls():
        engine = _engine(node, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
        engine.dispose()


def _engine(url: str, **options):
    """The product's engine for `url` (its session settings), with execution options."""
    from arcadia_pipeline.db.engine import make_engine

    return make_engine(url).execution_options(**options)


def create_bench_database(backend: Backend) -> str:
    """Drop and create `arcadia_bench` (on Citus: on every node, attached to the workers);
    migrate it; create the source tables. Its URL, as the warehouse login."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from arcadia_pipeline.db import citus
    from arcadia_pipeline.db.migrate import upgrade
    from arcadia_pipeline.db.source import create_source_tables

    owner = make_url(backend.server_url).username
    if backend.workers:
        citus.create_database(backend.admin_url, BENCH_DATABASE, owner, backend.workers)
    else:
        admin = _engine(backend.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
            connection.execute(text(f'CREATE DATABASE {BENCH_DATABASE} OWNER "{owner}"'))
        admin.dispose()
    url = backend.url
    upgrade(url)
    engine = _engine(url)
    with engine.begin() as connection:
        create_source_tables(connection)
    engine.dispose()
    return url


def drop_bench_database(backend: Backend) -> None:
    from sqlalchemy import text

    from arcadia_pipeline.db import citus

    if backend.workers:
        citus.drop_database(backend.admin_url, BENCH_DATABASE, backend.workers)
        return
    admin = _engine(backend.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
    admin.dispose()


@dataclass
class Inventory:
    resources: int
    deployments: int
    versions: int
    seconds: float


def seed(backend: Backend, resources: int) -> Inventory:
    """Replace the source inventory by `resources` synthetic resources; reset metering."""
    from sqlalchemy import text

    url = backend.url
    deployments = -(-resources // RESOURCES_PER_DEPLOYMENT)
    started = time.perf_counter()
    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE arcadia.resource_versions, arcadia.deployment_versions"))
        connection.execute(
            text(DEPLOYMENTS_SQL),
            {"deployments": deployments, "history_start": HISTORY_START},
        )
        connection.execute(
            text(VERSIONS_SQL),
            {
                "resources": resources,
                "per_deployment": RESOURCES_PER_DEPLOYMENT,
                "every": CHANGE_EVERY,
                "month_days": MONTH_DAYS,
                "month_start": datetime(MONTH.year, MONTH.month, 1, tzinfo=UTC),
                "history_start": datetime(
                    HISTORY_START.year, HISTORY_START.month, HISTORY_START.day, tzinfo=UTC
                ),
            },
        )
    ac = engine.execution_options(isolation_level="AUTOCOMMIT")
    with ac.connect() as connection:
        connection.execute(
            text("VACUUM ANALYZE arcadia.deployment_versions, arcadia.resource_versions")
        )
        versions = connection.execute(
            text("SELECT count(*) FROM arcadia.resource_versions")
        ).scalar_one()
    engine.dispose()
    reset_metering(backend)
    return Inventory(resources, deployments, versions, time.perf_counter() - started)


def flow_size() -> str:
    """What one day's run materialises: "5 assets + 7 checks" (flow.DAILY_FLOW)."""
    from arcadia_pipeline.flow import DAILY_FLOW

    checks = sum(len(step.checks) for step in DAILY_FLOW.steps)
    return f"{len(DAILY_FLOW.steps)} assets + {checks} checks"


def reset_metering(backend: Backend) -> None:
    """Every measurement starts from the same state: no metering rows, daily granularity."""
    from sqlalchemy import text

    from arcadia_pipeline.flow import DAILY_FLOW

    engine = _engine(backend.url)
    with engine.begin() as connection:
        tables = ", ".join(table.fullname for table in DAILY_FLOW.tables)
        connection.execute(text(f"TRUNCATE {tables}"))
        connection.execute(text("UPDATE metering.metering_config SET granularity = 'day'"))
    engine.dispose()
    checkpoint(backend)


def set_granularity(url: str, billing_kind: str, granularity: str) -> None:
    from sqlalchemy import text

    engine = _engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE metering.metering_config SET granularity = :g WHERE billing_kind = :k"),
            {"g": granularity, "k": billing_kind},
        )
    engine.dispose()


# ---- one measurement, in a child process ------------------------------------------------


def run_measurement(spec: dict) -> dict:
    """The child: one materialisation of the assets + checks over [first, last], one run."""
    from dagster import DagsterEventType, DagsterInstance
    from sqlalchemy import text

    from arcadia_pipeline.definitions import defs as load_definitions
    from arcadia_pipeline.orchestration.partitions import range_tags
    from arcadia_pipeline.settings import warehouse_url

    first, last = date.fromisoformat(spec["first"]), date.fromisoformat(spec["last"])
    instance = DagsterInstance.ephemeral()
    # Only the runs whose statements are reported are timed: the others' figures stay
    # those of the bare run.
    timer = statements.StatementTimer()
    if spec["timed"]:
        timer.install()
    started = time.perf_counter()
    # The daily job (the five assets and their checks), one run for [first, last], as a
    # single-run range backfill launches it.
    result = (
        load_definitions()
        .resolve_job_def("daily_metering_job")
        .execute_in_process(instance=instance, tags=range_tags(first, last))
    )
    seconds = time.perf_counter() - started
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    failed_checks = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    # Seconds per step (each asset and each check is a step of the run).
    steps: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    started_at: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started_at[entry.step_key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            steps[entry.step_key] = entry.timestamp - started_at[entry.step_key]
            spans[entry.step_key] = (started_at[entry.step_key], entry.timestamp)
    slowest, in_statements = timer.by_statement(spans), timer.per_step(spans)
    engine = _engine(warehouse_url())
    with engine.connect() as connection:
        records = connection.execute(
            text(
                "SELECT count(*) FROM metering.usage_records "
                "WHERE period_start >= :d0 AND period_start < :d1"
            ),
            {
                "d0": datetime(first.year, first.month, first.day, tzinfo=UTC),
                "d1": datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
            },
        ).scalar_one()
    engine.dispose()
    return {
        "seconds": seconds,
        "max_rss_mb": max_rss_mb,
        "records": records,
        "success": result.success,
        "failed_checks": failed_checks,
        "steps": steps,
        "statements": slowest,
        "in_statements": in_statements,
    }


@dataclass
class Figures:
    seconds: float
    max_rss_mb: float
    records: int
    wall_seconds: float = 0.0  # the whole child process: interpreter, imports, run
    runs: int = 1
    steps: dict[str, float] = field(default_factory=dict)
    # Rows the run left for its day, per WRITTEN label, and its Σ qty / Σ quote totals
    # (measure_day only): what the per-row costs are per, and what both backends must agree on.
    written: dict[str, int | str] = field(default_factory=dict)
    # The run's slowest statements and each step's seconds in SQL (benchmarks/statements.py).
    statements: list[dict] = field(default_factory=list)
    in_statements: dict[str, float] = field(default_factory=dict)


def measure(url: str, first: date, last: date, timed: bool = False) -> Figures:
    """Run one materialisation of [first, last] in a fresh interpreter; its figures, with
    its statements timed (benchmarks/statements.py) when `timed`."""
    env = dict(os.environ)
    env["ARCADIA_DATABASE_URL"] = url
    env.pop("ARCADIA_SOURCE_DATABASE_URL", None)  # the source is the bench database itself
    env["ARCADIA_METERING_START_DATE"] = METERING_START_DATE
    spec = {"first": first.isoformat(), "last": last.isoformat(), "timed": timed}
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--measure", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall_seconds = time.perf_counter() - started
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        sys.stderr.write(child.stderr[-8000:])
        raise SystemExit(f"measurement {first}..{last} failed (exit {child.returncode})")
    out = json.loads(lines[-1])
    if not out["success"] or out["failed_checks"]:
        sys.stderr.write(child.stderr[-8000:])
        raise SystemExit(
            f"measurement {first}..{last}: run failed or checks failed: {out['failed_checks']}"
        )
    return Figures(
        out["seconds"],
        out["max_rss_mb"],
        out["records"],
        wall_seconds,
        steps=out["steps"],
        statements=out["statements"],
        in_statements=out["in_statements"],
    )


# What a day's run wrote, per table, with the condition that selects the day's rows.
WRITTEN = (
    ("inventory versions", "metering.resource_inventory", "day = :day"),
    ("inventory deployments", "metering.inventory_deployments", "day = :day"),
    ("usage records", "metering.usage_records", "period_start >= :d0 AND period_start < :d1"),
    ("aggregates", "metering.usage_period_aggregates", "as_of_date = :day"),
    ("quotes", "metering.deployment_quotes", "as_of_date = :day"),
    ("quote lines", "metering.deployment_quote_lines", "as_of_date = :day"),
)
# The day's figures themselves, as text (exact numerics): equal on both backends.
TOTALS = (
    (
        "Σ qty",
        "SELECT sum(qty) FROM metering.usage_records "
        "WHERE period_start >= :d0 AND period_start < :d1",
    ),
    (
        "Σ quote totals",
        "SELECT sum(total_usd) FROM metering.deployment_quotes WHERE as_of_date = :day",
    ),
)


def written_rows(url: str, day: date) -> dict[str, int | str]:
    """The rows the day's run left, per WRITTEN label, and its TOTALS (read after the run,
    outside the measuring process, so that its seconds are as before)."""
    from sqlalchemy import text

    d0 = datetime(day.year, day.month, day.day, tzinfo=UTC)
    bounds = {"day": day, "d0": d0, "d1": d0 + timedelta(days=1)}
    engine = _engine(url)
    with engine.connect() as connection:
        rows: dict[str, int | str] = {
            label: connection.execute(
                text(f"SELECT count(*) FROM {table} WHERE {where}"), bounds
            ).scalar_one()
            for label, table, where in WRITTEN
        }
        for label, query in TOTALS:
            rows[label] = str(connection.execute(text(query), bounds).scalar_one())
    engine.dispose()
    return rows


def measure_day(url: str) -> Figures:
    """(a): the one day DAY, one run in its own process, with the rows it wrote and its
    statements timed."""
    figures = measure(url, DAY, DAY, timed=True)
    figures.written = written_rows(url, DAY)
    return figures


@dataclass
class CitusDay:
    """The Citus column: (a)'s day at N/10 and at N on the coordinator and its workers."""

    small: Figures
    big: Figures
    small_inventory: Inventory
    big_inventory: Inventory
    workers: int
    shards: int  # of each distributed table (ARCADIA_CITUS_SHARD_COUNT of the cluster)

    def same_as(self, single_small: Figures, single_big: Figures) -> bool:
        """Whether both days wrote the single node's rows, per table, and its totals."""
        return single_small.written == self.small.written and single_big.written == self.big.written


def measure_citus_day(backend: Backend, scale: int, step) -> CitusDay:
    """(a)'s day at N/10 and at N on `backend` (a Citus cluster): the same seed and the same
    measuring process as the single node's, in a bench database made on every node."""
    from sqlalchemy import text

    url = create_bench_database(backend)
    try:
        engine = _engine(url)
        with engine.connect() as connection:
            shards = connection.execute(
                text(
                    "SELECT count(*) FROM pg_dist_shard "
                    "WHERE logicalrelid = 'metering.usage_records'::regclass"
                )
            ).scalar_one()
        engine.dispose()
        step(f"  Citus: seeding N/10 = {scale // 10:,} resources; one day")
        small_inventory = seed(backend, scale // 10)
        small = measure_day(url)
        step(f"  Citus: seeding N = {scale:,} resources; one day")
        big_inventory = seed(backend, scale)
        big = measure_day(url)
    finally:
        drop_bench_database(backend)
    return CitusDay(small, big, small_inventory, big_inventory, len(backend.workers), shards)


def measure_days_one_by_one(url: str, first: date, last: date) -> Figures:
    """One run per day (what the daily schedule does), each in its own process."""
    runs = []
    day = first
    while day <= last:
        runs.append(measure(url, day, day))
        day += timedelta(days=1)
    steps: dict[str, float] = {}
    for run in runs:
        for key, seconds in run.steps.items():
            steps[key] = steps.get(key, 0.0) + seconds
    return Figures(
        seconds=sum(r.seconds for r in runs),
        max_rss_mb=max(r.max_rss_mb for r in runs),
        records=sum(r.records for r in runs),
        wall_seconds=sum(r.wall_seconds for r in runs),
        runs=len(runs),
        steps=steps,
    )


# ---- the report ------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"×{a / b:.2f}" if b else "n/a"


def _step_table(title: str, label_a: str, a: Figures, label_b: str, b: Figures) -> list[str]:
    """Seconds per step of two measurements side by side, biggest of the second first."""
    keys = sorted(set(a.steps) | set(b.steps), key=lambda k: -b.steps.get(k, 0.0))
    width = max([len(k) for k in keys] + [20]) + 2
    total_b = sum(b.steps.values()) or 1.0
    lines = [
        "",
        f"{title}: seconds per step",
        f"{'step':<{width}}{label_a:>9}{label_b:>9}{'ratio':>9}   share of {label_b}",
        "-" * (width + 45),
    ]
    for key in keys:
        sa, sb = a.steps.get(key, 0.0), b.steps.get(key, 0.0)
        lines.append(f"{key:<{width}}{sa:>9.1f}{sb:>9.1f}{_ratio(sb, sa):>9}{sb / total_b:>12.0%}")
    return lines


def _revision() -> str:
    """The product's git commit, "+changes" when arcadia_pipeline/ differs from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "arcadia_pipeline"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" +uncommitted changes in arcadia_pipeline/" if dirty else "")


def report(
    command: str,
    scale: int,
    small: Inventory,
    big: Inventory,
    results: dict[str, Figures],
    total_seconds: float,
    revision: str,
) -> str:
    n, n10 = f"{scale:,}", f"{scale // 10:,}"
    rows = [
        ("(a) one day, N/10 = " + n10, results["day_small"]),
        ("(a) one day, N = " + n, results["day_big"]),
        ("(b) 7 days as ONE run, N/10", results["range_one_run"]),
        ("(b) 7 one-day runs, N/10", results["range_seven_runs"]),
        ("(c) droplet_hours daily, N/10", results["daily"]),
        ("(c) droplet_hours hourly, N/10", results["hourly"]),
        ("(f) day 1 of the month, N/10", results["month_day_1"]),
        ("(f) days 2..30 as ONE run, N/10", results["month_days_2_30"]),
        ("(f) day 31, N/10", results["month_day_31"]),
        ("(k) February as ONE run, N/10", results["february"]),
        ("(g) one day, year inventory", results["year_day"]),
        ("(g) 365 days as ONE run", results["year"]),
    ]
    ratios = [
        (
            "(a) N / (N/10)",
            results["day_big"],
            results["day_small"],
            "seconds ≈ ×10 (linear), RSS ≈ ×1 (flat)",
        ),
        (
            "(b) one run / 7 runs",
            results["range_one_run"],
            results["range_seven_runs"],
            "seconds ≤ ×1, records ×1",
        ),
        (
            "(c) hourly / daily",
            results["hourly"],
            results["daily"],
            "records ≈ ×(1 + 23 × droplet share)",
        ),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [
        "arcadia_pipeline metering benchmark",
        f"command: {command}",
        f"product: commit {revision}",
        f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M} UTC   host: {platform.node()}, "
        f"{os.cpu_count()} CPU(s), Python {platform.python_version()}",
        f"inventory N/10: {small.resources:,} resources, {small.deployments:,} deployments, "
        f"{small.versions:,} versions (seeded in {small.seconds:.1f} s)",
        f"inventory N:    {big.resources:,} resources, {big.deployments:,} deployments, "
        f"{big.versions:,} versions (seeded in {big.seconds:.1f} s)",
        f"days: (a),(c) {DAY}; (b) {RANGE[0]}..{RANGE[1]}. Seconds = the materialisation "
        f"({flow_size()}) inside the run's process;",
        "         wall s = that process from start to exit (interpreter, Dagster imports, run); "
        "RSS = its peak (ru_maxrss).",
        "",
        f"{'measurement':<{width}}{'runs':>5}{'seconds':>10}{'wall s':>9}{'peak RSS MB':>13}"
        f"{'records':>13}",
        "-" * (width + 50),
    ]
    for label, f in rows:
        lines.append(
            f"{label:<{width}}{f.runs:>5}{f.seconds:>10.1f}{f.wall_seconds:>9.1f}"
            f"{f.max_rss_mb:>13.0f}{f.records:>13,}"
        )
    lines += [
        "",
        f"{'ratio':<{width}}{'seconds':>10}{'wall s':>9}{'peak RSS':>10}{'records':>10}   expected",
        "-" * (width + 75),
    ]
    for label, a, b, expected in ratios:
        lines.append(
            f"{label:<{width}}{_ratio(a.seconds, b.seconds):>10}"
            f"{_ratio(a.wall_seconds, b.wall_seconds):>9}"
            f"{_ratio(a.max_rss_mb, b.max_rss_mb):>10}{_ratio(a.records, b.records):>10}"
            f"   {expected}"
        )
    # Where the time goes, per step (each asset and each check is a step of a run).
    lines += _step_table("(a) one day", "N/10", results["day_small"], "N", results["day_big"])
    lines += _step_table(
        "(b) 7 days, N/10", "1 run", results["range_one_run"], "7 runs", results["range_seven_runs"]
    )
    lines += _step_table(
        "(c) one day, N/10", "daily", results["daily"], "hourly", results["hourly"]
    )
    lines += _step_table(
        "(f) the month, N/10", "day 1", results["month_day_1"], "day 31", results["month_day_31"]
    )
    lines += _step_table(
        "(l) the day again at N", "shipped", results["day_big_flat"], "tiered",
        results["day_big_tiered"],
    )  # fmt: skip
    lines += ["", f"whole benchmark (seeding included): {total_seconds / 60:.1f} min"]
    return "\n".join(lines)


def _us(seconds: float, rows) -> str:
    return f"{seconds / rows * 1e6:.2f}" if rows else "n/a"


def citus_report(day: CitusDay, single_small: Figures, single_big: Figures) -> str:
    """The Citus column: (a)'s day on the cluster beside the single node's (a), per step.
    No speed target: on one machine the workers share its cores with the coordinator; what
    to read is each step's ratio (what pushes down, what meets the coordinator) and what
    each row costs."""
    pairs = (("N/10", single_small, day.small), ("N", single_big, day.big))
    width = 58
    lines = [
        "",
        f"Citus: (a)'s day {DAY}, coordinator + {day.workers} workers ({day.shards} shards "
        "per distributed table), against single node (the (a) runs above)",
        f"inventory N/10: {day.small_inventory.versions:,} versions (seeded in "
        f"{day.small_inventory.seconds:.1f} s); N: {day.big_inventory.versions:,} versions "
        f"(seeded in {day.big_inventory.seconds:.1f} s)",
        "",
        f"{'rows written':<{width}}{'N/10 single':>14}{'N/10 citus':>14}{'N single':>14}"
        f"{'N citus':>14}",
        "-" * (width + 56),
    ]
    for label in [label for label, _, _ in WRITTEN] + [label for label, _ in TOTALS]:
        cells = "".join(
            f"{_cell(f.written.get(label)):>14}"
            for _, single, citus in pairs
            for f in (single, citus)
        )
        lines.append(f"{label:<{width}}{cells}")
    same = day.same_as(single_small, single_big)
    lines.append(f"the same rows and totals on both backends: {'yes' if same else 'NO'}")
    steps = sorted(
        set(single_big.steps) | set(day.big.steps), key=lambda k: -day.big.steps.get(k, 0.0)
    )
    lines += [
        "",
        f"{'seconds per step':<{width}}{'N/10 single':>12}{'citus':>8}{'ratio':>9}"
        f"{'N single':>11}{'citus':>8}{'ratio':>9}",
        "-" * (width + 57),
    ]
    rows = [(key, lambda f, key=key: f.steps.get(key, 0.0)) for key in steps] + [
        (f"whole run ({flow_size()})", lambda f: f.seconds),
        ("wall s (the measuring process)", lambda f: f.wall_seconds),
        ("peak RSS MB", lambda f: f.max_rss_mb),
    ]
    for label, value in rows:
        cells = "".join(
            f"{value(single):>{12 if size == 'N/10' else 11}.1f}{value(citus):>8.1f}"
            f"{_ratio(value(citus), value(single)):>9}"
            for size, single, citus in pairs
        )
        lines.append(f"{label:<{width}}{cells}")
    versions = "inventory versions"
    lines += [
        "",
        f"per-row cost at N, µs: step seconds ÷ the day's inventory versions "
        f"({single_big.written.get(versions, 0):,}) and ÷ its usage records "
        f"({single_big.records:,})",
        f"{'step':<{width}}{'µs/version single':>19}{'citus':>8}{'µs/record single':>19}"
        f"{'citus':>8}",
        "-" * (width + 54),
    ]
    for label, value in rows[:-2]:
        lines.append(
            f"{label:<{width}}"
            f"{_us(value(single_big), single_big.written.get(versions)):>19}"
            f"{_us(value(day.big), day.big.written.get(versions)):>8}"
            f"{_us(value(single_big), single_big.records):>19}"
            f"{_us(value(day.big), day.big.records):>8}"
        )
    return "\n".join(lines)


def _cell(value) -> str:
    """A count, or a total to the cent (compared exactly, shown rounded)."""
    from decimal import Decimal, InvalidOperation

    if isinstance(value, int):
        return f"{value:,}"
    try:
        return f"{Decimal(value):,.2f}"
    except (InvalidOperation, TypeError):
        return str(value)


def _billing_seconds(figures: Figures) -> float:
    return sum(figures.steps.get(k, 0.0) for k in ("usage_period_aggregates", "deployment_quotes"))


def targets_report(
    results: dict[str, Figures],
    extra: dict,
    year_inventory: Inventory,
    citus_day: CitusDay | None = None,
) -> str:
    """Each target of the issue: the figures it compares, the ratio, the target, met or not."""
    day, floor, seeds = results["day_big"], extra["floor"], extra["seeds_way"]
    usage = day.steps.get("usage_records", 0.0)
    # What the seed's walk produced: records from the source (our snapshot, then records).
    to_records = usage + day.steps.get("resource_inventory", 0.0)
    day1 = _billing_seconds(results["month_day_1"])
    day31 = _billing_seconds(results["month_day_31"])
    one_day, year = results["year_day"], results["year"]
    start_up = one_day.wall_seconds - one_day.seconds
    year_allowed = 1.2 * 365 * one_day.seconds + start_up
    rss = [f.max_rss_mb for f in results.values()]
    ticks = [extra["tick_small"], extra["tick_big"]]
    look = extra["lookups"]
    reconciled, sweep = extra["reconcile_day"], extra["sweep"]
    # What metering the sweep's days cost: February as one run, March day by day in (f).
    march = sum(results[k].seconds for k in ("month_day_1", "month_days_2_30", "month_day_31"))
    swept_metering = results["february"].seconds + march

    # (l): the day metered again on each catalog; the steps that price (the aggregates, which
    # cap, and the quotes) with their checks; the projection against the quotes.
    def pricing_seconds(key: str, *steps: str) -> float:
        return sum(v for k, v in results[key].steps.items() if k.startswith(steps))

    priced = ("usage_period_aggregates", "deployment_quotes")
    flat_quotes, tiered_quotes = (
        pricing_seconds(key, *priced) for key in ("day_big_flat", "day_big_tiered")
    )
    last_flat, last_tiered = (
        pricing_seconds(key, *priced) for key in ("month_day_31", "month_day_31_tiered")
    )
    quotes_only = pricing_seconds("day_big_flat", "deployment_quotes")
    projection = pricing_seconds("day_big_flat", "projected_quotes")

    def row(label, figures, ratio, target, met):
        return f"{label:<44}{figures:<44}{ratio:>10}  {target:<22}{'met' if met else 'NOT MET'}"

    lines = [
        "",
        f"(d) floor: {floor.rows:,} rows in {floor.seconds:.1f} s; the same records as the "
        f"pipeline's day: {'yes' if floor.equal_to_pipeline else 'NO'}",
        f"    usage_records of the day: {extra['bytes_per_record']:.0f} bytes per record "
        "(heap + indexes of its month partition)",
        f"(e) seed's way: {seeds.sample:,} resources in {seeds.seconds:.1f} s "
        f"({seeds.per_resource_ms:.2f} ms each) -> {seeds.extrapolated_seconds / 3600:.1f} h "
        f"for the day: {_ratio(seeds.extrapolated_seconds, floor.seconds)} the floor, "
        f"{_ratio(seeds.extrapolated_seconds, usage)} usage_records alone (fsync is off here: "
        "its commits cost nothing)",
        f"(g) a year of {year_inventory.resources:,} resources: one run of 365 days "
        f"{year.seconds:.0f} s ({year.records:,} records); one day {one_day.seconds:.2f} s "
        f"in its run, start-up {start_up:.1f} s",
        f"(h) usage_for_period on {look.records:,} records: {look.calls} calls, "
        f"p50 {look.p50_ms:.2f} ms, p99 {look.p99_ms:.2f} ms (records added in "
        f"{look.fill_seconds:.0f} s)",
    ]
    lines += [
        f"(i) corrections tick at {t.resources:,} resources, {t.metered_days} metered day(s), "
        f"{t.changed:,} versions corrected: {t.stale_days} stale day(s) found in {t.seconds:.1f} s"
        for t in ticks
    ]
    lines += [
        f"(j) reconciling {reconciled.metered_days} day at N: {reconciled.seconds:.1f} s "
        f"({reconciled.differing_days} differing)",
        f"(k) weekly sweep of {sweep.metered_days} days at N/10: {sweep.seconds:.1f} s "
        f"({sweep.differing_days} differing after (i)'s corrections); metering them took "
        f"{swept_metering:.0f} s",
    ]
    lines += [
        "",
        f"{'target':<44}{'figures':<44}{'ratio':>10}  {'target':<22}",
        "-" * 128,
        row("usage_records / floor (N)", f"{usage:.1f} s / {floor.seconds:.1f} s",
            _ratio(usage, floor.seconds), "≤ ×1.3", usage <= 1.3 * floor.seconds),
        row(f"whole day / floor (N, {flow_size()})", f"{day.seconds:.1f} s / "
            f"{floor.seconds:.1f} s", _ratio(day.seconds, floor.seconds), "≤ ×3",
            day.seconds <= 3 * floor.seconds),
        row("seed's way / source to records (N)", f"{seeds.extrapolated_seconds:.0f} s / "
            f"{to_records:.1f} s", _ratio(seeds.extrapolated_seconds, to_records), "≥ ×100",
            seeds.extrapolated_seconds >= 100 * to_records),
        row("seed's way / whole day (N)", f"{seeds.extrapolated_seconds:.0f} s / "
            f"{day.seconds:.1f} s", _ratio(seeds.extrapolated_seconds, day.seconds), "≥ ×100",
            seeds.extrapolated_seconds >= 100 * day.seconds),
        row("day 31 / day 1 (aggregates + quotes, N/10)", f"{day31:.2f} s / {day1:.2f} s",
            _ratio(day31, day1), "≤ ×1.2", day31 <= 1.2 * day1),
        row("a year / (365 × one day) + start-up", f"{year.seconds:.0f} s / "
            f"{365 * one_day.seconds:.0f} s + {start_up:.0f} s",
            _ratio(year.seconds - start_up, 365 * one_day.seconds), "≤ ×1.2 (+ start-up)",
            year.seconds <= year_allowed),
        row("usage_for_period p50 (≥ 10M records at N)", f"p50 {look.p50_ms:.2f} ms, "
            f"p99 {look.p99_ms:.2f} ms", "", "≤ 5 ms p50", look.p50_ms <= 5),
        row("peak RSS, every run", f"{min(rss):.0f}..{max(rss):.0f} MB",
            _ratio(max(rss), min(rss)), "flat, ≤ 400 MB", max(rss) <= 400),
        row("corrections tick", " / ".join(f"{t.seconds:.1f} s" for t in ticks), "",
            "≤ 30 s", all(t.seconds <= 30 for t in ticks)),
        row("reconcile a day / meter it (N)", f"{reconciled.seconds:.1f} s / {day.seconds:.1f} s",
            _ratio(reconciled.seconds, day.seconds), "≤ ×0.25",
            reconciled.seconds <= 0.25 * day.seconds),
        row("quotes on caps + tiers + minimums / shipped", f"{tiered_quotes:.1f} s / "
            f"{flat_quotes:.1f} s", _ratio(tiered_quotes, flat_quotes), "≤ ×1.5",
            tiered_quotes <= 1.5 * flat_quotes),
        row("the same on day 31, the month metered (N/10)", f"{last_tiered:.1f} s / "
            f"{last_flat:.1f} s", _ratio(last_tiered, last_flat), "≤ ×1.5",
            last_tiered <= 1.5 * last_flat),
        row("projected_quotes / deployment_quotes (N)", f"{projection:.1f} s / "
            f"{quotes_only:.1f} s", _ratio(projection, quotes_only), "≤ ×1.0",
            projection <= quotes_only),
        row("weekly sweep / metering its days (N/10)", f"{sweep.seconds:.0f} s / "
            f"{swept_metering:.0f} s", _ratio(sweep.seconds, swept_metering), "(reported)", True),
    ]  # fmt: skip
    if citus_day is not None:
        # No speed target on one machine (the workers share its cores): the same figures, and
        # the whole day's ratio as it is.
        same = citus_day.same_as(results["day_small"], day)
        lines += [
            row("Citus day = single-node day (N/10, N)", "rows per table, Σ qty, Σ quote totals",
                "", "equal", same),
            row("Citus / single, whole day (N)", f"{citus_day.big.seconds:.1f} s / "
                f"{day.seconds:.1f} s", _ratio(citus_day.big.seconds, day.seconds),
                "(reported)", True),
        ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--scale",
        type=int,
        default=DEFAULT_SCALE,
        help=f"resources of the big case (default {DEFAULT_SCALE:,}); the others use 1/10",
    )
    size.add_argument("--quick", action="store_true", help=f"smoke run: --scale {QUICK_SCALE:,}")
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    parser.add_argument(
        "--no-citus",
        action="store_true",
        help="skip the Citus column (scripts/bench.sh then starts no Citus cluster)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the child's spec
    args = parser.parse_args(argv)

    if args.measure:
        print(json.dumps(run_measurement(json.loads(args.measure))))
        return 0

    server_url = os.getenv("ARCADIA_DATABASE_URL")
    if not server_url:
        raise SystemExit("ARCADIA_DATABASE_URL is not set: run it with scripts/bench.sh")
    scale = QUICK_SCALE if args.quick else args.scale
    if scale < 100:
        raise SystemExit("--scale must be at least 100")
    command = os.getenv("ARCADIA_BENCH_COMMAND") or shlex.join(
        ["python", "benchmarks/metering_scale.py", *(argv if argv is not None else sys.argv[1:])]
    )

    def step(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    single = single_backend(server_url)
    citus = None if args.no_citus else citus_backend()
    if not args.no_citus and citus is None:
        raise SystemExit(
            "no Citus cluster (ARCADIA_BENCH_CITUS_URL, _ADMIN_URL, _WORKERS): run it with "
            "scripts/bench.sh, or pass --no-citus"
        )
    revision = _revision()
    started = time.perf_counter()
    # The Citus column first: a statement Citus refuses stops the run before the long part.
    citus_day = None
    if citus is not None:
        step(f"Citus: one day at N/10 and at N on the coordinator + {len(citus.workers)} workers")
        citus_day = measure_citus_day(citus, scale, step)
    url = create_bench_database(single)
    results: dict[str, Figures] = {}
    extra: dict = {}
    year_resources = YEAR_RESOURCES if scale >= DEFAULT_SCALE else max(scale // 100, 100)
    try:
        step(f"seeding N/10 = {scale // 10:,} resources")
        small = seed(single, scale // 10)
        step(f"  {small.versions:,} versions in {small.seconds:.1f} s; (a) one day at N/10")
        results["day_small"] = measure_day(url)
        reset_metering(single)
        step("(b) 7 days as one run at N/10")
        results["range_one_run"] = measure(url, *RANGE)
        reset_metering(single)
        step("(b) 7 one-day runs at N/10")
        results["range_seven_runs"] = measure_days_one_by_one(url, *RANGE)
        reset_metering(single)
        step("(c) droplet_hours daily at N/10")
        results["daily"] = measure(url, DAY, DAY)
        reset_metering(single)
        set_granularity(url, "droplet_hours", "hour")
        step("(c) droplet_hours hourly at N/10")
        results["hourly"] = measure(url, DAY, DAY)
        reset_metering(single)
        step("(f) day 1, days 2..30 as one run, day 31 at N/10")
        results["month_day_1"] = measure(url, MONTH, MONTH)
        results["month_days_2_30"] = measure(
            url, MONTH + timedelta(days=1), MONTH_LAST - timedelta(days=1)
        )
        results["month_day_31"] = measure(url, MONTH_LAST, MONTH_LAST)
        # (l) on the month's last day, the caps' month to date per resource built day by day:
        # the catalog's change makes the month stale, so day 30 is metered again on it first
        # (summed from the month's records), and day 31 builds on it as every day of a month
        # metered on that catalog would.
        with pricing_terms.tiered_catalog(_engine(url), MONTH):
            measure(url, MONTH_LAST - timedelta(days=1), MONTH_LAST - timedelta(days=1))
            results["month_day_31_tiered"] = measure(url, MONTH_LAST, MONTH_LAST)
        measure(url, MONTH_LAST, MONTH_LAST)  # the day back on the shipped catalog, for (i)
        step("(i) corrections tick at N/10, the month metered, 1% corrected")
        extra["tick_small"] = lookups.time_corrections_tick(
            url, small.resources, datetime(2025, 3, 15, 12, tzinfo=UTC), MONTH_LAST + timedelta(1)
        )
        step("(k) February as one run at N/10, then the sweep over February and March")
        results["february"] = measure(url, SWEEP[0], MONTH - timedelta(days=1))
        extra["sweep"] = reconcile.time_reconciliation(url, *SWEEP)
        step(f"seeding {year_resources:,} resources; (g) one day, then a year as one run")
        year_inventory = seed(single, year_resources)
        results["year_day"] = measure(url, YEAR_DAY, YEAR_DAY)
        reset_metering(single)
        results["year"] = measure(url, *YEAR)
        step(f"seeding N = {scale:,} resources")
        big = seed(single, scale)
        step(f"  {big.versions:,} versions in {big.seconds:.1f} s; (a) one day at N")
        results["day_big"] = measure_day(url)
        step("(l) the day at N again: on the shipped catalog, then on caps, tiers and minimums")
        results["day_big_flat"] = measure(url, DAY, DAY)
        with pricing_terms.tiered_catalog(_engine(url), MONTH):
            results["day_big_tiered"] = measure(url, DAY, DAY)
        step("(j) reconciling the day at N")
        extra["reconcile_day"] = reconcile.time_reconciliation(url, DAY, DAY)
        engine = _engine(url)
        extra["bytes_per_record"] = baselines.bytes_per_record(engine, DAY)
        step("(d) the floor: one hand-written INSERT … SELECT of the day")
        extra["floor"] = baselines.measure_floor(engine, DAY, lambda: checkpoint(single))
        step(f"(e) the seed's way on {SEED_SAMPLE:,} resources")
        extra["seeds_way"] = baselines.measure_seeds_way(engine, DAY, big.resources, SEED_SAMPLE)
        step("(i) corrections tick at N, the day metered, 1% corrected")
        extra["tick_big"] = lookups.time_corrections_tick(
            url, big.resources, datetime(2025, 3, 10, 12, tzinfo=UTC), DAY + timedelta(1)
        )
        records = max(LOOKUP_RECORDS * scale // DEFAULT_SCALE, 100_000)
        step(f"(h) {records:,} more records, then usage_for_period p50/p99")
        fill = lookups.fill_records(engine, records, RESOURCES_PER_DEPLOYMENT)
        extra["lookups"] = lookups.time_usage_for_period(
            engine, -(-records // lookups.LOOKUP_DAYS // RESOURCES_PER_DEPLOYMENT)
        )
        extra["lookups"].fill_seconds = fill
        engine.dispose()
    finally:
        if args.keep_database:
            step(f"kept database {BENCH_DATABASE}")
        else:
            drop_bench_database(single)
    print()
    print(report(command, scale, small, big, results, time.perf_counter() - started, revision))
    day = results["day_big"]
    print(
        "\n".join(
            statements.report(
                f"(a) one day, N = {scale:,}",
                day.statements,
                day.steps,
                day.seconds,
                day.in_statements,
            )
        )
    )
    if citus_day is not None:
        print(citus_report(citus_day, results["day_small"], results["day_big"]))
    else:
        print("\nCitus: not measured (--no-citus)")
    print(targets_report(results, extra, year_inventory, citus_day))
    return 0


if __name__ == "__main__":
    sys.exit(main())
