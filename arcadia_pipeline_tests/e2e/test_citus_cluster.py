"""The README's Citus cluster, as written: `scripts/pg-cluster.sh` starts a coordinator and two
workers, `db upgrade` distributes the schema on it, `stop` stops all three and `destroy`
deletes them; without Citus and its installer the script stops in one line, before making
anything."""

import os
import shlex
import socket
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from arcadia_pipeline.db import citus
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline_tests.db.test_citus import SHARDED
from arcadia_pipeline_tests.e2e.conftest import REPO_ROOT
from arcadia_pipeline_tests.e2e.readme import section, shell_blocks

pytestmark = pytest.mark.citus_only

SCRIPT = REPO_ROOT / "scripts" / "pg-cluster.sh"
README_DIR = ".local/pg-citus"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the test clusters' variables (the script's own only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCADIA_", "DAGSTER_"))}
    return {**env, "ARCADIA_PG_FSYNC": "off", **extra}


def cluster(command: str, directory: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command, str(directory)],
        cwd=REPO_ROOT,
        env=clean_env(**extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def readme_block() -> str:
    [block] = [
        b for b in shell_blocks(section("Pointing it at a real Arcadia database"))
        if "ARCADIA_PG_CITUS=1" in b
    ]  # fmt: skip
    return block


def running(directory: Path) -> dict[str, bool]:
    """Each node's data directory (data, worker1, worker2) -> whether its server runs."""
    return {
        node: (directory / node / "postmaster.pid").exists()
        for node in ("data", "worker1", "worker2")
    }


def test_the_readme_block_starts_three_nodes_and_db_upgrade_distributes(tmp_path):
    directory = tmp_path / "citus"
    block = readme_block().replace(README_DIR, str(directory))
    try:
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", f"{block}\nenv | grep '^ARCADIA_'"],
            cwd=REPO_ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
        exported = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
        workers = citus.parse_workers(exported["ARCADIA_CITUS_WORKERS"].split(","))
        assert len(workers) == 2
        assert running(directory) == {"data": True, "worker1": True, "worker2": True}
        engine = make_engine(exported["ARCADIA_DATABASE_URL"])
        with engine.connect() as connection:
            assert citus.is_citus(connection)
            sharded = connection.execute(
                text(
                    "SELECT c.relname FROM pg_dist_partition p"
                    " JOIN pg_class c ON c.oid = p.logicalrelid"
                    " WHERE p.partmethod = 'h' AND NOT c.relispartition"
                )
            ).scalars()
            assert set(sharded) == SHARDED  # the tables db/test_citus.py names  # fmt: skip
            placements = connection.execute(
                text(
                    "SELECT DISTINCT n.nodeport FROM pg_dist_placement p"
                    " JOIN pg_dist_node n USING (groupid)"
                    " JOIN pg_dist_shard s USING (shardid)"
                    " WHERE s.logicalrelid = 'metering.usage_records'::regclass"
                )
            ).scalars()
            assert sorted(placements) == sorted(port for _, port in workers)
        engine.dispose()

        assert cluster("stop", directory).returncode == 0
        assert running(directory) == {"data": False, "worker1": False, "worker2": False}

        # Restarted with worker1's port taken: it comes up elsewhere, and the coordinator
        # finds its shards there (the same node, moved; not a third worker).
        with socket.socket() as taken:
            # SO_REUSEADDR: the stopped worker's connections may hold the port in TIME_WAIT.
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taken.bind(workers[0])
            taken.listen()
            restarted = cluster("start", directory, ARCADIA_PG_CITUS="1")
        assert restarted.returncode == 0, restarted.stderr[-3000:]
        exported = dict(
            shlex.split(line)[1].split("=", 1)
            for line in restarted.stdout.splitlines()
            if line.startswith("export ")
        )
        moved = citus.parse_workers(exported["ARCADIA_CITUS_WORKERS"].split(","))
        assert moved[0] != workers[0] and moved[1] == workers[1]
        engine = make_engine(exported["ARCADIA_DATABASE_URL"])
        with engine.connect() as connection:
            nodes = connection.execute(
                text("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0"
                     " ORDER BY nodeid")
            ).all()  # fmt: skip
            every_shard = connection.execute(text("SELECT count(*) FROM metering.usage_records"))
            assert every_shard.scalar_one() == 0
        engine.dispose()
        assert [tuple(node) for node in nodes] == list(moved)
        assert cluster("stop", directory).returncode == 0
    finally:
        destroyed = cluster("destroy", directory)
    assert destroyed.returncode == 0, destroyed.stderr
    assert not directory.exists()


def test_without_citus_or_its_installer_it_stops_in_one_line_having_made_nothing(tmp_path):
    # A PostgreSQL whose lib directory has no citus.so: the system's binaries, linked.
    bindir = tmp_path / "pg" / "bin"
    (tmp_path / "pg" / "lib").mkdir(parents=True)
    bindir.mkdir()
    system = Path(
        subprocess.run(
            ["bash", "-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    for binary in system.iterdir():
        (bindir / binary.name).symlink_to(binary)
    directory = tmp_path / "citus"
    refused = cluster(
        "start",
        directory,
        ARCADIA_PG_CITUS="1",
        ARCADIA_PG_BINDIR=str(bindir),
        ARCADIA_CITUS_INSTALLER=str(tmp_path / "no-installer.sh"),
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith("pg-cluster: Citus is not installed for postgres (PostgreSQL) ")
    assert "managed Citus" in line and "install-citus.sh" in line
    assert not (directory / "data" / "PG_VERSION").exists()
    assert not (directory / "citus").exists()
