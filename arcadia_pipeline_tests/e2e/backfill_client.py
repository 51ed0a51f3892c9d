"""Launch and follow a partition-range backfill through the Dagster webserver's GraphQL API,
as the UI's "Materialize…" dialog does (the end-to-end tests and benchmarks/ui_backfill.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import requests

from arcadia_pipeline.utc import iter_days

DONE = {"COMPLETED", "COMPLETED_SUCCESS"}  # COMPLETED is the deprecated spelling
FAILED = {"FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING", "FAILING"}

LAUNCH_BACKFILL = """
mutation($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_STATUS = """
query($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      status
      numPartitions
      error { message stack }
    }
    ... on PythonError { message }
  }
}
"""
BACKFILL_RUNS = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results {
        runId
        status
        startTime
        endTime
        jobName
        tags { key value }
        assetSelection { path }
      }
    }
    ... on PythonError { message }
  }
}
"""
DAEMON_HEALTH = """
query { instance { daemonHealth { allDaemonStatuses { daemonType healthy lastHeartbeatErrors {
  message } } } } }
"""


class WebserverError(Exception):
    """The webserver answered with an error, or the backfill did not finish in time."""


def range_params(first: date, last: date, assets: Sequence[str], title: str) -> dict:
    """The API form: each asset with a partition range (what an API client sends)."""
    return {
        "partitionsByAssets": [
            {
                "assetKey": {"path": [name]},
                "partitions": {"range": {"start": first.isoformat(), "end": last.isoformat()}},
            }
            for name in assets
        ],
        "title": title,
    }


def ui_dialog_params(first: date, last: date, assets: Sequence[str]) -> dict:
    """The form the UI's "Materialize…" dialog sends for a range of one partitions definition
    (LaunchAssetChoosePartitionsDialog.tsx): the asset keys and the range's partition keys."""
    return {
        "assetSelection": [{"path": [name]} for name in assets],
        "partitionNames": [day.isoformat() for day in iter_days(first, last)],
        "fromFailure": False,
        "tags": [{"key": "dagster/from_ui", "value": "true"}],
    }


def job_dialog_params(first: date, last: date, assets: Sequence[str], job: str) -> dict:
    """The form the same dialog sends when opened from a job's page (Jobs -> the job ->
    Materialize): a backfill of the job's partition set, which keeps the job's name."""
    return {
        **ui_dialog_params(first, last, assets),
        "selector": {
            "partitionSetName": f"{job}_partition_set",
            "repositorySelector": {
                "repositoryLocationName": "arcadia_pipeline",  # workspace.yaml
                "repositoryName": "__repository__",  # Dagster's name for a Definitions
            },
        },
    }


@dataclass
class BackfillClient:
    url: str  # the webserver, e.g. http://127.0.0.1:3000
    request_timeout: float = 60

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=self.request_timeout,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise WebserverError(f"GraphQL error: {body['errors']}")
        return body["data"]

    def launch(self, params: dict) -> str:
        """Launch a partition backfill; its id."""
        launched = self.graphql(LAUNCH_BACKFILL, {"backfillParams": params})
        launched = launched["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise WebserverError(f"backfill not launched: {launched}")
        return launched["backfillId"]

    def status(self, backfill_id: str) -> dict:
        backfill = self.graphql(BACKFILL_STATUS, {"backfillId": backfill_id})
        backfill = backfill["partitionBackfillOrError"]
        if backfill["__typename"] != "PartitionBackfill":
            raise WebserverError(f"backfill {backfill_id}: {backfill}")
        return backfill

    def wait(self, backfill_id: str, timeout: float, poll: float = 1) -> dict:
        """Poll until the backfill completes or fails; its last status (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.status(backfill_id)
            if backfill["status"] in DONE | FAILED:
                return backfill
            if time.monotonic() > deadline:
                raise WebserverError(
                    f"backfill {backfill_id} still {backfill['status']} after {timeout:.0f}s"
                )
            time.sleep(poll)

    def runs(self, backfill_id: str) -> list[dict]:
        """The runs the backfill launched."""
        tag = {"key": "dagster/backfill", "value": backfill_id}
        runs = self.graphql(BACKFILL_RUNS, {"filter": {"tags": [tag]}})["runsOrError"]
        if runs["__typename"] != "Runs":
            raise WebserverError(f"runs of backfill {backfill_id}: {runs}")
        return runs["results"]

    def daemon_health(self) -> dict:
        return self.graphql(DAEMON_HEALTH)
