"""A real PostgreSQL for every test that touches data.

`make test` starts a throwaway cluster and exports ARCADIA_DATABASE_URL (a login that is not a
superuser) and ARCADIA_ADMIN_DATABASE_URL (the superuser); each pytest session creates its own
database on that server as the superuser, owned by the ARCADIA_DATABASE_URL login (so
sessions never share rows), migrates it as that login, and points ARCADIA_DATABASE_URL at it
for the code under test: the suite runs with the privileges the pipeline has in production.
Without ARCADIA_ADMIN_DATABASE_URL, ARCADIA_DATABASE_URL does both.

On a Citus cluster (ARCADIA_CITUS_WORKERS, exported by `pg-cluster.sh` with
ARCADIA_PG_CITUS=1) every warehouse database is made on the coordinator and its workers, and
`db upgrade` distributes it. `make test` runs the `citus` tier there a second time, with the
same expectations; `citus_only` tests (what only a cluster has: shards, plans) run only
there and are deselected, saying so in the header, on a single node.
"""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db import citus
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import upgrade
from arcadia_pipeline.db.schema import (
    STATEMENT_TABLES,
    alerts,
    day_failures,
    retention_removals,
    source_findings,
    spend_alert_events,
    spend_alerts,
    terms_changes,
)
from arcadia_pipeline.db.source import create_source_tables
from arcadia_pipeline.db.terms import TERM_KEYS
from arcadia_pipeline.flow import DAILY_FLOW

# Rows the tests write; config, kind map and plan catalog are reset to the migration's.
DATA_TABLES = (
    "arcadia.resource_versions",
    "arcadia.deployment_versions",
    *(table.fullname for table in DAILY_FLOW.tables),
    # Each day's failed attempts: a test's must not speak for the next one's days.
    day_failures.fullname,
    # A closed month would refuse the catalog's reset (its terms never change).
    *(table.fullname for table in STATEMENT_TABLES),
    terms_changes.fullname,
    retention_removals.fullname,
    source_findings.fullname,
    alerts.fullname,  # an incident a test told must not keep the next test's silent
    spend_alerts.fullname,
    spend_alert_events.fullname,
)
# What the migrations ship, kept aside once per session (schema `shipped`) and put back
# before every test: a test may change them, and a kind or price a later migration adds is
# kept like the others.
CATALOG_TABLES = tuple(TERM_KEYS)


# The slow tiers, by folder: `make test-fast` leaves them out, `make test` (CI) runs them.
SLOW_TIERS = {"e2e": "e2e", "faults": "faults"}


def citus_workers() -> tuple[tuple[str, int], ...]:
    """The Citus workers of the test cluster ((host, port) pairs); () on a single node."""
    value = os.getenv("ARCADIA_CITUS_WORKERS", "")
    return citus.parse_workers(value.split(",")) if value else ()


def pytest_report_header() -> str:
    if citus_workers():
        return f"Citus cluster: coordinator and workers {os.environ['ARCADIA_CITUS_WORKERS']}"
    return "single-node PostgreSQL: the citus_only tests are deselected (no ARCADIA_CITUS_WORKERS)"


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test of a slow tier's folder with the tier's marker; off a Citus cluster,
    deselect the tests that need one (the header says so)."""
    for item in items:
        for folder, marker in SLOW_TIERS.items():
            if folder in item.path.parts:
                item.add_marker(getattr(pytest.mark, marker))
    if not citus_workers():
        needs_citus = [item for item in items if item.get_closest_marker("citus_only")]
        if needs_citus:
            config.hook.pytest_deselected(items=needs_citus)
            items[:] = [item for item in items if item not in needs_citus]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_database(admin_url: str, name: str, owner: str | None) -> None:
    """(Re)create database `name` as the admin, owned by `owner` (None: by the admin)."""
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        owned_by = f" OWNER {quote_identifier(owner)}" if owner else ""
        connection.execute(text(f"CREATE DATABASE {name}{owned_by}"))


def drop_database(admin_url: str, name: str) -> None:
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def create_warehouse_database(admin_url: str, name: str, owner: str) -> None:
    """(Re)create warehouse database `name` owned by `owner`: on a Citus cluster on every
    node, attached to the workers (its `db upgrade` then distributes it)."""
    if workers := citus_workers():
        citus.create_database(admin_url, name, owner, workers)
    else:
        create_database(admin_url, name, owner)


def drop_warehouse_database(admin_url: str, name: str) -> None:
    if workers := citus_workers():
        citus.drop_database(admin_url, name, workers)
    else:
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def server_url() -> str:
    """The cluster's ARCADIA_DATABASE_URL as the session started (its login, its server)."""
    url = os.getenv("ARCADIA_DATABASE_URL")
    if not url:
        pytest.fail("ARCADIA_DATABASE_URL is not set: run the tests with `make test`")
    return url


@pytest.fixture(scope="session")
def admin_url(server_url) -> str:
    """A superuser's URL on the same server, for creating databases and roles."""
    return os.getenv("ARCADIA_ADMIN_DATABASE_URL") or server_url


@pytest.fixture(scope="session")
def database_url(server_url, admin_url):
    name = f"arcadia_test_{os.getpid()}"
    create_warehouse_database(admin_url, name, make_url(server_url).username)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    with make_engine(url).begin() as connection:
        create_source_tables(connection)
        connection.execute(text("CREATE SCHEMA shipped"))
        for table in CATALOG_TABLES:
            connection.execute(
                text(f"CREATE TABLE shipped.{table.name} AS SELECT * FROM {table.fullname}")
            )
    saved = {key: os.environ.get(key) for key in ("ARCADIA_DATABASE_URL",)}
    os.environ["ARCADIA_DATABASE_URL"] = url
    os.environ.pop("ARCADIA_SOURCE_DATABASE_URL", None)
    yield url
    make_engine(url).dispose()
    os.environ["ARCADIA_DATABASE_URL"] = saved["ARCADIA_DATABASE_URL"] or server_url
    drop_warehouse_database(admin_url, name)


@pytest.fixture
def engine(database_url):
    """The session's database, emptied of test rows and with the shipped config restored."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        catalog = [table.fullname for table in CATALOG_TABLES]
        connection.execute(text(f"TRUNCATE {', '.join([*DATA_TABLES, *catalog])}"))
        for table in CATALOG_TABLES:  # plans before the plan items that refer to them
            connection.execute(
                text(f"INSERT INTO {table.fullname} SELECT * FROM shipped.{table.name}")
            )
    return engine


@pytest.fixture
def scratch_database(engine, admin_url):
    """An empty second database on the same server, owned by the session's login (its URL
    is that login's), dropped afterwards."""
    name = f"arcadia_scratch_{os.getpid()}"
    create_database(admin_url, name, engine.url.username)
    url = engine.url.set(database=name).render_as_string(hide_password=False)
    yield url
    make_engine(url).dispose()
    drop_database(admin_url, name)


@pytest.fixture
def source_database(scratch_database):
    """A second database on the same server holding the `arcadia` source relations."""
    with make_engine(scratch_database).begin() as connection:
        create_source_tables(connection)
    return scratch_database


@pytest.fixture
def doubling_trigger(engine):
    """A fault in the write path: every droplet record lands with twice its hours (the
    within-bounds check then fails, naming the resource and its 48 hours)."""
    with engine.begin() as connection:
        # Citus allows a trigger on a distributed table only when told (a no-op elsewhere).
        connection.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
        # One statement each: Citus sends the function to its workers as one command.
        connection.execute(
            text(
                """
                CREATE FUNCTION metering.test_double_qty() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN NEW.qty := NEW.qty * 2; RETURN NEW; END $$
                """
            )
        )
        connection.execute(
            text(
                """
                CREATE TRIGGER test_double_qty BEFORE INSERT ON metering.usage_records
                FOR EACH ROW WHEN (NEW.resource_kind = 'droplet_hours')
                EXECUTE FUNCTION metering.test_double_qty()
                """
            )
        )
    yield
    for statement in (  # a transaction each: Citus drops the function on the workers apart
        "DROP TRIGGER test_double_qty ON metering.usage_records",
        "DROP FUNCTION metering.test_double_qty()",
    ):
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
            connection.execute(text(statement))
