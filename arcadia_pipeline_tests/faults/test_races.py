"""Concurrent duplicate and overlapping runs in one month: none fails, no row is doubled,
and once the stale month-to-date days are refreshed the warehouse is what one clean run
gives."""

from datetime import date

from sqlalchemy import text

from arcadia_pipeline.days.staleness import stale_days
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.utc import contiguous_ranges
from arcadia_pipeline_tests.faults.workload import (
    FIRST,
    LAST,
    checksums,
    run_to_completion,
    seed,
    start_run,
    toggle_variant,
)

D = date.fromisoformat
RACERS = [
    (FIRST, LAST),
    (FIRST, LAST),
    (FIRST, LAST),
    (D("2025-03-27"), D("2025-03-31")),
    (D("2025-03-27"), D("2025-03-31")),
    (D("2025-03-29"), D("2025-04-02")),
    (D("2025-03-31"), D("2025-04-01")),
    (D("2025-03-28"), D("2025-03-28")),
    (D("2025-03-30"), D("2025-03-30")),
    (D("2025-03-30"), D("2025-03-30")),
    (D("2025-04-01"), D("2025-04-01")),
    (D("2025-04-02"), D("2025-04-02")),
]


def refresh_stale(engine, log) -> int:
    """What missed_days_sensor asks for, run: each stale range from its stalest asset on."""
    with engine.connect() as connection:
        stale = stale_days(connection, DAILY_FLOW)
    earliest = {}
    for asset in DAILY_FLOW.assets:
        for day in stale[asset]:
            earliest.setdefault(day, asset)
    for asset in DAILY_FLOW.assets:
        days = [day for day, first_stale in earliest.items() if first_stale == asset]
        for first, last in contiguous_ranges(days):
            selection = ",".join(DAILY_FLOW.assets[DAILY_FLOW.assets.index(asset) :])
            run_to_completion(log, first=first, last=last, assets=selection)
    return len(earliest)


def test_racing_runs_all_succeed_and_converge_on_one_clean_run(engine, tmp_path):
    seed(engine)
    log = tmp_path / "runs.log"
    toggle_variant(engine, 1)
    run_to_completion(log)
    clean = checksums(engine)
    toggle_variant(engine, 0)
    run_to_completion(log)

    toggle_variant(engine, 1)  # the racers all meter the change
    racers = [start_run(tmp_path / f"racer-{n}.log", first=a, last=b) for n, (a, b) in
              enumerate(RACERS)]  # fmt: skip
    failed = [n for n, run in enumerate(racers) if run.wait(timeout=900) != 0]
    assert failed == [], (tmp_path / f"racer-{failed[0]}.log").read_text()[-4000:]

    with engine.connect() as connection:
        doubled = connection.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM metering.usage_records GROUP BY "
                "deployment_id, resource_id, period_start, granularity HAVING count(*) > 1) d"
            )
        ).scalar_one()
    assert doubled == 0
    refreshed = refresh_stale(engine, log)
    assert checksums(engine) == clean
    with engine.connect() as connection:
        assert stale_days(connection, DAILY_FLOW) == {asset: {} for asset in DAILY_FLOW.assets}
    print(f"\n{len(RACERS)} racing runs, none failed; {refreshed} stale day(s) refreshed")
