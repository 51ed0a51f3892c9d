"""How every daily check runs: each day of the run's window in its own transaction, its
verdict recorded in the warehouse, and a failure that names the ids (all counted, the first
MAX_LISTED listed)."""

from __future__ import annotations

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue

from arcadia_pipeline.days.steps import DailyCheck, DailyStep, Problems
from arcadia_pipeline.days.verdicts import check_day
from arcadia_pipeline.db.schema import day_checks
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.orchestration.partitions import days_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource


def failing_ids(problems: Problems, checked: int, skipped: int, unit: str) -> AssetCheckResult:
    """Pass when there are no problems; otherwise fail (severity ERROR) listing the first
    MAX_LISTED of them, with `problems` the true count. `checked`/`skipped`: the days (or
    months) checked, and those skipped as stale."""
    listed = problems[:MAX_LISTED]
    more = problems.total - len(listed)
    lines = listed + ([f"… and {more} more"] if more > 0 else [])
    return AssetCheckResult(
        passed=problems.total == 0,
        description="; ".join(lines) if problems.total else None,
        metadata={
            f"checked_{unit}s": MetadataValue.int(checked),
            # Days a later run re-wrote an input of after this one read it: their figures
            # are refreshed by missed_days_sensor, so they are not this run's problem.
            f"stale_{unit}s_skipped": MetadataValue.int(skipped),
            "problems": MetadataValue.int(problems.total),
            **(
                {"offending": MetadataValue.md("\n".join(f"- {p}" for p in lines))}
                if problems.total
                else {}
            ),
        },
    )


def check_each_day(
    context: AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    step: DailyStep,
    check: DailyCheck,
) -> AssetCheckResult:
    """Run `check` over the run's window, each day while no run writes it or what it reads,
    recording its verdict; a day some input of which was re-written after it was (a
    concurrent correction) is stale, not wrong, and is skipped."""
    days = days_in_window(context.partition_time_window)
    problems, stale = Problems(), 0
    with warehouse.engine.connect() as connection:
        for day in days:
            with connection.begin():
                found = check_day(connection, step, check, day, context.run.run_id)
            if found is None:
                stale += 1
                continue
            problems += found.prefixed(f"{day}: ")
        analyze_written(connection, [day_checks], days)  # the close-status query reads them
    return failing_ids(problems, checked=len(days) - stale, skipped=stale, unit="day")
