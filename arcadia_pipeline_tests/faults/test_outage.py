"""The database goes away for a minute in the middle of a run: the run rides it out on its
retries and ends exactly as a clean run, and every failed attempt named its days."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from arcadia_pipeline_tests.faults.workload import (
    FIRST_STEP,
    REPO,
    checksums,
    run_to_completion,
    seed,
    start_run,
    toggle_variant,
    wait_for_line,
)

OUTAGE_S = 60


def cluster(command: str) -> None:
    directory = os.environ.get("ARCADIA_TEST_PG_CLUSTER")
    if not directory:
        pytest.fail("ARCADIA_TEST_PG_CLUSTER is not set: run the tests with `make test`")
    subprocess.run(
        [str(REPO / "scripts" / "pg-cluster.sh"), command, directory],
        check=True,
        capture_output=True,
    )


def test_a_minute_long_outage_mid_run_is_ridden_out(engine, tmp_path: Path):
    seed(engine)
    toggle_variant(engine, 0)
    run_to_completion(tmp_path / "clean.log")
    clean = checksums(engine)
    toggle_variant(engine, 1)
    run_to_completion(tmp_path / "other.log")
    toggle_variant(engine, 0)  # what the interrupted run meters

    log = tmp_path / "run.log"
    run = start_run(log)
    wait_for_line(log, FIRST_STEP)
    cluster("stop")
    try:
        time.sleep(OUTAGE_S)
    finally:
        cluster("start")
    assert run.wait(timeout=600) == 0, log.read_text()[-4000:]

    engine.dispose()  # the pool's connections died with the server
    assert checksums(engine) == clean
    failures = [line for line in log.read_text().splitlines() if "TransientFailure:" in line]
    assert failures, "the run never saw the outage"
    assert all(" failed on " in line and "2025-0" in line for line in failures), failures
