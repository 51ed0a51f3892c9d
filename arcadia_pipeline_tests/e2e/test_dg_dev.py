"""The UI, however it is started, shows one code location, `arcadia_pipeline`; the way
`make demo` starts it (scripts/dagster-dev.sh: `dg dev -w workspace.yaml` from DAGSTER_HOME,
its output in a log file) has a clean log and a console of a line or two, whatever the runs
log; `make venv` prints no package lines."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from arcadia_pipeline.db.source import create_source_tables
from arcadia_pipeline.defs.inventory.source_assets import OBSERVATION_JOB
from arcadia_pipeline_tests.e2e.backfill_client import BackfillClient, WebserverError
from arcadia_pipeline_tests.e2e.check_statuses import LAUNCH_RUN, wait_run
from arcadia_pipeline_tests.e2e.conftest import (
    DAGSTER_BIN,
    DEMO_UI_SCRIPT,
    DG_BIN,
    LOCATION_NAME,
    REPO_ROOT,
    DagsterServer,
    dagster_env,
    demo_ui_command,
    free_port,
    fresh_database,
    make_dagster_home,
    running_dagster,
    running_dagsters,
)

pytestmark = pytest.mark.webserver

# Dagster's console warnings that `make demo` must not print.
SUPERSEDED = "SupersessionWarning"
FOREIGN_DAGSTER_YAML = "Found a dagster instance configuration value (dagster.yaml)"
# The most the demo's UI step may print: where its log is, that the UI is up (and, once
# stopped, that it stopped).
CONSOLE_LINES = 3
# A line of uv's: " + dagster==1.13.27", "Installed 121 packages in 2s", "Bytecode compiled
# 7299 files in 3.00s" (the Makefile's UV_COMPILE_BYTECODE).
PACKAGE_LINE = re.compile(r"^\s*[-+~] \S+==|\bpackages? in\b|^Bytecode compiled \d+ files")
DEBUG_LINE = re.compile(r"\bDEBUG\b")
RUN_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60

# Run from the repo root, with the instance's DAGSTER_HOME elsewhere (as a developer would).
OTHER_WAYS = {
    "dg dev": [str(DG_BIN), "dev"],  # [tool.dg] in pyproject.toml
    "dagster dev": [str(DAGSTER_BIN), "dev"],  # [tool.dagster] in pyproject.toml
    "dagster dev -w workspace.yaml": [str(DAGSTER_BIN), "dev", "-w", "workspace.yaml"],
}


def test_the_demo_way_shows_one_location_and_a_clean_console(dagster_server: DagsterServer):
    assert dagster_server.process.args[0] == str(DEMO_UI_SCRIPT)
    assert dagster_server.command == "dg dev"
    assert dagster_server.location_names() == [LOCATION_NAME]
    log = dagster_server.log()
    assert "Serving dagster-webserver" in log  # Dagster's output is in the log file
    for output in (log, dagster_server.console()):
        assert SUPERSEDED not in output
        assert FOREIGN_DAGSTER_YAML not in output
        assert "does not match" not in output  # the project's virtualenv is the active one


def launch_job(server: DagsterServer, job: str) -> str:
    """Launch `job` through the webserver, as the UI's Launchpad does; the run id."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": "__repository__",  # Dagster's name for a Definitions
            "jobName": job,
        },
    }
    launched = BackfillClient(server.url).graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise WebserverError(f"run not launched: {launched}")
    return launched["run"]["runId"]


def test_the_demo_way_logs_runs_to_its_log_file_and_keeps_the_console_short(
    dagster_server: DagsterServer, engine: Engine
):
    """A run the daemon executes logs every event, DEBUG included, to the run worker's output:
    that goes to the log file; the console keeps its two lines (where the log is, the URL)."""
    with engine.begin() as connection:  # what the observation job reads (seeded or empty)
        create_source_tables(connection)
    run_id = launch_job(dagster_server, OBSERVATION_JOB)
    status = wait_run(BackfillClient(dagster_server.url), run_id, RUN_TIMEOUT_S)
    assert status == "SUCCESS", f"run {run_id}: {status}\n{dagster_server.log_tail()}"

    def run_lines() -> list[str]:
        return [line for line in dagster_server.log().splitlines() if run_id in line]

    deadline = time.monotonic() + 30  # the worker's last lines may trail the status a little
    while not any("RUN_SUCCESS" in line for line in run_lines()) and time.monotonic() < deadline:
        time.sleep(0.5)
    lines = run_lines()
    assert any("RUN_START" in line and DEBUG_LINE.search(line) for line in lines), lines
    assert any("RUN_SUCCESS" in line for line in lines), dagster_server.log_tail()

    console = dagster_server.console().splitlines()
    assert console == [
        f"dg dev's log (webserver, daemon, every run's events): {dagster_server.log_path}",
        f"Dagster UI up: {dagster_server.url}",
    ]
    assert len(console) <= CONSOLE_LINES
    assert not [line for line in console if DEBUG_LINE.search(line) or run_id in line]
    assert not [line for line in console if PACKAGE_LINE.search(line)]
    assert SUPERSEDED not in "\n".join(console)


@pytest.mark.e2e
def test_make_venv_prints_one_line_and_logs_the_packages():
    """`make venv` when uv.lock changed (-W: as if it had): uv's package lines go to
    .local/logs/uv-sync.log, the console gets one line naming it."""
    # Not a sub-make of `make test`'s (its jobserver flags would make it warn).
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    result = subprocess.run(
        ["make", "--no-print-directory", "-W", "uv.lock", "venv"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    console = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 0, "\n".join(console)
    assert console == ["venv: uv sync --frozen (log: .local/logs/uv-sync.log)"]
    log = (REPO_ROOT / ".local" / "logs" / "uv-sync.log").read_text()
    assert [line for line in log.splitlines() if PACKAGE_LINE.search(line)], log


def test_every_other_way_names_the_location_arcadia_pipeline(database_url: str, tmp_path: Path):
    """`dg dev`, `dagster dev` and `dagster dev -w workspace.yaml` from the repo root, started
    side by side (each with an instance of its own, apart from the session server's)."""
    with contextlib.ExitStack() as stack:
        starts = []
        for n, command in enumerate(OTHER_WAYS.values()):
            postgres_url = stack.enter_context(
                fresh_database(database_url, f"dagster_way{n}_{os.getpid()}")
            )
            home = make_dagster_home(tmp_path / f"way{n}")
            starts.append(
                {
                    "command": command + ["-h", "127.0.0.1", "-p", str(free_port())],
                    "cwd": REPO_ROOT,
                    "env": dagster_env(database_url, postgres_url, home),
                    "log_path": home / "dev.log",
                }
            )
        with running_dagsters(starts) as servers:
            by_way = dict(zip(OTHER_WAYS, servers, strict=True))
            names = {way: server.location_names() for way, server in by_way.items()}
            logs = {way: server.log() for way, server in by_way.items()}
    assert names == {way: [LOCATION_NAME] for way in OTHER_WAYS}
    # The warnings the demo's way avoids (so that their absence above means something): the
    # superseded `dagster dev`, and the repo's dagster.yaml in the folder these run from
    # (`dg dev` always runs from the project root) while DAGSTER_HOME is another.
    assert {way: SUPERSEDED in log for way, log in logs.items()} == {
        "dg dev": False,
        "dagster dev": True,
        "dagster dev -w workspace.yaml": True,
    }
    assert all(FOREIGN_DAGSTER_YAML in log for log in logs.values())


def test_the_demo_ui_stops_on_sigterm_though_started_with_sigint_ignored(
    database_url: str, tmp_path: Path
):
    """A `make demo` started in the background (nohup, a CI step) inherits SIGINT ignored;
    Dagster maps SIGTERM to SIGINT's handler, so dg dev would ignore both and outlive a
    SIGTERM to the demo. scripts/dagster-dev.sh restores SIGINT for it: a SIGTERM stops the
    whole UI (webserver, daemon, code server) and the script says so."""
    home = make_dagster_home(tmp_path / "dagster_home")
    log_path, console_path = tmp_path / "dagster-dev.log", tmp_path / "console.txt"
    command, cwd = demo_ui_command(log_path, free_port())
    ignoring_sigint = ["bash", "-c", 'trap "" INT; exec "$@"', "bash", *command]
    with (
        fresh_database(database_url, f"dagster_sigterm_{os.getpid()}") as storage,
        running_dagster(
            ignoring_sigint,
            cwd=cwd,
            env=dagster_env(database_url, storage, home),
            log_path=log_path,
            console_path=console_path,
        ) as server,
    ):
        server.process.send_signal(signal.SIGTERM)  # the script itself, not its group
        assert server.process.wait(timeout=STOP_TIMEOUT_S) == 0, server.log_tail()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while group_alive(server.process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not group_alive(server.process.pid), "dg dev's services outlived the SIGTERM"
        assert server.console().splitlines()[-1] == f"Dagster stopped (log: {log_path})"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
