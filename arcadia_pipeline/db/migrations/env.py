"""Alembic environment: migrates the `metering` schema of ARCADIA_DATABASE_URL."""

from alembic import context
from sqlalchemy import text

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import SCHEMA


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        with make_engine(url).connect() as connection:
            _run(connection)
            connection.commit()
    else:
        _run(connection)


def _run(connection) -> None:
    # The version table lives in the schema it versions, so that schema must exist first.
    # Only when it is missing: even IF NOT EXISTS needs CREATE on the database, which a
    # pipeline login that owns the schema but not the database lacks.
    if connection.execute(text("SELECT to_regnamespace(:s)"), {"s": SCHEMA}).scalar() is None:
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    # Committed, so each migration below is a transaction of its own (not one transaction
    # for all): on Citus, distributing a table propagates its schema to the workers over
    # connections of their own, which must see it.
    connection.commit()
    context.configure(
        connection=connection,
        version_table_schema=SCHEMA,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `db upgrade`")
run_migrations_online()
