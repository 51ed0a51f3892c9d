"""SIGKILL a run worker at random points: every day of every asset is either the old or the
new content whole, never a mix, and a re-run gives exactly what a clean run gives."""

import os
import random
import signal
import time

from arcadia_pipeline_tests.faults.workload import (
    FIRST_STEP,
    checksums,
    seed,
    start_run,
    toggle_variant,
    wait_for_line,
)

TRIALS = 20


def test_a_killed_run_leaves_each_day_old_or_new_and_a_rerun_repairs_it(engine, tmp_path):
    seed(engine)
    logs = iter(tmp_path / f"run-{n}.log" for n in range(3 * TRIALS))
    reference, work = {}, 0.0
    for variant in (0, 1):
        toggle_variant(engine, variant)
        run = start_run(log := next(logs))
        wait_for_line(log, FIRST_STEP)
        started = time.monotonic()
        assert run.wait(timeout=600) == 0, log.read_text()[-4000:]
        work = max(work, time.monotonic() - started)  # the steps, start-up left out
        reference[variant] = checksums(engine)
    assert all(reference[0][key] != reference[1][key] for key in reference[0])

    rng = random.Random(20251127)
    current, mixes = 1, set()
    for _ in range(TRIALS):
        target = 1 - current
        toggle_variant(engine, target)
        run = start_run(log := next(logs))
        wait_for_line(log, FIRST_STEP)
        time.sleep(rng.uniform(0, work))  # anywhere in the five assets and their checks
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()

        after_kill = checksums(engine)
        for key, value in after_kill.items():
            assert value in (reference[0][key], reference[1][key]), f"{key} is half-written"
        mixes.add(sum(value == reference[target][key] for key, value in after_kill.items()))

        rerun = start_run(log := next(logs))
        assert rerun.wait(timeout=600) == 0, log.read_text()[-4000:]
        assert checksums(engine) == reference[target]
        current = target
    # The kills landed at different points of the work, not all before or after it.
    assert len(mixes) >= 4, sorted(mixes)
    print(f"\n{TRIALS} kills survived; asset-days already new at the kill: {sorted(mixes)}")
