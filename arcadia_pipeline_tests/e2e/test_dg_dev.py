"""The UI, however it is started, shows one code location, `arcadia_pipeline`; the way
`make demo` starts it (`dg dev -w workspace.yaml` from DAGSTER_HOME) has a clean console."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from arcadia_pipeline_tests.e2e.conftest import (
    DAGSTER_BIN,
    DG_BIN,
    LOCATION_NAME,
    REPO_ROOT,
    DagsterServer,
    dagster_env,
    free_port,
    fresh_database,
    make_dagster_home,
    running_dagsters,
)

pytestmark = pytest.mark.webserver

# Dagster's console warnings that `make demo` must not print.
SUPERSEDED = "SupersessionWarning"
FOREIGN_DAGSTER_YAML = "Found a dagster instance configuration value (dagster.yaml)"

# Run from the repo root, with the instance's DAGSTER_HOME elsewhere (as a developer would).
OTHER_WAYS = {
    "dg dev": [str(DG_BIN), "dev"],  # [tool.dg] in pyproject.toml
    "dagster dev": [str(DAGSTER_BIN), "dev"],  # [tool.dagster] in pyproject.toml
    "dagster dev -w workspace.yaml": [str(DAGSTER_BIN), "dev", "-w", "workspace.yaml"],
}


def test_the_demo_way_shows_one_location_and_a_clean_console(dagster_server: DagsterServer):
    assert dagster_server.command == "dg dev"
    assert dagster_server.location_names() == [LOCATION_NAME]
    log = dagster_server.log()
    assert SUPERSEDED not in log
    assert FOREIGN_DAGSTER_YAML not in log
    assert "does not match" not in log  # the project's virtualenv is the active one


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
