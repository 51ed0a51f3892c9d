"""The real Dagster webserver and daemon (`dagster dev`), started once per test session.

The instance is the repo's own dagster.yaml (PostgreSQL storage, QueuedRunCoordinator) in a
temporary DAGSTER_HOME, with its storage in a fresh database on the test PostgreSQL server, so
what the tests see is what `make demo` runs: runs are queued, dequeued by the daemon and
executed in their own processes against the session's warehouse database.
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
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db.engine import make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]
# The venv running pytest (.venv/bin) holds the `dagster` entry point.
DAGSTER_BIN = Path(sys.executable).parent / "dagster"
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterServer:
    """A running `dagster dev`: its URL, instance home and log, and a GraphQL client."""

    url: str
    dagster_home: Path
    postgres_url: str
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 80) -> str:
        text_ = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text_.splitlines()[-lines:])

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
                f"--- dagster dev log ---\n{self.log_tail()}"
            )
        return body["data"]

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
                f"dagster dev exited with {server.process.returncode} while starting\n"
                f"--- dagster dev log ---\n{server.log_tail()}"
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
        f"dagster dev not ready after {STARTUP_TIMEOUT_S}s ({last_state})\n"
        f"--- dagster dev log ---\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (webserver, daemon, code server, run workers), then
    SIGKILL whatever is left of it after the grace period."""
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(process.pid, signal.SIGTERM)  # the group id is the leader's pid
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):  # children may outlive the leader
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=SHUTDOWN_TIMEOUT_S)


@pytest.fixture(scope="session")
def dagster_postgres_url(database_url: str) -> Iterator[str]:
    """A fresh database for Dagster's run/event/schedule storage, dropped at the end."""
    name = f"dagster_e2e_{os.getpid()}"
    admin = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    # dagster-postgres wants a plain postgresql:// URL (no +psycopg2 driver suffix).
    url = make_url(database_url).set(drivername="postgresql", database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def dagster_server(
    database_url: str, dagster_postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterServer]:
    dagster_home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    log_path = dagster_home / "dagster-dev.log"
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_POSTGRES_URL": dagster_postgres_url,
        "ARCADIA_DATABASE_URL": database_url,
        "ARCADIA_METERING_START_DATE": METERING_START_DATE,
        "PATH": f"{DAGSTER_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        # Only what the tests launch may run: the catch-up sensor would otherwise meter the
        # last week of today's calendar from the seeded (open-ended) versions.
        "ARCADIA_AUTOMATION": "stopped",
    }
    env.pop("ARCADIA_SOURCE_DATABASE_URL", None)  # the source is the warehouse database
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(DAGSTER_BIN), "dev", "-m", "arcadia_pipeline.definitions"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole at teardown
        )
    server = DagsterServer(
        url=f"http://127.0.0.1:{port}",
        dagster_home=dagster_home,
        postgres_url=dagster_postgres_url,
        log_path=log_path,
        process=process,
    )
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ at the repo root (git-ignored): screenshots for humans to look at."""
    path = REPO_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the backfill tests before the browser test, so that the screenshot shows the
    partitions the real backfill materialised (the browser test still works on its own)."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
