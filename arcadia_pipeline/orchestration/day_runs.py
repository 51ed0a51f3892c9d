"""One transaction per day: the unit of replacement of every daily asset, and failures that
name the days they stop.

A failure says which asset and which days (`usage_records failed on 2025-03-04: …`), on
every attempt. Bad source data fails at once; only a transient database error (a lost
connection, a deadlock) is left to the asset's retry policy, which outlasts a minute-long
outage (orchestration/retry.py). A retry starts the window again: days already committed
are replaced by identical ones.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar

from dagster import AssetExecutionContext, Failure
from sqlalchemy import Connection, Table

from arcadia_pipeline.db.schema import day_writes
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.orchestration.day_lineage import hold_day
from arcadia_pipeline.orchestration.retry import is_transient
from arcadia_pipeline.orchestration.run_launcher import tag_worker

T = TypeVar("T")


class TransientFailure(Exception):
    """Work that failed on something a retry may heal; the message names the days."""


def days_text(days: Sequence[date]) -> str:
    first, last = min(days), max(days)
    return f"{first}" if first == last else f"days {first} to {last}"


@contextmanager
def failures_named(prefix: str) -> Iterator[None]:
    """Any failure inside starts with `prefix` (what failed, on which days): bad data and
    bugs as a Dagster Failure that is not retried, transient database errors as a
    TransientFailure that the retry policy retries."""
    try:
        yield
    except (Failure, TransientFailure):
        raise  # already named by an inner (per-day) scope
    except Exception as error:
        message = f"{prefix}: {error}"
        if is_transient(error):
            raise TransientFailure(message) from error
        raise Failure(description=message, allow_retries=False) from error


def failures_naming(asset: str, days: Sequence[date]):
    """failures_named for an asset's days: `usage_records failed on 2025-03-04: …`."""
    return failures_named(f"{asset} failed on {days_text(days)}")


@contextmanager
def working_on(context: AssetExecutionContext, days: Sequence[date]) -> Iterator[None]:
    """The body of a daily asset: its run says which process works on it (for run
    monitoring), and any failure names the asset and the days."""
    asset = context.asset_key.to_user_string()
    with failures_naming(asset, days):
        tag_worker(context)
        yield


def replace_each_day(
    context: AssetExecutionContext,
    connection: Connection,
    written: Sequence[Table],
    days: list[date],
    replace: Callable[[Connection, date, str], T],
    describe: Callable[[T], Mapping[str, Any]],
) -> list[T]:
    """Replace each day of the `written` tables in turn, each in its own transaction holding
    the day (the first table names the asset: orchestration/day_lineage.py), recording
    `describe(result)` as that partition's metadata (the numbers the UI plots per
    partition), then refresh the tables' statistics for the checks and downstream assets.

    Days already done stay committed (each is complete on its own); the failing day is
    rolled back whole.
    """
    asset = written[0].name
    results = []
    for day in days:
        with failures_naming(asset, [day]), connection.begin():
            hold_day(connection, asset, day, context.run_id)
            result = replace(connection, day, context.run_id)
        context.log.info(f"{asset}: {day.isoformat()} replaced")
        context.add_asset_metadata(describe(result), partition_key=day.isoformat())
        results.append(result)
    analyze_written(connection, [*written, day_writes], days)
    return results
