"""ARCADIA_MAX_DAYS_PER_RUN: a backfill of the daily assets as one run (unset, the default) or
as runs of at most N consecutive days, each holding the five assets and their checks.

The settings are read when the definitions are built, so each configuration is built here
with its environment. The runs a backfill becomes are computed by the function the backfill
daemon runs on each tick (Dagster's internal `execute_asset_backfill_iteration_inner`: its
first iteration requests every root day and, the daily assets mapping day to day, their
downstream days in the same runs), without a daemon or a database.
"""

import logging
import math
import os
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest
from dagster import (
    AssetDep,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    TimeWindowPartitionMapping,
    asset,
)
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.assets.graph.remote_asset_graph import RemoteWorkspaceAssetGraph
from dagster._core.execution.asset_backfill import (
    AssetBackfillData,
    execute_asset_backfill_iteration_inner,
)
from dagster._core.test_utils import mock_workspace_from_repos
from dagster._time import get_current_datetime

from arcadia_pipeline.definitions import defs as load_definitions
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.partitions import daily_backfill_policy
from arcadia_pipeline_tests.support import ASSETS

FIRST = date(2025, 2, 25)  # ten days across a month's end: chunks count days, not months
DAYS = 10
CHECKS = {
    "usage_records:usage_records_complete",
    "usage_records:usage_records_within_bounds",
    "usage_records:usage_records_month_closure",
    "usage_period_aggregates:aggregates_equal_usage_records",
    "deployment_quotes:quote_totals_add_up",
    "projected_quotes:projection_totals_add_up",
    "projected_quotes:projection_is_the_quote_on_month_end",
}
# A backfill launched by assets (the UI, GraphQL) takes every check on them: Dagster's
# freshness checks too (non-blocking; they judge the day due, whatever the range).
FRESHNESS = {f"{asset}:freshness_check" for asset in ASSETS}


def environment(max_days_per_run: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ARCADIA_MAX_DAYS_PER_RUN",)}
    if max_days_per_run is not None:
        env["ARCADIA_MAX_DAYS_PER_RUN"] = max_days_per_run
    return env


def first_runs(defs, assets: list[AssetKey], keys: list[str]) -> list[dict]:
    """The runs the backfill daemon's first iteration launches for `assets` over `keys`."""
    with DagsterInstance.ephemeral() as instance:
        repositories = [defs.get_repository_def()]
        graph = RemoteWorkspaceAssetGraph.build(mock_workspace_from_repos(repositories))
        view = AssetGraphView(
            temporal_context=TemporalContext(
                effective_dt=get_current_datetime(), last_event_id=None
            ),
            instance=instance,
            asset_graph=graph,
        )
        backfill = AssetBackfillData.from_asset_partitions(
            asset_graph=graph,
            partition_names=keys,
            asset_selection=assets,
            dynamic_partitions_store=instance,
            backfill_start_timestamp=time.time(),
            all_partitions=False,
        )
        iteration = execute_asset_backfill_iteration_inner(
            "plan", backfill, view, time.time(), logging.getLogger("plan"), None
        )
    return [
        {
            "assets": sorted(key.to_user_string() for key in request.asset_selection),
            "checks": sorted(key.to_user_string() for key in request.asset_check_keys or []),
            "first": request.tags["dagster/asset_partition_range_start"],
            "last": request.tags["dagster/asset_partition_range_end"],
        }
        for request in iteration.run_requests
    ]


def plan_backfill(max_days_per_run: str | None, monkeypatch) -> dict:
    """What the definitions built with ARCADIA_MAX_DAYS_PER_RUN would launch for a backfill
    of the daily assets over DAYS days from FIRST."""
    if max_days_per_run is None:
        monkeypatch.delenv("ARCADIA_MAX_DAYS_PER_RUN", raising=False)
    else:
        monkeypatch.setenv("ARCADIA_MAX_DAYS_PER_RUN", max_days_per_run)
    defs = load_definitions()
    keys = [(FIRST + timedelta(days=n)).isoformat() for n in range(DAYS)]
    names = [*ASSETS, "monthly_usage_statements"]
    policies = {
        name: defs.get_assets_def(name).backfill_policy.max_partitions_per_run for name in names
    }
    job_policy = defs.resolve_job_def("daily_metering_job").backfill_policy
    runs = first_runs(defs, [AssetKey(asset) for asset in DAILY_FLOW.assets], keys)
    return {
        "policies": policies,
        "job_policy": job_policy.max_partitions_per_run if job_policy else "none",
        "runs": runs,
    }


def chunks(n: int | None) -> list[tuple[str, str]]:
    """[first, last] of each run: consecutive runs of n days (the last one shorter)."""
    size = n or DAYS
    starts = [FIRST + timedelta(days=k) for k in range(0, DAYS, size)]
    last = FIRST + timedelta(days=DAYS - 1)
    return [(s.isoformat(), min(s + timedelta(days=size - 1), last).isoformat()) for s in starts]


def test_the_policy_is_one_run_unless_a_number_of_days_is_set():
    assert daily_backfill_policy(None) == BackfillPolicy.single_run()
    assert daily_backfill_policy(7) == BackfillPolicy.multi_run(max_partitions_per_run=7)
    assert daily_backfill_policy(1).max_partitions_per_run == 1


@pytest.mark.parametrize("max_days_per_run", [None, "3", "7"])
def test_a_ten_day_backfill_is_split_into_runs_of_at_most_n_days(max_days_per_run, monkeypatch):
    n = None if max_days_per_run is None else int(max_days_per_run)
    planned = plan_backfill(max_days_per_run, monkeypatch)

    # Every daily asset (and so the job) has the policy; the monthly statements stay one run.
    assert planned["policies"] == {**dict.fromkeys(ASSETS, n), "monthly_usage_statements": None}
    assert planned["job_policy"] == n
    runs = planned["runs"]
    assert len(runs) == math.ceil(DAYS / (n or DAYS))
    # Consecutive chunks covering exactly the range, in order, each with the five assets and
    # their five checks (and the freshness checks): a chunk is a whole range run of its days.
    assert sorted((run["first"], run["last"]) for run in runs) == chunks(n)
    for run in runs:
        assert run["assets"] == sorted(ASSETS)
        assert set(run["checks"]) == CHECKS | FRESHNESS


def test_a_cli_partition_range_needs_the_single_run_policy(tmp_path):
    """`dg launch --assets … --partition-range` (which runs `dagster asset materialize`)
    refuses a range once the assets are multi-run: such ranges go through the backfill
    daemon (the UI, or the GraphQL launchPartitionBackfill of backfill_client.py)."""
    launched = subprocess.run(
        [
            sys.executable, "-m", "dagster", "asset", "materialize",
            "-m", "arcadia_pipeline.definitions",
            "--select", ",".join(ASSETS),
            "--partition-range", "2025-03-01...2025-03-10",
        ],
        env={**environment("3"), "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert launched.returncode != 0
    assert "require all selected assets to have a BackfillPolicy.single_run()" in launched.stderr


def test_a_month_to_date_dep_would_make_a_range_more_than_one_run():
    """Why the aggregates' dep on the records says "the same day" though a day reads its
    month to date: Dagster has no month-to-date mapping, and the nearest (the 30 days
    before, TimeWindowPartitionMapping(start_offset=-30)) makes the backfill daemon hold
    the readers back from the range's one run. The description says what the day reads."""
    daily = DailyPartitionsDefinition("2025-01-01", timezone="UTC")
    one_run = BackfillPolicy.single_run()

    @asset(partitions_def=daily, backfill_policy=one_run)
    def records(): ...

    @asset(
        partitions_def=daily,
        backfill_policy=one_run,
        deps=[AssetDep(records, partition_mapping=TimeWindowPartitionMapping(start_offset=-30))],
    )
    def aggregates(): ...

    keys = [(FIRST + timedelta(days=n)).isoformat() for n in range(DAYS)]
    runs = first_runs(
        Definitions(assets=[records, aggregates]), [records.key, aggregates.key], keys
    )
    assert [run["assets"] for run in runs] == [["records"]]  # the aggregates wait
