"""One transaction per day: the unit of replacement of every daily asset.

A step's day is replaced whole in its own transaction holding the day (days/locks.py); a
failure names the asset and the day (`usage_records failed on 2025-03-04: …`), on every
attempt. Days already done stay committed (each is complete on its own); the failing day is
rolled back whole. A retry starts the window again: days already committed are replaced by
identical ones.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar

from dagster import AssetExecutionContext
from sqlalchemy import Connection

from arcadia_pipeline.days.locks import hold_day
from arcadia_pipeline.days.steps import DailyStep
from arcadia_pipeline.days.verdicts import record_failure
from arcadia_pipeline.db.schema import day_writes
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.orchestration.failures import failures_naming
from arcadia_pipeline.orchestration.partitions import days_tag, run_days
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.run_launcher import tag_run, tag_worker
from arcadia_pipeline.retention.expiry import refuse_removed_days

T = TypeVar("T")


@contextmanager
def working_on(
    context: AssetExecutionContext,
    step: DailyStep,
    days: Sequence[date],
    warehouse: WarehouseResource,
) -> Iterator[None]:
    """The body of a daily asset: its run says which process works on it (for run
    monitoring) and which days (DAYS_TAG, however it was launched), a day of a month
    retention removed records of is refused, any failure names the step's asset and the
    days, and the days it did not write are stamped as failed (a month does not close on
    them until a run writes them)."""
    try:
        with failures_naming(step.asset, days):
            tag_worker(context)
            tag_run(context, days_tag(days[0], days[-1]))
            with warehouse.engine.connect() as connection:
                refuse_removed_days(connection, days)
            yield
    except Exception as error:
        try:
            with warehouse.engine.begin() as connection:
                record_failure(connection, step, days, context.run_id, str(error))
        except Exception as unrecorded:  # the database itself may be what failed
            context.log.warning(f"{step.asset}: failed days not recorded: {unrecorded}")
        raise


def replace_each_day(
    context: AssetExecutionContext,
    connection: Connection,
    step: DailyStep,
    days: list[date],
    replace: Callable[[Connection, date, str], T],
    describe: Callable[[T], Mapping[str, Any]],
) -> list[T]:
    """Replace each day of the step's tables in turn, each in its own transaction holding
    the day, recording `describe(result)` as that partition's metadata (the numbers the UI
    plots per partition), then refresh the tables' statistics for the checks and downstream
    assets."""
    results = []
    for day in days:
        with failures_naming(step.asset, [day]), connection.begin():
            hold_day(connection, step, day, context.run_id)
            result = replace(connection, day, context.run_id)
        context.log.info(f"{step.asset}: {day.isoformat()} replaced")
        context.add_asset_metadata(describe(result), partition_key=day.isoformat())
        results.append(result)
    analyze_written(connection, [*step.writes, day_writes], days)
    return results


def replace_days(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    step: DailyStep,
    replace: Callable[[Connection, date, str], T],
    describe: Callable[[T], Mapping[str, Any]],
) -> list[T]:
    """The whole body of a daily asset that only replaces its run's days: working_on the
    run's days, each replaced by replace_each_day."""
    days = run_days(context)
    with working_on(context, step, days, warehouse), warehouse.engine.connect() as connection:
        return replace_each_day(context, connection, step, days, replace, describe)
