"""Two runs over different billing months at the same time, each in its own run worker: both
succeed, and every day holds what one run of the whole range writes (the citus tier runs it
on the cluster too, where the two runs' statements meet on the same shards)."""

from datetime import date

import pytest

from arcadia_pipeline_tests.faults.workload import (
    FIRST,
    LAST,
    checksums,
    run_to_completion,
    seed,
    start_run,
)

pytestmark = pytest.mark.citus

MARCH = (FIRST, date(2025, 3, 31))
APRIL = (date(2025, 4, 1), LAST)


def test_runs_over_two_months_at_once_write_what_one_run_writes(engine, tmp_path):
    seed(engine)
    runs = {
        month: start_run(tmp_path / f"{month}.log", first=first, last=last)
        for month, (first, last) in {"march": MARCH, "april": APRIL}.items()
    }
    failed = [month for month, run in runs.items() if run.wait(timeout=900) != 0]
    assert failed == [], (tmp_path / f"{failed[0]}.log").read_text()[-4000:]
    concurrent = checksums(engine)
    assert all(concurrent.values()), "every asset has rows on every day of the range"

    run_to_completion(tmp_path / "whole.log")  # replaces every day of both months
    assert checksums(engine) == concurrent
