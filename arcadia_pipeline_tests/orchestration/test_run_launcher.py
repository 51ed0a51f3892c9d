"""The run launcher tells run monitoring when a run's worker process is gone: a real
process, killed for real."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from arcadia_pipeline.orchestration.run_launcher import (
    WORKER_TAG,
    LocalProcessRunLauncher,
    process_state,
)


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
