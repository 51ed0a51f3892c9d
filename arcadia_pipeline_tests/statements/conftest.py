"""The statement tables are not output of the daily assets (conftest.py empties those): the
tests here empty them too."""

import pytest
from sqlalchemy import text

from arcadia_pipeline.db.schema import STATEMENT_TABLES


@pytest.fixture
def engine(engine):
    """The session's database as conftest.py leaves it, with no statements either."""
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(t.fullname for t in STATEMENT_TABLES)}"))
    return engine
