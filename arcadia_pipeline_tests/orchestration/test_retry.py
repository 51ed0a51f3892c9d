"""Only what a retry can heal is retried: real errors from a real PostgreSQL."""

import socket

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.orchestration.retry import is_transient


def raised(engine, sql: str) -> SQLAlchemyError:
    with pytest.raises(SQLAlchemyError) as error, engine.begin() as connection:
        connection.execute(text(sql))
    return error.value


def test_a_refused_connection_is_transient():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = create_engine(f"postgresql+psycopg2://nobody@127.0.0.1:{port}/none")
    assert is_transient(raised(engine, "SELECT 1"))


def test_a_connection_killed_mid_statement_is_transient(engine):
    with engine.connect() as victim:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.begin() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(SQLAlchemyError) as error:
            victim.execute(text("SELECT 1"))
    assert is_transient(error.value)


def test_a_deadlock_is_transient(engine):
    error = raised(
        engine,
        "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'deadlock_detected'; END $$",
    )
    assert is_transient(error)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 / 0",
        "SELECT CAST('1e25' AS numeric(38, 18))",
        "INSERT INTO metering.plans VALUES (NULL, 1)",
        "SELECT * FROM metering.no_such_table",
    ],
)
def test_data_errors_and_bugs_are_not_transient(engine, sql):
    assert not is_transient(raised(engine, sql))


def test_bad_source_data_is_not_transient():
    assert not is_transient(BadSourceData("resource x: size_gb is missing"))
