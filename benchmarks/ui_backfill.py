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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from arcadia_pipeline.flow import DAILY_FLOW  # noqa: E402
from arcadia_pipeline_tests.e2e.backfill_client import (  # noqa: E402
    BackfillClient,
    ui_dialog_params,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    client = BackfillClient(args.url)
    assets = list(DAILY_FLOW.assets)
    started = time.monotonic()
    backfill_id = client.launch(ui_dialog_params(args.first, args.last, assets))
    status = client.wait(backfill_id, args.timeout)["status"]
    wall = time.monotonic() - started
    runs = client.runs(backfill_id)
    days = (args.last - args.first).days + 1
    print(f"backfill {backfill_id}: {days} days, status {status}")
    print(f"  launch -> completed (what the engineer waits): {wall:.1f}s")
    for run in runs:
        print(f"  run {run['runId'][:8]} {run['status']}: {run['endTime'] - run['startTime']:.1f}s")
    print(f"  runs: {len(runs)}")


if __name__ == "__main__":
    main()
