"""The `dg` CLI on this project, for real: `dg check defs`, `dg list defs` and `dg launch` of a
partition range, run as the README shows them (from the repo root, the project venv active) with
the repo's dagster.yaml in DAGSTER_HOME and its storage in a database of its own."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from sqlalchemy import Engine, text

from arcadia_pipeline_tests.e2e.conftest import (
    DG_BIN,
    REPO_ROOT,
    dagster_env,
    fresh_database,
    make_dagster_home,
)
from arcadia_pipeline_tests.support import ASSETS, add_deployment, add_version, utc

DG_TIMEOUT_S = 300
# Across the Feb/Mar boundary: month-to-date aggregates and quotes restart on Mar 1.
FIRST, LAST = date(2025, 2, 26), date(2025, 3, 2)
DAYS = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
CHECKS = (
    "usage_records_complete",
    "usage_records_within_bounds",
    "usage_records_month_closure",
    "aggregates_equal_usage_records",
    "quote_totals_add_up",
    "projection_totals_add_up",
    "projection_is_the_quote_on_month_end",
)


@pytest.fixture(scope="module")
def dg_env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An instance of the dg tests' own (what `dg launch` records stays out of the other
    tests' instance)."""
    with fresh_database(database_url, f"dagster_dg_{os.getpid()}") as postgres_url:
        home = make_dagster_home(tmp_path_factory.mktemp("dg_dagster_home"))
        yield dagster_env(database_url, postgres_url, home)


def dg(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(DG_BIN), *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DG_TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"dg {' '.join(args)} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    return result


def open_instance(env: dict) -> DagsterInstance:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_POSTGRES_URL", env["DAGSTER_POSTGRES_URL"])
        return DagsterInstance.from_config(env["DAGSTER_HOME"])


def test_dg_check_toml_accepts_the_project_config(dg_env: dict):
    result = dg(dg_env, "check", "toml")
    assert f"Found project configuration file: {REPO_ROOT / 'pyproject.toml'}" in result.stdout
    assert "All TOML configuration files are valid." in result.stdout


def test_dg_check_defs_loads_the_definitions(dg_env: dict):
    result = dg(dg_env, "check", "defs")
    assert "All definitions loaded successfully." in result.stdout
    # The project venv is the active one: no mismatch warning.
    assert "does not match" not in result.stderr


def test_dg_list_defs_lists_the_pipeline(dg_env: dict):
    listed = json.loads(dg(dg_env, "list", "defs", "--json").stdout)
    assets = {asset["asset_key"] for asset in listed["assets"]}
    sources = {"arcadia/resource_versions", "arcadia/deployment_versions"}
    assert assets == {*ASSETS, "monthly_usage_statements", *sources}
    checks = {check["name"] for check in listed["asset_checks"]}
    freshness = {"freshness_check", "statements_closed_on_time"}
    assert checks == {*CHECKS, "statements_equal_the_month_priced_now", *freshness}
    jobs = {job["name"] for job in listed["jobs"]}
    assert {
        "daily_metering_job",
        "retention_job",
        "monthly_statements_job",
        "source_observation_job",
    } <= jobs
    schedules = {schedule["name"] for schedule in listed["schedules"]}
    assert {
        "daily_metering_schedule",
        "retention_schedule",
        "month_close_schedule",
        "source_observation_schedule",
    } <= schedules
    sensors = {sensor["name"] for sensor in listed["sensors"]}
    assert {
        "missed_days_sensor",
        "late_corrections_sensor",
        "statement_months_sensor",
        "freshness_checks_sensor",
    } <= sensors
    assert {"warehouse", "arcadia_source"} <= {r["name"] for r in listed["resources"]}


def test_dg_launch_meters_a_partition_range_in_one_run(dg_env: dict, engine: Engine):
    add_deployment(engine, "dep-1", "starter")
    add_version(engine, "droplet:1", "dep-1", "droplet", utc(2025, 2, 1))
    add_version(engine, "spaces:1", "dep-1", "spaces_bucket", utc(2025, 2, 1), size_gb=250)
    with open_instance(dg_env) as instance:
        runs_before = {run.run_id for run in instance.get_runs()}

    dg(
        dg_env,
        "launch",
        "--job",
        "daily_metering_job",
        "--partition-range",
        f"{FIRST}...{LAST}",
    )

    # One run, in the instance of dagster.yaml, over the whole range, its checks passed.
    with open_instance(dg_env) as instance:
        runs = [run for run in instance.get_runs() if run.run_id not in runs_before]
        assert len(runs) == 1, [(run.run_id, run.status) for run in runs]
        run = runs[0]
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_start"] == FIRST.isoformat()
        assert run.tags["dagster/asset_partition_range_end"] == LAST.isoformat()
        assert run.tags["arcadia/days"] == f"{FIRST}...{LAST}"  # visible in the run list
        assert run.job_name == "daily_metering_job"
        materialized = {
            (event.asset_key.to_user_string(), event.partition)
            for event in (
                record.get_dagster_event()
                for record in instance.all_logs(
                    run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
                )
            )
        }
        evaluations = [
            record.get_dagster_event().event_specific_data
            for record in instance.all_logs(
                run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            )
        ]
    assert materialized == {(asset, day.isoformat()) for asset in ASSETS for day in DAYS}
    assert {e.check_name for e in evaluations} == set(CHECKS)
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]

    # Exactly the range's days in the warehouse, metered by that run.
    with engine.connect() as connection:
        usage = connection.execute(
            text(
                "SELECT DISTINCT (period_start AT TIME ZONE 'UTC')::date, run_id "
                "FROM metering.usage_records ORDER BY 1"
            )
        ).all()
        quote_days = connection.execute(
            text("SELECT DISTINCT as_of_date FROM metering.deployment_quotes ORDER BY 1")
        ).all()
    assert [day for day, _ in usage] == DAYS
    assert {run_id for _, run_id in usage} == {run.run_id}
    assert [day for (day,) in quote_days] == DAYS
