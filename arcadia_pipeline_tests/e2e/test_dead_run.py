"""A run worker SIGKILLed mid-run, under the real daemon: run monitoring fails the run
within a minute (the launcher checks the worker's pid), the daemon launches it again, and
the retry meters every day of the range. Nothing waits for the 12-hour max runtime."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import date

import pytest
from dagster import DagsterEventType, DagsterRunStatus, RunsFilter
from sqlalchemy import Engine, text

from arcadia_pipeline.demo.seed import seed_demo
from arcadia_pipeline.orchestration.run_launcher import WORKER_TAG
from arcadia_pipeline.utc import iter_days
from arcadia_pipeline_tests.e2e.backfill_client import BackfillClient, range_params
from arcadia_pipeline_tests.e2e.conftest import DG_BIN, REPO_ROOT, DagsterServer, dagster_env
from arcadia_pipeline_tests.support import ASSETS

pytestmark = pytest.mark.webserver

FIRST, LAST = date(2025, 6, 1), date(2025, 7, 15)
DETECTION_LIMIT_S = 120


def wait_for(what: str, predicate, timeout: float, server: DagsterServer):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} not within {timeout:.0f}s\n--- dg dev log ---\n{server.log_tail()}")


def test_a_killed_run_worker_is_failed_and_its_run_retried(
    dagster_server: DagsterServer, engine: Engine
):
    with engine.begin() as connection:
        seed_demo(connection, deployments=30, days=60, seed=5, end_date=date(2025, 7, 1))
    client = BackfillClient(dagster_server.url)
    instance = dagster_server.instance()
    backfill_id = client.launch(range_params(FIRST, LAST, ASSETS, "dead run worker"))

    def started_run():
        runs = client.runs(backfill_id)
        return runs[0]["runId"] if runs and runs[0]["status"] == "STARTED" else None

    run_id = wait_for("the backfill's run to start", started_run, 120, dagster_server)
    run = instance.get_run_by_id(run_id)
    pid = wait_for(
        "the worker's pid", lambda: instance.run_launcher.run_worker_pid(run), 60, dagster_server
    )

    def working():
        steps = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START)
        return bool(steps.records)

    wait_for("the first step", working, 120, dagster_server)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def failed():
        return instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE

    wait_for("run monitoring to fail the dead run", failed, DETECTION_LIMIT_S, dagster_server)
    detected_in = time.monotonic() - killed_at
    print(f"\ndead run {run_id[:8]} failed {detected_in:.0f}s after the SIGKILL")

    def retried_and_done():
        retries = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": run_id}))
        return retries[0] if retries and retries[0].status == DagsterRunStatus.SUCCESS else None

    retry = wait_for("the daemon's retry to succeed", retried_and_done, 600, dagster_server)
    assert retry.tags["dagster/asset_partition_range_start"] == FIRST.isoformat()
    assert retry.tags["dagster/asset_partition_range_end"] == LAST.isoformat()
    with engine.connect() as connection:
        quoted = connection.execute(
            text("SELECT DISTINCT as_of_date FROM metering.deployment_quotes ORDER BY 1")
        ).scalars()
        assert list(quoted) == list(iter_days(FIRST, LAST))


def test_a_killed_dg_launch_is_failed_by_run_monitoring(
    dagster_server: DagsterServer, engine: Engine, database_url: str, tmp_path
):
    """`dg launch` runs in the terminal's process, with no code server to notice its death:
    the worker tag its assets set lets run monitoring see the process is gone."""
    with engine.begin() as connection:
        seed_demo(connection, deployments=30, days=60, seed=6, end_date=date(2025, 9, 1))
    instance = dagster_server.instance()
    env = dagster_env(database_url, dagster_server.postgres_url, dagster_server.dagster_home)
    log = tmp_path / "dg-launch.log"
    with log.open("wb") as out:
        launch = subprocess.Popen(
            [str(DG_BIN), "launch", "--job", "daily_metering_job",
             "--partition-range", "2025-08-01...2025-08-31"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def tagged_run():
        runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        return next((run for run in runs if WORKER_TAG in run.tags), None)

    run = wait_for("the launched run's worker tag", tagged_run, 180, dagster_server)
    os.killpg(launch.pid, signal.SIGKILL)
    launch.wait()
    killed_at = time.monotonic()

    def failed():
        return instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE

    wait_for("run monitoring to fail the dead run", failed, DETECTION_LIMIT_S, dagster_server)
    print(f"\ndg launch run {run.run_id[:8]} failed {time.monotonic() - killed_at:.0f}s after")
    failure = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    messages = [record.event_log_entry.message for record in failure.records]
    assert any("is gone" in message for message in messages), messages
