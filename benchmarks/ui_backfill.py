"""Time a range backfill launched through the Dagster webserver, as the UI launches it.

    make demo                      # in another terminal: UI on 127.0.0.1:3000, demo data
    .venv/bin/python benchmarks/ui_backfill.py --url http://127.0.0.1:3000 \
        --from 2026-10-01 --to 2026-10-31

Prints the wall time from launchPartitionBackfill to the backfill's completion (what a
billing engineer waits), the run's own duration (the metering work) and the number of
runs (one, by the single-run backfill policy).
"""

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from arcadia_pipeline.days import iter_days  # noqa: E402
from arcadia_pipeline_tests.e2e.test_webserver_backfill import (  # noqa: E402
    BACKFILL_RUNS,
    BACKFILL_STATUS,
    DONE,
    FAILED,
    LAUNCH_BACKFILL,
)
from arcadia_pipeline_tests.support import ASSETS  # noqa: E402


def graphql(url: str, query: str, variables: dict) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    return body["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    # The form the UI's "Materialize…" dialog sends: asset keys and the range's partitions.
    params = {
        "assetSelection": [{"path": [name]} for name in ASSETS],
        "partitionNames": [day.isoformat() for day in iter_days(args.first, args.last)],
        "fromFailure": False,
        "tags": [{"key": "dagster/from_ui", "value": "true"}],
    }
    started = time.monotonic()
    launched = graphql(args.url, LAUNCH_BACKFILL, {"backfillParams": params})
    backfill_id = launched["launchPartitionBackfill"]["backfillId"]
    while True:
        status = graphql(args.url, BACKFILL_STATUS, {"backfillId": backfill_id})[
            "partitionBackfillOrError"
        ]["status"]
        if status in DONE or status in FAILED:
            break
        if time.monotonic() - started > args.timeout:
            raise SystemExit(f"backfill {backfill_id} still {status} after {args.timeout}s")
        time.sleep(1)
    wall = time.monotonic() - started
    runs = graphql(
        args.url,
        BACKFILL_RUNS,
        {"filter": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}},
    )["runsOrError"]["results"]
    days = (args.last - args.first).days + 1
    print(f"backfill {backfill_id}: {days} days, status {status}")
    print(f"  launch -> completed (what the engineer waits): {wall:.1f}s")
    for run in runs:
        print(f"  run {run['runId'][:8]} {run['status']}: {run['endTime'] - run['startTime']:.1f}s")
    print(f"  runs: {len(runs)}")


if __name__ == "__main__":
    main()
