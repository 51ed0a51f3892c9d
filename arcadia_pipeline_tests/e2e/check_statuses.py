"""Through the webserver's GraphQL API, what the UI shows of the daily checks: each check's
status per partition (Asset → Checks → Partitions) and its summary in the lineage graph; and
a run of one partition launched as the schedule launches it (the `dagster/partition` tag), or
of a range of days in one run.
"""

from __future__ import annotations

import time
from datetime import date

from arcadia_pipeline.orchestration.partitions import range_tags
from arcadia_pipeline.utc import iter_days
from arcadia_pipeline_tests.e2e.backfill_client import BackfillClient, WebserverError
from arcadia_pipeline_tests.e2e.conftest import LOCATION_NAME

CHECKS = """
query($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization { status }
            partitionStatuses {
              __typename
              ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
            }
          }
        }
      }
    }
  }
}
"""
EXECUTIONS = """
query($assetKey: AssetKeyInput!, $checkName: String!, $partition: String) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 5,
                       partition: $partition) {
    runId status partition evaluation { description }
  }
}
"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def partition_statuses(client: BackfillClient, asset: str) -> dict[str, dict[date, str]]:
    """{check: {day: status}} of the asset's partitioned checks, as the Partitions view
    draws them (a day with no status is left out: the UI calls it missing)."""
    node = client.graphql(CHECKS, {"assetKey": {"path": [asset]}})["assetNodeOrError"]
    statuses: dict[str, dict[date, str]] = {}
    for check in node["assetChecksOrError"]["checks"]:
        partitions = check["partitionStatuses"]
        if partitions is None:  # an unpartitioned check (freshness_check)
            continue
        statuses[check["name"]] = {
            day: status["status"]
            for status in partitions["ranges"]
            for day in iter_days(
                date.fromisoformat(status["startKey"]), date.fromisoformat(status["endKey"])
            )
        }
    return statuses


def lineage_summary(statuses: dict[str, dict[date, str]]) -> tuple[int, int]:
    """(passed, total) as the lineage graph's asset node counts its partitioned checks
    (getAggregateCheckIconType in Dagster's UI): a check passes when no partition failed, is
    in progress or was skipped, and at least one succeeded."""
    blocking = {"FAILED", "EXECUTION_FAILED", "IN_PROGRESS", "SKIPPED"}
    passed = sum(
        1
        for days in statuses.values()
        if "SUCCEEDED" in days.values() and not blocking & set(days.values())
    )
    return passed, len(statuses)


def executions(client: BackfillClient, asset: str, check: str, day: date) -> list[dict]:
    """The check's latest executions on one day, newest first."""
    variables = {"assetKey": {"path": [asset]}, "checkName": check, "partition": day.isoformat()}
    return client.graphql(EXECUTIONS, variables)["assetCheckExecutions"]


def launch_run(client: BackfillClient, job: str, tags: dict[str, str]) -> str:
    """Launch `job` through the webserver with `tags` (its partition or range); the run id."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": "__repository__",
            "jobName": job,
        },
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    launched = client.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise WebserverError(f"run not launched: {launched}")
    return launched["run"]["runId"]


def launch_day(client: BackfillClient, job: str, day: date) -> str:
    """Launch `job` on one day as its schedule does (tag dagster/partition); the run id."""
    return launch_run(client, job, {"dagster/partition": day.isoformat()})


def launch_range(client: BackfillClient, job: str, first: date, last: date) -> str:
    """Launch one run of `job` over [first, last], as `dg launch --partition-range` (make
    demo) and a single-run backfill do; the run id."""
    return launch_run(client, job, range_tags(first, last))


def wait_run(client: BackfillClient, run_id: str, timeout: float) -> str:
    """Poll until the run finishes; its status (raises on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in FINISHED:
            return status
        if time.monotonic() > deadline:
            raise WebserverError(f"run {run_id} still {status} after {timeout:.0f}s")
        time.sleep(1)
