"""A warehouse database on a Citus cluster: one coordinator and its workers.

What a cluster's operator does before `arcadia-pipeline db upgrade` (a managed Citus has it
done): the database exists on every node with the `citus` extension in each, and the
coordinator knows itself and its workers. `scripts/pg-cluster.sh` does it for the local
cluster (`ARCADIA_PG_CITUS=1`), the tests and the benchmark for their throwaway databases.

Nodes are addressed as the coordinator's superuser URL with another host and port: the
local cluster gives every node the same superuser and password. Node-to-node connections
authenticate with the server's password file (the cluster script's PGPASSFILE).

Citus keeps the extension, its node list and its distributed objects per database, and by
default neither propagates CREATE DATABASE nor DROP DATABASE: each is done on every node.

Run as a script by the cluster script (ARCADIA_ADMIN_DATABASE_URL: the coordinator's
superuser URL, never on a command line):
    python -m arcadia_pipeline.db.citus attach DATABASE OWNER HOST:PORT [HOST:PORT ...]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from sqlalchemy import URL, text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db.engine import make_engine


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_workers(addresses: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """'HOST:PORT' strings -> (host, port) pairs; ValueError naming a malformed one."""
    workers = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Citus worker is HOST:PORT, got {address!r}")
        workers.append((host, int(port)))
    return tuple(workers)


def _node_url(admin_url: str | URL, host: str, port: int, database: str) -> str:
    url = make_url(admin_url).set(host=host, port=port, database=database)
    return url.render_as_string(hide_password=False)


def _autocommit(url: str):
    return make_engine(url).execution_options(isolation_level="AUTOCOMMIT").connect()


def _nodes(admin_url: str, workers: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    coordinator = make_url(admin_url)
    return [*workers, (coordinator.host, coordinator.port)]  # the coordinator last


def create_database(
    admin_url: str, name: str, owner: str, workers: Sequence[tuple[str, int]]
) -> None:
    """(Re)create database `name` on the coordinator of `admin_url` and on every worker,
    owned by `owner`, then attach it (`attach_database`). Its rows are gone."""
    for host, port in _nodes(admin_url, workers):
        with _autocommit(_node_url(admin_url, host, port, "postgres")) as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {_quote(name)} OWNER {_quote(owner)}"))
    attach_database(admin_url, name, owner, workers)


def drop_database(admin_url: str, name: str, workers: Sequence[tuple[str, int]]) -> None:
    """Drop database `name` on the coordinator and on every worker (the missing: skipped)."""
    for host, port in reversed(_nodes(admin_url, workers)):  # the coordinator first
        make_engine(_node_url(admin_url, host, port, name)).dispose()
        with _autocommit(_node_url(admin_url, host, port, "postgres")) as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)"))


def attach_database(
    admin_url: str, name: str, owner: str, workers: Sequence[tuple[str, int]]
) -> None:
    """Make the existing database `name` (on every node) a Citus database: the extension on
    each worker, then on the coordinator, the workers already registered at their current
    addresses, the coordinator's own address (it holds the reference tables' placements too)
    and the workers not yet registered. Idempotent; `workers` in the order
    they were first attached, so that a worker now on another port is moved, not added.

    The owner is handed back and forth last: that makes the role a distributed object, so
    `db upgrade`, run as the owner, may create functions (Citus would otherwise first
    propagate the role itself, which only a superuser may)."""
    coordinator = make_url(admin_url)
    for host, port in workers:  # before the coordinator's extension connects to them
        with _autocommit(_node_url(admin_url, host, port, name)) as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS citus"))
    url = _node_url(admin_url, coordinator.host, coordinator.port, name)
    with _autocommit(url) as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS citus"))
        # The workers in the order first attached: a worker restarted on another port (its
        # own taken) keeps its node id, and with it its shards, at its new address. Before
        # anything else, which would sync the metadata to it at the old one.
        registered = connection.execute(
            text(
                "SELECT nodeid, nodename, nodeport FROM pg_dist_node"
                " WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeid"
            )
        ).all()
        moved = [
            (node_id, host, port)
            for (node_id, *address), (host, port) in zip(registered, workers, strict=False)
            if tuple(address) != (host, port)
        ]
        for node_id, host, port in moved:
            connection.execute(
                text("SELECT citus_update_node(:id, :host, :port)"),
                {"id": node_id, "host": host, "port": port},
            )
        if moved:  # Citus resyncs the workers in the background; what follows needs it done
            connection.execute(text("SELECT start_metadata_sync_to_all_nodes()"))
        connection.execute(
            text("SELECT citus_set_coordinator_host(:host, :port)"),
            {"host": coordinator.host, "port": coordinator.port},
        )
        for host, port in workers[len(registered) :]:
            connection.execute(
                text("SELECT citus_add_node(:host, :port)"), {"host": host, "port": port}
            )
        connection.execute(text(f"ALTER DATABASE {_quote(name)} OWNER TO CURRENT_USER"))
        connection.execute(text(f"ALTER DATABASE {_quote(name)} OWNER TO {_quote(owner)}"))


def is_citus(connection) -> bool:
    """Whether the connection's database has the citus extension with at least one worker
    (a coordinator alone distributes nothing)."""
    return bool(
        connection.execute(
            text("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')")
        ).scalar_one()
        and connection.execute(
            text("SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0")
        ).scalar_one()
    )


def main(argv: Sequence[str]) -> int:
    if len(argv) < 4 or argv[0] != "attach":
        print(__doc__.rsplit("\n\n", 1)[-1], file=sys.stderr)
        return 2
    admin_url = os.environ.get("ARCADIA_ADMIN_DATABASE_URL")
    if not admin_url:
        print(
            "citus: ARCADIA_ADMIN_DATABASE_URL (the coordinator's superuser) is not set",
            file=sys.stderr,
        )
        return 2
    attach_database(admin_url, argv[1], argv[2], parse_workers(argv[3:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
