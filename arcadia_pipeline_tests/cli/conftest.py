"""Fixtures of the CLI tests."""

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.source import source_metadata
from arcadia_pipeline_tests.conftest import create_database, drop_database


@pytest.fixture
def foreign_source_url(server_url: str, admin_url: str) -> Iterator[str]:
    """A database of its own whose arcadia source tables someone else made (unmarked: not
    create_source_tables), empty; dropped after the test."""
    name = f"arcadia_foreign_{os.getpid()}"
    create_database(admin_url, name, make_url(server_url).username)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE SCHEMA arcadia"))
            source_metadata.create_all(connection)
        yield url
    finally:
        engine.dispose()
        drop_database(admin_url, name)
