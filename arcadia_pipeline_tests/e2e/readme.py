"""What the README tests share: the README's sections and shell blocks, a fresh warehouse and
Dagster instance for them, and running a README command as written (bash, from the repo
root)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from arcadia_pipeline_tests.e2e.conftest import (
    REPO_ROOT,
    dagster_env,
    fresh_database,
    make_dagster_home,
    migrated_warehouse,
)

README = REPO_ROOT / "README.md"
COMMAND_TIMEOUT_S = 900


def section(title: str) -> str:
    """The text of the README's `## title` section, up to the next `## ` heading."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def shell_blocks(text: str) -> list[str]:
    """The ```sh fenced blocks of `text`, their contents."""
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def logical_lines(block: str) -> list[str]:
    """The block's lines, a line ending in a backslash joined with the next (as bash reads
    them); blank lines left out."""
    lines, current = [], ""
    for line in block.splitlines():
        current += line
        if line.endswith("\\"):
            current += "\n"
            continue
        if current.strip():
            lines.append(current)
        current = ""
    return lines


@dataclass
class Ran:
    command: str
    returncode: int
    stdout: str
    stderr: str

    def failure(self) -> str:
        return (
            f"`{self.command}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


def run_shell(script: str, env: dict) -> Ran:
    """`script` run by bash (-e, -o pipefail) from the repo root, as a user types it."""
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    return Ran(script, result.returncode, result.stdout, result.stderr)


@contextlib.contextmanager
def fresh_demo_environment(
    server_url: str, admin_url: str, name: str, home: Path
) -> Iterator[dict]:
    """A new warehouse database (migrated, as `make demo` leaves it) and a new Dagster
    instance, both dropped afterwards: the environment the README's shell has once it is
    pointed at the demo (the warehouse's URL, DAGSTER_HOME, the project venv active)."""
    with (
        migrated_warehouse(server_url, admin_url, name) as url,
        fresh_database(url, f"{name}_dagster") as dagster_url,
    ):
        env = dagster_env(url, dagster_url, make_dagster_home(home))
        env.pop("ARCADIA_METERING_START_DATE")  # the README's shell sets it
        yield env


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}"
