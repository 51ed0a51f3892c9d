"""Dagster's default run launcher, plus a health check of the run worker's process, so that
run monitoring fails a run whose process died (SIGKILL, out of memory) within a poll
instead of leaving its days "in progress" until max_runtime_seconds.

The package's one adapter of Dagster's private API (dagster._core: the health-check result
types, the gRPC tag, the code server's "Started process for run (pid: …)" event);
orchestration/test_run_launcher.py launches a real run through a real code server, so a
Dagster upgrade that moves any of it fails that test.

Which process is the run worker, and on which machine: every daily asset tags its run with
`arcadia/worker` = host:pid when it starts (`tag_worker`), whoever launched the run (the
daemon through a code server, or `dg launch` in a terminal); before that, a run the daemon
launched is known by the pid its code server logged ("Started process for run (pid: …)").
A pid on this machine that no longer exists, or is a zombie, is a dead run. A worker on
another machine, or none known yet, reads RUNNING (run monitoring fails anything that is
not RUNNING or SUCCESS): a live run is never marked dead, and max_runtime_seconds still
bounds the rest.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from dagster import AssetExecutionContext, DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

WORKER_TAG = "arcadia/worker"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_STARTED = "Started process for run (pid:"


def process_state(pid: int) -> str | None:
    """The kernel's state letter of the process (R, S, D, Z…), None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # the name in (…) may hold spaces


def tag_run(context: AssetExecutionContext, tags: Mapping[str, str]) -> None:
    """Add the `tags` the run does not carry yet, visible in the UI from then on. A run's
    tags are otherwise fixed at launch; a range launched from the UI or by `dg launch` has
    only Dagster's hidden range tags (DagsterInstance.add_run_tags, not marked public)."""
    missing = {key: value for key, value in tags.items() if context.run.tags.get(key) != value}
    if missing:
        context.instance.add_run_tags(context.run_id, missing)


def tag_worker(context: AssetExecutionContext) -> None:
    """Say which process on which machine runs this run (once per run)."""
    tag_run(context, {WORKER_TAG: f"{socket.gethostname()}:{os.getpid()}"})


class LocalProcessRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers' health run monitoring can check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def run_worker_pid(self, run: DagsterRun) -> int | None:
        """The worker's pid on this machine, None when it is unknown or elsewhere."""
        worker = self._instance.get_run_by_id(run.run_id).tags.get(WORKER_TAG)
        if worker:
            host, pid = worker.rsplit(":", 1)
            return int(pid) if host == socket.gethostname() else None
        grpc = json.loads(run.tags.get(GRPC_INFO_TAG, "{}"))
        if grpc.get("host") not in LOCAL_HOSTS:
            return None
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50
        ).records
        for record in records:
            entry = record.event_log_entry
            if entry.message.startswith(_STARTED):
                return int(entry.dagster_event.engine_event_data.metadata["pid"].value)
        return None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self.run_worker_pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not known here")
        state = process_state(pid)
        if state is None or state in ("Z", "X"):
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"the run worker process (pid {pid}) is gone"
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING)
