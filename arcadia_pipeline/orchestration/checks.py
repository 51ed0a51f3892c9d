"""How every daily check runs: each day of the run's window in its own transaction, its
verdict recorded in the warehouse, and a failure that names the ids (all counted, the first
MAX_LISTED listed).

Dagster 1.13 keeps a check's evaluation per partition only for a run of one `dagster/partition`
(AssetCheckResult takes the step's partition key, asset_check_result.py); a run over a range
(a backfill, a sensor's catch-up, even of one day) gets one evaluation for its whole window,
and the UI shows its days as Skipped. So the evaluation says which days passed, failed or
were skipped as stale (`days_passed`, `days_failed`, `stale_days`): what "Latest execution"
and the check's history show for each day of a range."""

from __future__ import annotations

from datetime import date

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue

from arcadia_pipeline.days.steps import DailyCheck, DailyStep, Problems
from arcadia_pipeline.days.verdicts import check_day
from arcadia_pipeline.db.schema import day_checks
from arcadia_pipeline.db.statistics import analyze_written
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.orchestration.partitions import days_in_window
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.utc import days_text


def failing_ids(
    problems: Problems, checked: int, skipped: int, unit: str, days: dict | None = None
) -> AssetCheckResult:
    """Pass when there are no problems; otherwise fail (severity ERROR) listing the first
    MAX_LISTED of them, with `problems` the true count. `checked`/`skipped`: the days (or
    months) checked, and those skipped as stale; `days`: more metadata (each day's outcome)."""
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
            **(days or {}),
            **(
                {"offending": MetadataValue.md("\n".join(f"- {p}" for p in lines))}
                if problems.total
                else {}
            ),
        },
    )


def days_by_outcome(verdicts: dict[date, Problems | None]) -> dict:
    """Each day of the window by its verdict, as ranges of days ('-' for none)."""

    def of(outcome: str) -> MetadataValue:
        days = [day for day, found in verdicts.items() if _outcome(found) == outcome]
        return MetadataValue.text(days_text(days) or "-")

    return {"days_passed": of("passed"), "days_failed": of("failed"), "stale_days": of("stale")}


def _outcome(found: Problems | None) -> str:
    """A day's verdict: stale (None: not judged), passed or failed."""
    return "stale" if found is None else "failed" if found.total else "passed"


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
    verdicts: dict[date, Problems | None] = {}
    with warehouse.engine.connect() as connection:
        for day in days:
            with connection.begin():
                verdicts[day] = check_day(connection, step, check, day, context.run.run_id)
        analyze_written(connection, [day_checks], days)  # the close-status query reads them
    problems = Problems()
    for day, found in verdicts.items():
        if found is not None:
            problems += found.prefixed(f"{day}: ")
    stale = sum(found is None for found in verdicts.values())
    return failing_ids(
        problems, len(days) - stale, stale, unit="day", days=days_by_outcome(verdicts)
    )
