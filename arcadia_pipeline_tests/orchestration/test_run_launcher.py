"""The run launcher tells run monitoring when a run's worker process is gone: a real
process, killed for real."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from arcadia_pipeline.orchestration.run_launcher import (
    LOCAL_HOSTS,
    WORKER_TAG,
    LocalProcessRunLauncher,
    process_state,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def launcher():
    with DagsterInstance.ephemeral() as instance:
        launcher = LocalProcessRunLauncher()
        launcher.register_instance(instance)
        yield launcher


def started_run(launcher, pid: int | None, host: str | None = "localhost") -> DagsterRun:
    instance = launcher._instance
    run = instance.add_run(
        DagsterRun(
            job_name="daily_metering_job",
            status=DagsterRunStatus.STARTED,
            tags={GRPC_INFO_TAG: json.dumps({"host": host, "port": 4000})} if host else {},
        )
    )
    if pid is not None:  # what the code server logs when it starts the run worker
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
        )
    return run


def test_a_live_worker_is_running_and_a_killed_one_failed(launcher):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run = started_run(launcher, worker.pid)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

    worker.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_state(worker.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    # not reaped yet: a zombie is dead too
    assert process_state(worker.pid) == "Z"
    assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
    worker.wait()
    assert process_state(worker.pid) is None
    health = launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED
    assert str(worker.pid) in health.msg


def test_a_worker_not_known_yet_counts_as_running(launcher):
    assert launcher.check_run_worker_health(started_run(launcher, None)).status == (
        WorkerStatus.RUNNING
    )


def test_a_worker_on_another_host_is_never_marked_dead(launcher):
    run = started_run(launcher, 1, host="code-server.internal")
    assert launcher.run_worker_pid(run) is None
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING


def test_the_worker_tag_names_the_process_whoever_launched_the_run(launcher):
    """A `dg launch` run has no code server: its assets tag the run with host:pid."""
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run = started_run(launcher, None, host=None)
    launcher._instance.add_run_tags(
        run.run_id, {WORKER_TAG: f"{socket.gethostname()}:{worker.pid}"}
    )
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    worker.kill()
    worker.wait()
    assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
    launcher._instance.add_run_tags(run.run_id, {WORKER_TAG: f"elsewhere:{worker.pid}"})
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING


INSTANCE_YAML = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: arcadia_pipeline.orchestration.run_launcher
  class: LocalProcessRunLauncher
telemetry:
  enabled: false
"""


def test_a_run_launched_by_a_real_code_server_is_known_by_its_worker_pid(
    engine, database_url, tmp_path
):
    """What the adapter relies on, from a Dagster that really launches a run: the code
    server's gRPC tag and its "Started process for run (pid: …)" engine event, the run
    worker's process, and run monitoring's health check. A Dagster upgrade that changes any
    of it fails here, not silently in production."""
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "ARCADIA_DATABASE_URL": database_url}
    env["ARCADIA_AUTOMATION"] = "stopped"
    launched = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "job", "launch",
         "-w", str(REPO / "workspace.yaml"), "-j", "retention_job"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        [run] = instance.get_runs()
        assert json.loads(run.tags[GRPC_INFO_TAG])["host"] in LOCAL_HOSTS
        deadline = time.monotonic() + 120
        while not instance.get_run_by_id(run.run_id).is_finished:
            assert time.monotonic() < deadline, "the launched run did not finish"
            time.sleep(0.5)
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.SUCCESS
        started = [
            record.event_log_entry
            for record in instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.ENGINE_EVENT
            ).records
            if record.event_log_entry.message.startswith("Started process for run (pid:")
        ]
        assert len(started) == 1
        pid = instance.run_launcher.run_worker_pid(run)
        assert f"(pid: {pid})" in started[0].message
        # The worker is gone (the run finished): the health check says so.
        assert process_state(pid) is None
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED and str(pid) in health.msg
