"""Apply the Alembic migrations programmatically (the CLI's `db upgrade`, tests, the demo)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from arcadia_pipeline.db.engine import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# EXTRACT(epoch ...) is numeric (exact) from PostgreSQL 14 on; before, double precision.
MIN_SERVER_VERSION = 140000


class UnsupportedServer(ValueError):
    """The warehouse's PostgreSQL is too old for exact accrual."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser treats % as interpolation; URLs may carry %-escaped passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def check_server(database_url: str) -> None:
    with make_engine(database_url).connect() as connection:
        version = connection.execute(text("SHOW server_version_num")).scalar_one()
    if int(version) < MIN_SERVER_VERSION:
        raise UnsupportedServer(
            f"the warehouse runs PostgreSQL {int(version) // 10000}; the pipeline needs 14 or "
            "later (exact numeric EXTRACT(epoch ...))"
        )


def upgrade(database_url: str, revision: str = "head") -> None:
    check_server(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
