"""One transaction per day: the unit of replacement of every daily asset."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar

from dagster import AssetExecutionContext, Failure
from sqlalchemy import Connection, Table

from arcadia_pipeline.db.locks import lock_day
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.orchestration.retry import is_transient

T = TypeVar("T")


class DayFailed(Exception):
    """A day failed on something a retry may heal (a lost connection, a deadlock); the days
    before it stay committed, it is rolled back."""


@contextmanager
def failing_without_retry_on_bad_data() -> Iterator[None]:
    """BadSourceData becomes a Dagster Failure that is not retried: it would fail the same
    way, and the message (rows and days) is what the engineer needs."""
    try:
        yield
    except BadSourceData as error:
        raise Failure(description=str(error), allow_retries=False) from error


@contextmanager
def day_transaction(
    context: AssetExecutionContext, connection: Connection, table: str, day: date
) -> Iterator[None]:
    """Replace one day of `table` in its own transaction, holding the day's lock.

    Days already done in this run stay committed (each is complete on its own); the failing
    day is rolled back whole, and the run fails saying which day and why. Only a transient
    database error is left to the retry policy; bad data and bugs fail at once.
    """
    try:
        with connection.begin():
            lock_day(connection, table, day)
            yield
    except Failure:
        raise
    except Exception as error:
        message = f"{table} failed on {day.isoformat()}: {error}"
        if is_transient(error):
            raise DayFailed(message) from error
        raise Failure(description=message, allow_retries=False) from error
    context.log.info(f"{table}: {day.isoformat()} replaced")


def replace_each_day(
    context: AssetExecutionContext,
    connection: Connection,
    written: Sequence[Table],
    days: list[date],
    replace: Callable[[Connection, date, str], T],
    describe: Callable[[T], Mapping[str, Any]],
) -> list[T]:
    """Replace each day of the `written` tables in turn (the first names the day's lock),
    recording `describe(result)` as that partition's metadata (the numbers the UI plots per
    partition), then refresh the tables' statistics for the checks and downstream assets."""
    results = []
    for day in days:
        with day_transaction(context, connection, written[0].name, day):
            result = replace(connection, day, context.run_id)
        context.add_asset_metadata(describe(result), partition_key=day.isoformat())
        results.append(result)
    analyze_written(connection, written, days)
    return results
