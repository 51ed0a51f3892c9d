"""One transaction per day: the unit of replacement of every asset."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from dagster import AssetExecutionContext, Failure
from sqlalchemy import Connection

from arcadia_pipeline.db.locks import lock_day


class DayFailed(Exception):
    """A day of a window failed; the days before it stay committed, it is rolled back."""


@contextmanager
def day_transaction(
    context: AssetExecutionContext, connection: Connection, table: str, day: date
) -> Iterator[None]:
    """Replace one day of `table` in its own transaction, holding the day's lock.

    Days already done in this run stay committed (each is complete on its own); the failing
    day is rolled back whole, and the run fails saying which day and why.
    """
    try:
        with connection.begin():
            lock_day(connection, table, day)
            yield
    except Failure:
        raise
    except Exception as error:
        raise DayFailed(f"{table} failed on {day.isoformat()}: {error}") from error
    context.log.info(f"{table}: {day.isoformat()} replaced")
