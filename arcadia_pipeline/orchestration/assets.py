"""The asset and check factories every domain uses: a daily step's asset and its checks from
its declaration (days/steps.py), and the monthly asset, all on the partitions the settings
give, retried only on transient database errors."""

import inspect
import warnings
from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    BetaWarning,
    Definitions,
    PreviewWarning,
    asset,
    asset_check,
)
from sqlalchemy import Table

from arcadia_pipeline.days.steps import DailyCheck, DailyStep, FlowError
from arcadia_pipeline.db.source import SOURCE_TABLES
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.checks import check_each_day
from arcadia_pipeline.orchestration.failures import named_failures
from arcadia_pipeline.orchestration.partitions import (
    daily_backfill_policy,
    daily_partitions,
    monthly_partitions,
)
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.retry import DATABASE_RETRY_POLICY
from arcadia_pipeline.settings import Settings, settings

SPANS = {"day": "the same day", "month_to_date": "the month to date"}


def reads_text(step: DailyStep) -> str:
    """What each of the step's days reads, for its description in the UI (Dagster's own deps
    can only say 'the same day': a month-to-date mapping would split a range into runs)."""
    return "; ".join(f"{read.step.asset}: {SPANS[read.span]}" for read in step.reads)


def source_asset_key(table: Table) -> AssetKey:
    """A source table's asset: `arcadia/resource_versions`, `arcadia/deployment_versions`."""
    return AssetKey([table.schema, table.name])


def job_selection(checks: dict[str, tuple[str, ...]]) -> AssetSelection:
    """{asset: its check names} as a job's selection: the assets and exactly those checks.
    A job's runs (and its schedule's) leave out the freshness checks, which their sensor
    evaluates on its own (defs/freshness/)."""
    keys = [AssetCheckKey(AssetKey(a), name) for a, names in checks.items() for name in names]
    return AssetSelection.assets(*checks).without_checks() | AssetSelection.checks(*keys)


def daily_asset(step: DailyStep, loaded: Settings, compute: Callable, **kwargs) -> AssetsDefinition:
    """The step's asset: its key, deps from what it reads, its description, on the daily
    partitions, a range as one run (or as runs of at most ARCADIA_MAX_DAYS_PER_RUN days),
    database retries; `compute` is its body."""
    if step not in DAILY_FLOW.steps:  # else no job, catch-up, staleness or close would see it
        raise FlowError(f"{step.asset} is not a step of flow.DAILY_FLOW")
    reads = list(dict.fromkeys(read.step.asset for read in step.reads))
    sources = [source_asset_key(table) for table in SOURCE_TABLES] if step.reads_source else []
    description = "\n\n".join(filter(None, [step.description, inspect.getdoc(compute)])) + (
        f"\n\nEach day reads {reads_text(step)}." if reads else ""
    )
    with warnings.catch_warnings():
        # Range backfills are the design (one run per range, or per chunk), beta or not.
        warnings.simplefilter("ignore", BetaWarning)
        return asset(
            name=step.asset,
            deps=[*sources, *reads],
            description=description,
            partitions_def=daily_partitions(loaded),
            backfill_policy=daily_backfill_policy(loaded.max_days_per_run),
            retry_policy=DATABASE_RETRY_POLICY,
            kinds={"postgres"},
            **kwargs,
        )(named_failures(step.asset, compute))


def daily_step_definitions(step: DailyStep, compute: Callable, **kwargs) -> Definitions:
    """A defs module's whole Definitions for one daily step: its asset (`compute` its body)
    and its checks, built from the settings as they are now."""
    loaded = settings()
    return Definitions(
        assets=[daily_asset(step, loaded, compute, **kwargs)],
        asset_checks=daily_checks(step, loaded),
    )


def daily_checks(step: DailyStep, loaded: Settings) -> list:
    """The step's checks, each on the daily partitions, blocking its downstream assets, and
    recording each day's verdict in the warehouse (days/verdicts.py)."""
    return [_daily_check(step, check, loaded) for check in step.checks]


def _daily_check(step: DailyStep, check: DailyCheck, loaded: Settings):
    def evaluate(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> AssetCheckResult:
        return check_each_day(context, warehouse, step, check)

    with warnings.catch_warnings():
        # Checks per partition are how a day's check shows in the UI, preview or not.
        warnings.simplefilter("ignore", PreviewWarning)
        return asset_check(
            asset=step.asset,
            name=check.name,
            description=check.description,
            blocking=True,
            partitions_def=daily_partitions(loaded),
        )(evaluate)


def monthly_asset(name: str, loaded: Settings, compute: Callable, **kwargs) -> AssetsDefinition:
    """An asset on the monthly partitions: a range of months as one run, database retries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return asset(
            name=name,
            partitions_def=monthly_partitions(loaded),
            backfill_policy=BackfillPolicy.single_run(),
            retry_policy=DATABASE_RETRY_POLICY,
            kinds={"postgres"},
            **kwargs,
        )(named_failures(name, compute))


def monthly_check(asset_name: str, loaded: Settings, evaluate: Callable, **kwargs):
    """A blocking check on the monthly partitions of `asset_name`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return asset_check(
            asset=asset_name,
            blocking=True,
            partitions_def=monthly_partitions(loaded),
            **kwargs,
        )(evaluate)
