"""The real Dagster webserver and daemon, started once per test session as `make demo` starts
them: scripts/dagster-dev.sh, which runs `dg dev -w workspace.yaml` from DAGSTER_HOME with its
output in a log file.

The instance is the repo's own dagster.yaml (PostgreSQL storage, QueuedRunCoordinator) copied
into a temporary DAGSTER_HOME, with its storage in a fresh database on the test PostgreSQL
server, so what the tests see is what `make demo` runs: runs are queued, dequeued by the daemon
and executed in their own processes against the session's warehouse database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance
from sqlalchemy.engine import make_url

from arcadia_pipeline import utc
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import upgrade
from arcadia_pipeline_tests.conftest import (
    create_database,
    create_warehouse_database,
    drop_database,
    drop_warehouse_database,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# The venv running pytest (.venv/bin) holds the `dagster` and `dg` entry points.
VENV_BIN = Path(sys.executable).parent
DAGSTER_BIN = VENV_BIN / "dagster"
DG_BIN = VENV_BIN / "dg"
# What `make demo` runs for the UI: `dg dev` in the foreground, its output in a log file.
DEMO_UI_SCRIPT = REPO_ROOT / "scripts" / "dagster-dev.sh"
# The one name of the code location: workspace.yaml, [tool.dagster] and [tool.dg.project].
LOCATION_NAME = "arcadia_pipeline"
METERING_START_DATE = "2025-01-01"
STARTUP_TIMEOUT_S = 120
SHUTDOWN_TIMEOUT_S = 30

WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def a_whole_utc_day(needed: timedelta) -> date:
    """Today (UTC), with at least `needed` of it still to come: with less left, sleeps past
    midnight first. For a module whose dates follow today's, as the demo's do, while what it
    runs reads the clock again (the README's `date` arithmetic, the UI's partitions): a module
    run across midnight would compare two days' figures."""
    now = utc.now()
    midnight = utc.day_start(now.date() + timedelta(days=1))
    if midnight - now < needed:
        time.sleep((midnight - now).total_seconds() + 1)
    return utc.now().date()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterServer:
    """A running `dg dev` (or `dagster dev`): its URL, instance home and log, and a GraphQL
    client. Its log is Dagster's output (services and runs); its console what the process
    started printed, the same file unless the demo's script put Dagster's output apart."""

    url: str
    dagster_home: Path
    postgres_url: str
    log_path: Path
    process: subprocess.Popen
    console_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def console(self) -> str:
        path = self.console_path
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def command(self) -> str:
        """`dg dev` or `dagster dev`, for messages (the demo's script runs `dg dev`)."""
        if Path(self.process.args[0]) == DEMO_UI_SCRIPT:
            return "dg dev"
        program, subcommand = self.process.args[:2]
        return f"{Path(program).name} {subcommand}"

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        """POST a query to /graphql; fail the test (with the server log) on transport errors."""
        response = requests.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=timeout,
        )
        body = response.json() if response.content else {}
        if response.status_code != 200 or body.get("errors"):
            pytest.fail(
                f"GraphQL error {response.status_code}: {body.get('errors') or response.text}\n"
                f"--- {self.command} log ---\n{self.log_tail()}"
            )
        return body["data"]

    def location_names(self) -> list[str]:
        """The names of the workspace's code locations, as the UI lists them."""
        workspace = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        return [entry["name"] for entry in workspace["locationEntries"]]

    def instance(self) -> DagsterInstance:
        """The same instance the server uses (its dagster.yaml reads DAGSTER_POSTGRES_URL)."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_POSTGRES_URL", self.postgres_url)
            return DagsterInstance.from_config(str(self.dagster_home))


def _wait_until_ready(server: DagsterServer) -> None:
    """Poll /server_info, then the workspace, until the code location is loaded."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_state = "no answer from /server_info"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"{server.command} exited with {server.process.returncode} while starting\n"
                f"--- {server.command} log ---\n{server.log_tail()}"
            )
        try:
            if requests.get(f"{server.url}/server_info", timeout=5).ok:
                entries = server.graphql(WORKSPACE_QUERY, timeout=10)["workspaceOrError"]
                locations = entries.get("locationEntries") or []
                last_state = repr(locations)
                loaded = [e for e in locations if e["loadStatus"] == "LOADED"]
                errors = [
                    e["locationOrLoadError"]
                    for e in loaded
                    if e["locationOrLoadError"]["__typename"] == "PythonError"
                ]
                if errors:
                    pytest.fail(f"code location failed to load: {errors[0]['message']}")
                if loaded:
                    return
        except requests.RequestException as error:
            last_state = f"{type(error).__name__}: {error}"
        time.sleep(1)
    pytest.fail(
        f"{server.command} not ready after {STARTUP_TIMEOUT_S}s ({last_state})\n"
        f"--- {server.command} log ---\n{server.log_tail()}"
    )


def _stop(*processes: subprocess.Popen) -> None:
    """SIGTERM each whole process group (webserver, daemon, code server, run workers), then
    SIGKILL whatever is left of them after the grace period."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):  # the group is already gone
            os.killpg(process.pid, signal.SIGTERM)  # the group id is the leader's pid
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):  # children may outlive the leader
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)


@contextlib.contextmanager
def migrated_warehouse(server_url: str, admin_url: str, name: str) -> Iterator[str]:
    """A new warehouse database `name`, owned by the test login and migrated (as `make demo`
    leaves it), dropped afterwards; its URL."""
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    create_warehouse_database(admin_url, name, make_url(server_url).username)
    try:
        upgrade(url)
        yield url
    finally:
        make_engine(url).dispose()
        drop_warehouse_database(admin_url, name)


@contextlib.contextmanager
def fresh_database(database_url: str, name: str) -> Iterator[str]:
    """A new database on the test server for Dagster's run/event/schedule storage, dropped
    afterwards; its plain postgresql:// URL (dagster-postgres wants no +psycopg2 suffix)."""
    # Created by the superuser (the test login may not create databases), owned by the
    # test login, as pg-cluster.sh makes Dagster's database for its own login.
    admin_url = os.getenv("ARCADIA_ADMIN_DATABASE_URL") or database_url
    url = make_url(database_url).set(drivername="postgresql", database=name)
    create_database(admin_url, name, owner=url.username)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_database(admin_url, name)


def make_dagster_home(path: Path) -> Path:
    """A DAGSTER_HOME holding a copy of the repo's dagster.yaml, as `make demo` makes it."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", path / "dagster.yaml")
    return path


def dagster_env(
    database_url: str,
    dagster_postgres_url: str,
    dagster_home: Path,
    metering_start_date: str = METERING_START_DATE,
) -> dict:
    """The environment of a Dagster command: the instance, the warehouse (its daily
    partitions from `metering_start_date`), the project venv activated (`dg` checks that the
    active virtualenv is the project's)."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_POSTGRES_URL": dagster_postgres_url,
        "ARCADIA_DATABASE_URL": database_url,
        "ARCADIA_METERING_START_DATE": metering_start_date,
        "VIRTUAL_ENV": str(VENV_BIN.parent),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        # Only what the tests launch may run: the catch-up sensor would otherwise meter the
        # last week of today's calendar from the seeded (open-ended) versions.
        "ARCADIA_AUTOMATION": "stopped",
    }
    env.pop("ARCADIA_SOURCE_DATABASE_URL", None)  # the source is the warehouse database
    return env


def demo_ui_command(log_path: Path, port: int) -> tuple[list[str], Path]:
    """What scripts/demo.sh starts, and where: scripts/dagster-dev.sh from the repo root, which
    runs `dg dev` on workspace.yaml from DAGSTER_HOME (Dagster warns about a dagster.yaml in
    the current folder unless it is DAGSTER_HOME) with its output in `log_path`."""
    command = [str(DEMO_UI_SCRIPT), str(log_path), "-h", "127.0.0.1", "-p", str(port)]
    return command, REPO_ROOT


def _start(
    command: list[str], *, cwd: Path, env: dict, log_path: Path, console_path: Path | None = None
) -> DagsterServer:
    """Start `command`; its console (stdout and stderr) goes to `console_path`, by default
    `log_path` (a `dg dev` started bare prints Dagster's whole output there)."""
    port = int(command[command.index("-p") + 1])
    console_path = console_path or log_path
    with console_path.open("wb") as console:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole at teardown
        )
    return DagsterServer(
        url=f"http://127.0.0.1:{port}",
        dagster_home=Path(env["DAGSTER_HOME"]),
        postgres_url=env.get("DAGSTER_POSTGRES_URL", ""),
        log_path=log_path,
        process=process,
        console_path=console_path,
    )


@contextlib.contextmanager
def running_dagsters(starts: list[dict]) -> Iterator[list[DagsterServer]]:
    """Start each `command` (a `dg dev`/`dagster dev` serving on its -p port, 127.0.0.1; with
    its `cwd`, `env`, `log_path` and optional `console_path`) in its own process group, all at
    once, wait until each one's code location is loaded, and stop them all after. Each needs an
    instance of its own (two daemons must not share one)."""
    servers: list[DagsterServer] = []
    try:
        for start in starts:
            servers.append(_start(**start))
        for server in servers:
            _wait_until_ready(server)
        yield servers
    finally:
        _stop(*(server.process for server in servers))


@contextlib.contextmanager
def running_dagster(
    command: list[str], *, cwd: Path, env: dict, log_path: Path, console_path: Path | None = None
) -> Iterator[DagsterServer]:
    """running_dagsters for one command."""
    start = {"command": command, "cwd": cwd, "env": env, "log_path": log_path}
    start["console_path"] = console_path
    with running_dagsters([start]) as (server,):
        yield server


@pytest.fixture(scope="session")
def dagster_postgres_url(database_url: str) -> Iterator[str]:
    """A fresh database for Dagster's run/event/schedule storage, dropped at the end."""
    with fresh_database(database_url, f"dagster_e2e_{os.getpid()}") as url:
        yield url


@contextlib.contextmanager
def demo_ui(
    database_url: str,
    dagster_postgres_url: str,
    dagster_home: Path,
    metering_start_date: str = METERING_START_DATE,
) -> Iterator[DagsterServer]:
    """`dg dev` as `make demo` starts it, on the warehouse `database_url`, its instance in
    `dagster_home` (storage: `dagster_postgres_url`), daily partitions from
    `metering_start_date`."""
    make_dagster_home(dagster_home)
    # Beside DAGSTER_HOME, as the demo's .local/logs is beside .local/dagster_home.
    logs = dagster_home.with_name(f"{dagster_home.name}-logs")
    logs.mkdir(exist_ok=True)
    log_path = logs / "dagster-dev.log"
    command, cwd = demo_ui_command(log_path, free_port())
    env = dagster_env(database_url, dagster_postgres_url, dagster_home, metering_start_date)
    console_path = logs / "console.txt"  # what the person running `make demo` sees of it
    with running_dagster(
        command, cwd=cwd, env=env, log_path=log_path, console_path=console_path
    ) as server:
        yield server


@pytest.fixture(scope="session")
def dagster_server(
    database_url: str, dagster_postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterServer]:
    home = tmp_path_factory.mktemp("dagster_home")
    with demo_ui(database_url, dagster_postgres_url, home) as server:
        yield server


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ at the repo root (git-ignored): screenshots for humans to look at."""
    path = REPO_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the backfill tests before the browser test, so that the screenshot shows the
    partitions the real backfill materialised (the browser test still works on its own)."""
    # The database outage test stops the cluster under the session's dagster dev: it goes
    # after everything that uses that server.
    items.sort(
        key=lambda item: (
            "faults/test_outage" in item.nodeid,
            item.get_closest_marker("browser") is not None,
        )
    )
