"""What every asset check shares: the days it covers and how a failure names the ids."""

from collections.abc import Callable
from datetime import date

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue
from sqlalchemy import Connection

from arcadia_pipeline.orchestration.day_lineage import is_stale, lock_for_reading
from arcadia_pipeline.orchestration.partitions import days_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource

MAX_LISTED = 50


def window_days(context: AssetCheckExecutionContext) -> list[date]:
    return days_in_window(context.partition_time_window)


def failing_ids(problems: list[str], checked_days: int, stale_days: int = 0) -> AssetCheckResult:
    """Pass when there are no problems; otherwise fail (severity ERROR) listing them."""
    listed = problems[:MAX_LISTED]
    more = [f"… and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(listed + more) if problems else None,
        metadata={
            "checked_days": MetadataValue.int(checked_days),
            # Days a later run re-wrote an input of after this one read it: their figures
            # are refreshed by missed_days_sensor, so they are not this run's problem.
            "stale_days_skipped": MetadataValue.int(stale_days),
            "problems": MetadataValue.int(len(problems)),
            **(
                {"offending": MetadataValue.md("\n".join(f"- {p}" for p in listed + more))}
                if problems
                else {}
            ),
        },
    )


def check_each_day(
    context: AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    find: Callable[[Connection, date], list[str]],
) -> AssetCheckResult:
    """Run `find` (problems of one day, as readable ids) over the run's window, each day
    while no run writes it or what it reads; a day some input of which was re-written after
    it was (a concurrent correction) is stale, not wrong, and is skipped."""
    asset = context.check_specs[0].asset_key.to_user_string()
    days = window_days(context)
    problems, stale = [], 0
    with warehouse.engine.connect() as connection:
        for day in days:
            with connection.begin():
                lock_for_reading(connection, asset, day)
                if is_stale(connection, asset, day):
                    stale += 1
                    continue
                problems += [f"{day}: {problem}" for problem in find(connection, day)]
    return failing_ids(problems, checked_days=len(days) - stale, stale_days=stale)
