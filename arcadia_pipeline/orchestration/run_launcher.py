"""Dagster's default run launcher, plus a health check of the run worker's process, so that
run monitoring sees a run whose process died (SIGKILL, OOM) within a poll interval instead
of leaving it STARTED until max_runtime_seconds.

The default launcher starts each run as a process of a code server on the daemon's own
machine (`dg dev`, `dagster dev`, `dagster code-server`); the run worker records its pid in
the run's event log ("Started process for run (pid: …)"). A pid that no longer exists, or
is a zombie, is a dead run; a code server on another host cannot be checked from here and
reads UNKNOWN (monitoring then falls back to its timeouts).
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", None}
_PID_MESSAGE = "Started process for run (pid:"


def process_state(pid: int) -> str | None:
    """The kernel's state letter of the process (R, S, D, Z…), None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # the name in (…) may hold spaces


class LocalProcessRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers' health run monitoring can check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def run_worker_pid(self, run: DagsterRun) -> int | None:
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50
        ).records
        for record in records:
            entry = record.event_log_entry
            if entry.message.startswith(_PID_MESSAGE):
                metadata = entry.dagster_event.engine_event_data.metadata
                return int(metadata["pid"].value)
        return None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        grpc = json.loads(run.tags.get(GRPC_INFO_TAG, "{}"))
        if grpc.get("host") not in LOCAL_HOSTS:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "run worker on another host")
        pid = self.run_worker_pid(run)
        if pid is None:  # STARTED but the worker has not logged its pid yet
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        state = process_state(pid)
        if state is None or state in ("Z", "X"):
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"the run worker process (pid {pid}) is gone"
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING)
