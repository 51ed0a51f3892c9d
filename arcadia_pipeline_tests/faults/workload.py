"""The workload the fault-injection tests break: a small demo inventory metered over a range
that crosses a month boundary, run in child processes that can be killed, raced and cut off
from the database like real run workers.

Each asset's content per day is reduced to a checksum without lineage (run ids, snapshot
ids, timestamps), so a day can be compared with the same day of a clean run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, text

from arcadia_pipeline.demo.seed import seed_demo
from arcadia_pipeline.utc import iter_days

REPO = Path(__file__).resolve().parents[2]
FIRST, LAST = date(2025, 3, 27), date(2025, 4, 2)
DAYS = list(iter_days(FIRST, LAST))

# Per asset: its content of one day, lineage left out, in a stable order.
CONTENT = {
    "resource_inventory": (
        "SELECT day, resource_id, deployment_id, inventory_kind, billing_kind, accrual, size_gb, "
        "status, starts_at, ends_at FROM metering.resource_inventory WHERE day = :day"
    ),
    "usage_records": (
        "SELECT deployment_id, resource_id, resource_kind, period_start, granularity, qty "
        "FROM metering.usage_records WHERE period_start >= CAST(:day AS date) "
        "AND period_start < CAST(:day AS date) + 1"
    ),
    "usage_period_aggregates": (
        "SELECT deployment_id, billing_kind, period_start, qty, records "
        "FROM metering.usage_period_aggregates WHERE as_of_date = :day"
    ),
    **{
        quotes: (
            "SELECT q.deployment_id, q.plan_code, q.base_usd, q.overage_usd, q.total_usd, "
            f"l.billing_kind, l.usage, l.overage_usd FROM metering.{quotes} q "
            f"LEFT JOIN metering.{lines} l USING (as_of_date, deployment_id) "
            "WHERE q.as_of_date = :day"
        )
        for quotes, lines in (
            ("deployment_quotes", "deployment_quote_lines"),
            ("projected_quotes", "projected_quote_lines"),
        )
    },
}


def seed(engine: Engine) -> None:
    with engine.begin() as connection:
        seed_demo(connection, deployments=30, days=50, seed=3, end_date=date(2025, 4, 3))


def checksums(engine: Engine) -> dict[tuple[str, date], str]:
    """md5 of each (asset, day)'s content; '' for a day without rows."""
    sums = {}
    with engine.connect() as connection:
        for asset, query in CONTENT.items():
            for day in DAYS:
                sums[asset, day] = connection.execute(
                    text(
                        f"SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                        f"FROM ({query}) t"
                    ),
                    {"day": day},
                ).scalar_one()
    return sums


def toggle_variant(engine: Engine, variant: int) -> None:
    """Two versions of the source that meter differently on every day of the range: variant
    1 adds a bucket from 2025-03-01 on to the first deployment that exists all that time (a
    version covers the 1st, and each version ending later is followed at once by the next),
    variant 0 removes it."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM arcadia.resource_versions WHERE resource_id = 'x'"))
        if variant:
            added = connection.execute(text(ADD_BUCKET_X)).rowcount
            assert added == 1, "no deployment of the seed exists from 2025-03-01 on"


ADD_BUCKET_X = """
INSERT INTO arcadia.resource_versions (resource_id, deployment_id, inventory_kind, size_gb,
                                       status, valid_from)
SELECT 'x', min(d.deployment_id), 'spaces_bucket', 77.7, 'active', '2025-03-01'
  FROM arcadia.deployment_versions d
 WHERE d.valid_from <= '2025-03-01' AND (d.valid_to IS NULL OR d.valid_to > '2025-03-01')
   AND NOT EXISTS (
         SELECT FROM arcadia.deployment_versions e
          WHERE e.deployment_id = d.deployment_id AND e.valid_to > '2025-03-01'
            AND NOT EXISTS (SELECT FROM arcadia.deployment_versions n
                             WHERE n.deployment_id = e.deployment_id
                               AND n.valid_from = e.valid_to))
HAVING count(*) > 0
"""


def start_run(
    log: Path, first: date = FIRST, last: date = LAST, assets: str = ""
) -> subprocess.Popen:
    """A range run in its own process (a run worker) and process group, logging to `log`;
    exit status 0 when the run succeeded, 3 when it failed."""
    script = (
        "import sys\n"
        "from datetime import date\n"
        "from arcadia_pipeline_tests.support import ASSETS, materialize_range\n"
        f"assets = {assets!r}.split(',') if {assets!r} else ASSETS\n"
        f"result = materialize_range(date.fromisoformat({first.isoformat()!r}), "
        f"date.fromisoformat({last.isoformat()!r}), assets=tuple(assets), raise_on_error=False)\n"
        "sys.exit(0 if result.success else 3)\n"
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=REPO,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


FIRST_STEP = 'Started execution of step "resource_inventory"'


def wait_for_line(log: Path, marker: str, timeout: float = 120) -> None:
    """Block until `marker` appears in the log (the run worker got that far)."""
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{marker!r} not in {log} after {timeout}s")
        time.sleep(0.02)


def run_to_completion(log: Path, **range_) -> None:
    run = start_run(log, **range_)
    assert run.wait(timeout=600) == 0, log.read_text()[-4000:]
