"""A date-range backfill launched through the real webserver's GraphQL API, executed by the
real daemon: one run for the whole range (single-run backfill policy), exactly the range's
days in the warehouse, and the same rows when the range is backfilled again."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import Engine, text

from arcadia_pipeline.demo.seed import seed_demo
from arcadia_pipeline.utc import iter_days
from arcadia_pipeline_tests.e2e.backfill_client import (
    DONE,
    BackfillClient,
    WebserverError,
    job_dialog_params,
    range_params,
    ui_dialog_params,
)
from arcadia_pipeline_tests.e2e.conftest import DagsterServer
from arcadia_pipeline_tests.support import ASSETS

pytestmark = pytest.mark.webserver

# Crosses the Feb/Mar month boundary: month-to-date aggregates and quotes restart on Mar 1.
FIRST, LAST = date(2025, 2, 20), date(2025, 3, 5)
DAYS = list(iter_days(FIRST, LAST))
BACKFILL_TIMEOUT_S = 300


def run_backfill(server: DagsterServer, params: dict) -> tuple[str, float]:
    """Launch a backfill and wait until the daemon reports it done; its id and wall time."""
    client = BackfillClient(server.url)
    started = time.monotonic()
    backfill_id = client.launch(params)
    try:
        backfill = client.wait(backfill_id, BACKFILL_TIMEOUT_S, poll=2)
    except WebserverError as error:
        backfill = {"status": str(error)}
    if backfill["status"] in DONE:
        return backfill_id, time.monotonic() - started
    pytest.fail(
        f"backfill {backfill_id} not completed within {BACKFILL_TIMEOUT_S}s: {backfill}\n"
        f"runs: {client.runs(backfill_id)}\n"
        f"daemons: {client.daemon_health()}\n"
        f"--- dagster dev log ---\n{server.log_tail()}"
    )


def assert_one_range_run(server: DagsterServer, backfill_id: str, job: str = "__ASSET_JOB") -> str:
    """The single-run backfill policy: one successful run of `job` over the whole range."""
    runs = BackfillClient(server.url).runs(backfill_id)
    assert len(runs) == 1, [(run["runId"], run["status"]) for run in runs]
    run = runs[0]
    assert run["jobName"] == job
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS", run
    assert tags["dagster/asset_partition_range_start"] == FIRST.isoformat()
    assert tags["dagster/asset_partition_range_end"] == LAST.isoformat()
    # The days, visible in the run list (Dagster hides its own range tags).
    assert tags["arcadia/days"] == f"{FIRST.isoformat()}...{LAST.isoformat()}"
    assert sorted(key["path"][0] for key in run["assetSelection"]) == sorted(ASSETS)
    print(f"  its one run {run['runId']} ran {run['endTime'] - run['startTime']:.1f}s")
    return run["runId"]


def days_in(engine: Engine, sql: str) -> list[date]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql)).scalars())


def warehouse_rows(engine: Engine) -> tuple[list, list]:
    """usage_records and deployment_quotes without their lineage (run, snapshot, timestamps)."""
    with engine.connect() as connection:
        usage = connection.execute(
            text(
                "SELECT deployment_id, resource_id, resource_kind, period_start, granularity, "
                "qty, sub_attribution FROM metering.usage_records "
                "ORDER BY deployment_id, resource_id, period_start, granularity"
            )
        ).all()
        quotes = connection.execute(
            text(
                "SELECT as_of_date, deployment_id, plan_code, period_start, base_usd, "
                "overage_usd, total_usd FROM metering.deployment_quotes "
                "ORDER BY as_of_date, deployment_id"
            )
        ).all()
    return usage, quotes


def test_range_backfill_through_the_webserver_runs_once_and_is_reproducible(
    dagster_server: DagsterServer, engine: Engine
):
    with engine.begin() as connection:
        seed_demo(connection, deployments=5, days=60, seed=11, end_date=date(2025, 4, 1))

    backfill_id, seconds = run_backfill(
        dagster_server, range_params(FIRST, LAST, ASSETS, "e2e range backfill")
    )
    print(f"\nbackfill {FIRST}..{LAST} ({len(DAYS)} days): launch -> completed in {seconds:.1f}s")
    first_run = assert_one_range_run(dagster_server, backfill_id)

    # Every day of the range, across the month boundary, and nothing outside it.
    usage_days = days_in(
        engine,
        "SELECT DISTINCT (period_start AT TIME ZONE 'UTC')::date AS day "
        "FROM metering.usage_records ORDER BY day",
    )
    assert usage_days == DAYS
    quote_days = days_in(
        engine, "SELECT DISTINCT as_of_date FROM metering.deployment_quotes ORDER BY as_of_date"
    )
    assert quote_days == DAYS
    # Month-to-date: the quotes of Feb 20..28 are February's, those of Mar 1..5 March's.
    with engine.connect() as connection:
        periods = dict(
            connection.execute(
                text("SELECT DISTINCT as_of_date, period_start FROM metering.deployment_quotes")
            ).all()
        )
    assert {day: day.replace(day=1) for day in DAYS} == periods
    usage_before, quotes_before = warehouse_rows(engine)
    assert usage_before and quotes_before

    # The same range again, this time in the form the UI's dialog sends: again one run, and
    # it replaces the rows with identical ones (only the lineage changes).
    backfill_id, seconds = run_backfill(dagster_server, ui_dialog_params(FIRST, LAST, ASSETS))
    print(f"re-backfill (UI form): launch -> completed in {seconds:.1f}s")
    second_run = assert_one_range_run(dagster_server, backfill_id)
    assert second_run != first_run
    usage_after, quotes_after = warehouse_rows(engine)
    assert usage_after == usage_before
    assert quotes_after == quotes_before
    with engine.connect() as connection:
        lineage = connection.execute(
            text(
                "SELECT DISTINCT u.run_id, s.run_id FROM metering.usage_records u "
                "JOIN metering.inventory_snapshots s ON s.snapshot_id = u.inventory_snapshot_id"
            )
        ).all()
    assert lineage == [(second_run, second_run)]

    # From the job's page: a backfill of daily_metering_job, again one run, the job's.
    backfill_id, seconds = run_backfill(
        dagster_server, job_dialog_params(FIRST, LAST, ASSETS, "daily_metering_job")
    )
    print(f"re-backfill (job page): launch -> completed in {seconds:.1f}s")
    assert_one_range_run(dagster_server, backfill_id, job="daily_metering_job")
    assert warehouse_rows(engine) == (usage_before, quotes_before)


ASSET_NODES = """
query($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    jobNames
    isObservable
    backfillPolicy { policyType maxPartitionsPerRun description }
  }
}
"""


def test_the_ui_sees_one_backfill_policy_for_the_four_daily_assets(dagster_server: DagsterServer):
    """What the Materialize dialog reads: the same single-run policy on each daily asset (its
    "varying backfill policies" compares the five policy objects by identity, not value),
    and `__ASSET_JOB` first among each asset's jobs (the job the asset graph launches)."""
    keys = [{"path": [name]} for name in ASSETS]
    nodes = BackfillClient(dagster_server.url).graphql(ASSET_NODES, {"keys": keys})["assetNodes"]
    assert sorted(node["assetKey"]["path"][0] for node in nodes) == sorted(ASSETS)
    policies = {json.dumps(node["backfillPolicy"], sort_keys=True) for node in nodes}
    assert [json.loads(policy) for policy in policies] == [
        {
            "policyType": "SINGLE_RUN",
            "maxPartitionsPerRun": None,
            "description": "Backfills all partitions in a single run",
        }
    ]
    assert {tuple(node["jobNames"]) for node in nodes} == {("__ASSET_JOB", "daily_metering_job")}
    assert not any(node["isObservable"] for node in nodes)
