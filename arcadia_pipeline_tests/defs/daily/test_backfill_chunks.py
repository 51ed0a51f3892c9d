"""A backfill split into runs (ARCADIA_MAX_DAYS_PER_RUN) may run its chunks in any order: a
later chunk's month-to-date figures computed before an earlier chunk of the month was
metered are stale, missed_days_sensor refreshes them, and the warehouse then holds what one
in-order run of the whole range gives.

(Chunks running at the same time are the racing runs of faults/test_races.py.)
"""

import os
from datetime import UTC, date, datetime, time

import pytest
from dagster import DagsterInstance, build_sensor_context
from sqlalchemy import text

from arcadia_pipeline.days.staleness import stale_days
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    hold_clock,
    materialize_range,
    requested_days,
    run_requested,
    sensor,
    utc,
)

D = date.fromisoformat
EARLIER, LATER = (D("2025-03-01"), D("2025-03-03")), (D("2025-03-04"), D("2025-03-06"))


@pytest.fixture
def clock(monkeypatch):
    """Noon today (UTC), held still for the sensor."""
    now = datetime.combine(datetime.now(UTC).date(), time(12), UTC)
    hold_clock(monkeypatch, now)
    return now


missed_days_sensor = sensor("missed_days_sensor")
late_corrections_sensor = sensor("late_corrections_sensor")


def billing_rows(engine) -> dict[str, list[tuple]]:
    """The month-to-date aggregates, quotes and quote lines, without run ids and times."""
    queries = {
        "aggregates": "SELECT as_of_date, deployment_id, billing_kind, period_start, qty, records "
        "FROM metering.usage_period_aggregates ORDER BY 1, 2, 3",
        "quotes": "SELECT as_of_date, deployment_id, plan_code, base_usd, overage_usd, total_usd "
        "FROM metering.deployment_quotes ORDER BY 1, 2",
        "lines": "SELECT as_of_date, deployment_id, billing_kind, usage, included, overage_qty, "
        "overage_usd FROM metering.deployment_quote_lines ORDER BY 1, 2, 3",
    }
    with engine.connect() as connection:
        return {
            name: [tuple(r) for r in connection.execute(text(q))] for name, q in queries.items()
        }


def test_chunks_metered_out_of_order_converge_on_one_in_order_run(engine, clock):
    add_deployment(engine, "dep-a")
    add_deployment(engine, "dep-b", "studio")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 3, 1))
    add_version(engine, "dns:1", "dep-a", "dns_zone", utc(2025, 3, 1), utc(2025, 3, 5, 6))
    add_version(engine, "spaces:1", "dep-b", "spaces_bucket", utc(2025, 3, 2, 12), size_gb=80)
    instance = DagsterInstance.ephemeral()

    # The worst order: the month's later chunk runs to the end before the earlier one starts.
    assert materialize_range(*LATER, instance=instance).success
    assert materialize_range(*EARLIER, instance=instance).success

    with engine.connect() as connection:
        stale = stale_days(connection, DAILY_FLOW)
    assert sorted(stale["usage_period_aggregates"]) == [D("2025-03-04"), D("2025-03-05"),
                                                         D("2025-03-06")]  # fmt: skip
    assert stale["resource_inventory"] == stale["usage_records"] == {}
    out_of_order = billing_rows(engine)

    # missed_days_sensor asks for the stale days (beside any unmetered days of its look-back,
    # near today), from their stalest asset on, as one run.
    warehouse = WarehouseResource(database_url=os.environ["ARCADIA_DATABASE_URL"])
    requests = [
        request
        for request in missed_days_sensor(
            build_sensor_context(instance=instance, resources={"warehouse": warehouse})
        )
        if request.tags.get("arcadia/trigger") == "refresh"
    ]
    asked = [
        (*requested_days(r),
         [key.to_user_string() for key in r.asset_selection])
        for r in requests
    ]  # fmt: skip
    assert asked == [("2025-03-04", "2025-03-06", list(DAILY_FLOW.assets[2:]))]
    for request in requests:
        assert run_requested(request, instance).success
    with engine.connect() as connection:
        assert stale_days(connection, DAILY_FLOW) == {asset: {} for asset in DAILY_FLOW.assets}
    refreshed = billing_rows(engine)

    # The whole range as one run, in order: the same figures.
    assert materialize_range(EARLIER[0], LATER[1], instance=instance).success
    in_order = billing_rows(engine)
    assert refreshed == in_order
    # …which the later chunk alone had not had: its month to date lacked the earlier days.
    assert out_of_order["aggregates"] != in_order["aggregates"]
    droplet_hours_on_the_4th = [
        row[4]
        for row in in_order["aggregates"]
        if row[:3] == (D("2025-03-04"), "dep-a", "droplet_hours")
    ]
    assert droplet_hours_on_the_4th == [96]
