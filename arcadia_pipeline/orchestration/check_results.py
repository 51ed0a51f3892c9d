"""What every asset check shares: the days it covers and how a failure names the ids."""

from collections.abc import Callable
from datetime import date

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue
from sqlalchemy import Connection

from arcadia_pipeline.orchestration.partitions import days_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource

MAX_LISTED = 50


def window_days(context: AssetCheckExecutionContext) -> list[date]:
    return days_in_window(context.partition_time_window)


def failing_ids(problems: list[str], checked_days: int) -> AssetCheckResult:
    """Pass when there are no problems; otherwise fail (severity ERROR) listing them."""
    listed = problems[:MAX_LISTED]
    more = [f"… and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(listed + more) if problems else None,
        metadata={
            "checked_days": MetadataValue.int(checked_days),
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
    """Run `find` (problems of one day, as readable ids) over the run's window."""
    days = window_days(context)
    with warehouse.engine.connect() as connection:
        problems = [f"{day}: {problem}" for day in days for problem in find(connection, day)]
    return failing_ids(problems, checked_days=len(days))
