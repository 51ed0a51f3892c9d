"""A real PostgreSQL for every test that touches data.

`make test` starts a throwaway cluster and exports ARCADIA_DATABASE_URL; each pytest session
creates its own database on that server (so sessions never share rows), migrates it, and
points ARCADIA_DATABASE_URL at it for the code under test.
"""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import upgrade
from arcadia_pipeline.db.schema import OUTPUT_TABLES
from arcadia_pipeline.inventory.source import create_source_tables

# Rows the tests write; config, kind map and plan catalog are reset to the migration's.
DATA_TABLES = (
    "arcadia.resource_versions",
    "arcadia.deployments",
    *(table.fullname for table in OUTPUT_TABLES),
)


@pytest.fixture(scope="session")
def database_url():
    server_url = os.getenv("ARCADIA_DATABASE_URL")
    if not server_url:
        pytest.fail("ARCADIA_DATABASE_URL is not set: run the tests with `make test`")
    name = f"arcadia_test_{os.getpid()}"
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    with make_engine(url).begin() as connection:
        create_source_tables(connection)
    saved = {key: os.environ.get(key) for key in ("ARCADIA_DATABASE_URL",)}
    os.environ["ARCADIA_DATABASE_URL"] = url
    os.environ.pop("ARCADIA_SOURCE_DATABASE_URL", None)
    yield url
    make_engine(url).dispose()
    os.environ["ARCADIA_DATABASE_URL"] = saved["ARCADIA_DATABASE_URL"] or server_url
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def engine(database_url):
    """The session's database, emptied of test rows and with the shipped config restored."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)}"))
        connection.execute(
            text("UPDATE metering.metering_config SET granularity = 'day', retention_days = 400")
        )
        connection.execute(
            text(
                "DELETE FROM metering.kind_map WHERE inventory_kind NOT IN "
                "('droplet', 'spaces_bucket', 'snapshot', 'droplet_backup', 'dns_zone')"
            )
        )
    return engine


@pytest.fixture
def scratch_database(engine):
    """An empty second database on the same server, dropped afterwards."""
    name = f"arcadia_scratch_{os.getpid()}"
    url = make_url(engine.url.render_as_string(hide_password=False)).set(database=name)
    url = url.render_as_string(hide_password=False)
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield url
    make_engine(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def source_database(scratch_database):
    """A second database on the same server holding the `arcadia` source relations."""
    with make_engine(scratch_database).begin() as connection:
        create_source_tables(connection)
    return scratch_database
