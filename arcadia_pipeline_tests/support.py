"""Builders shared by the tests: source rows, materialising days, reading results."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from dagster import AssetSelection, DagsterInstance, materialize
from sqlalchemy import Engine, text

from arcadia_pipeline import utc as utc_clock
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.definitions import defs as load_definitions
from arcadia_pipeline.defs.freshness.freshness_checks import FRESHNESS_CHECKS
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.partitions import range_tags

# The definitions as the code location builds them (settings read now, URLs at run time).
defs = load_definitions()
ASSETS = DAILY_FLOW.assets


def hold_clock(monkeypatch, now: datetime) -> None:
    """The package's one clock (utc.now: sensors, month close, the CLI) reads `now`."""
    monkeypatch.setattr(utc_clock, "now", lambda: now)


def sensor(name: str):
    """A sensor of the definitions, callable with a context as the daemon evaluates it."""
    return defs.resolve_sensor_def(name)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Before every instant the tests meter: a deployment added without a start existed all along.
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def add_deployment(
    engine: Engine,
    deployment_id: str,
    plan_code: str = "starter",
    valid_from: datetime = LONG_AGO,
    valid_to: datetime | None = None,
    *,
    name: str | None = None,
    recorded_at: datetime | None = None,
) -> None:
    """One version of a deployment in arcadia.deployment_versions."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO arcadia.deployment_versions (deployment_id, name, plan_code, "
                "valid_from, valid_to, recorded_at) VALUES (:d, :n, :p, :f, :t, coalesce(:rec, :f))"
            ),
            {
                "d": deployment_id,
                "n": name or f"Deployment {deployment_id}",
                "p": plan_code,
                "f": valid_from,
                "t": valid_to,
                "rec": recorded_at,
            },
        )


def add_version(
    engine: Engine,
    resource_id: str,
    deployment_id: str | None,
    inventory_kind: str,
    valid_from: datetime,
    valid_to: datetime | None = None,
    *,
    status: str = "active",
    size_gb: Decimal | str | int | None = None,
    recorded_at: datetime | None = None,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO arcadia.resource_versions (resource_id, deployment_id, "
                "inventory_kind, size_gb, status, valid_from, valid_to, recorded_at) "
                "VALUES (:r, :d, :k, :s, :st, :f, :t, coalesce(:rec, :f))"
            ),
            {
                "r": resource_id,
                "d": deployment_id,
                "k": inventory_kind,
                "s": None if size_gb is None else Decimal(str(size_gb)),
                "st": status,
                "f": valid_from,
                "t": valid_to,
                "rec": recorded_at,
            },
        )


def _with_checks(assets) -> list:
    """The assets plus the asset checks on them, as a real run of the job has them: all but
    the freshness checks, which their sensor evaluates in runs of their own."""
    checks = [
        check
        for check in defs.asset_checks or []
        if all(key.asset_key.to_user_string() in assets for key in check.check_keys)
        and not {key.name for key in check.check_keys} & FRESHNESS_CHECKS
    ]
    return [defs.get_assets_def(name) for name in assets] + checks


def materialize_range(first: date, last: date, assets=ASSETS, instance=None, raise_on_error=True):
    """One single-run materialisation of [first, last], as a UI range backfill launches it."""
    return materialize(
        _with_checks(assets),
        resources=defs.resources,
        instance=instance or DagsterInstance.ephemeral(),
        tags=range_tags(first, last),
        raise_on_error=raise_on_error,
    )


def run_requested(request, instance):
    """A sensor's RunRequest run as the daemon runs it: the job, its partition or range tags,
    its subset."""
    job = defs.resolve_job_def(request.job_name or "daily_metering_job")
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=request.asset_selection,
    )


def requested_days(request) -> tuple[str, str]:
    """(first, last) ISO days of a sensor's RunRequest: its one partition, or its range."""
    if request.partition_key:
        return request.partition_key, request.partition_key
    tags = request.tags
    return tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]


def freshness_checks() -> list:
    return [
        check
        for check in defs.asset_checks or []
        if {key.name for key in check.check_keys} & FRESHNESS_CHECKS
    ]


def evaluate_freshness(instance, check_keys=None):
    """A run of the freshness checks alone (all, or `check_keys`: a sensor's request), as
    freshness_checks_sensor launches it; the result of the run."""
    checks = freshness_checks()
    keys = check_keys or [key for check in checks for key in check.check_keys]
    assets = [defs.get_assets_def(name) for name in [*ASSETS, "monthly_usage_statements"]]
    return materialize(
        [*assets, *checks],
        selection=AssetSelection.checks(*keys),
        resources=defs.resources,
        instance=instance,
    )


def materialize_day(day: date, assets=ASSETS, instance=None, raise_on_error=True):
    return materialize(
        _with_checks(assets),
        resources=defs.resources,
        instance=instance or DagsterInstance.ephemeral(),
        partition_key=day.isoformat(),
        raise_on_error=raise_on_error,
    )


def usage_rows(engine: Engine, where: str = "true", **params) -> list[dict]:
    with engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                text(
                    "SELECT deployment_id, resource_id, resource_kind, period_start, "
                    "granularity, qty, run_id, inventory_snapshot_id, sub_attribution "
                    f"FROM metering.usage_records WHERE {where} "
                    "ORDER BY deployment_id, resource_id, period_start, granularity"
                ),
                params,
            ).mappings()
        ]


def set_granularity(engine: Engine, billing_kind: str, granularity: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE metering.metering_config SET granularity = :g WHERE billing_kind = :k"),
            {"g": granularity, "k": billing_kind},
        )


def copy_source(engine: Engine, source_url: str) -> None:
    """Copy the warehouse's arcadia rows into the source database at source_url."""
    with engine.connect() as connection:
        deployments = connection.execute(
            text("SELECT * FROM arcadia.deployment_versions")
        ).mappings()
        deployments = [dict(r) for r in deployments]
        versions = connection.execute(text("SELECT * FROM arcadia.resource_versions")).mappings()
        versions = [dict(r) for r in versions]
    with make_engine(source_url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO arcadia.deployment_versions VALUES (:deployment_id, :name, "
                ":plan_code, :valid_from, :valid_to, :recorded_at)"
            ),
            deployments,
        )
        connection.execute(
            text(
                "INSERT INTO arcadia.resource_versions VALUES (:resource_id, :deployment_id, "
                ":inventory_kind, :size_gb, :status, :valid_from, :valid_to, :recorded_at)"
            ),
            versions,
        )


# What a metering run writes: a run that fails validation leaves every count at 0.
WRITTEN_TABLES = (
    "metering.inventory_snapshots",
    "metering.resource_inventory",
    "metering.inventory_deployments",
    "metering.usage_records",
    "metering.usage_period_aggregates",
    "metering.deployment_quotes",
)


def failure_messages(result) -> str:
    """Every message of the run's step failures, with their causes (Failure, DayFailed…)."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
            user = event.step_failure_data.user_failure_data
            if user is not None and user.description:
                messages.append(user.description)
    return "\n".join(messages)


def written_rows(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in WRITTEN_TABLES
        }


NOTHING_WRITTEN = dict.fromkeys(WRITTEN_TABLES, 0)
