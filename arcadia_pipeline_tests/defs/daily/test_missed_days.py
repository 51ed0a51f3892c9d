"""Days missed while the daemon was down are requested on the next evaluation."""

import os
from datetime import UTC, date, datetime, time, timedelta

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from arcadia_pipeline.defs.daily.missed_days import days_due
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

missed_days_sensor = sensor("missed_days_sensor")
late_corrections_sensor = sensor("late_corrections_sensor")


def sensor_context(instance):
    warehouse = WarehouseResource(database_url=os.environ["ARCADIA_DATABASE_URL"])
    return build_sensor_context(instance=instance, resources={"warehouse": warehouse})


@pytest.fixture
def clock(monkeypatch):
    """Noon today (UTC), held still for the sensor: no test straddles 03:10 or midnight."""
    now = datetime.combine(datetime.now(UTC).date(), time(12), UTC)
    hold_clock(monkeypatch, now)
    return now


def test_days_due_leaves_yesterday_to_the_schedule_until_its_grace_passes():
    early = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
    late = datetime(2025, 3, 10, 4, 0, tzinfo=UTC)
    assert days_due(early, 7) == [date(2025, 3, 3) + timedelta(days=n) for n in range(6)]
    assert days_due(late, 7) == [date(2025, 3, 3) + timedelta(days=n) for n in range(7)]


def test_days_due_never_reaches_before_the_first_partition():
    assert days_due(datetime(2025, 1, 4, 12, tzinfo=UTC), 7) == [
        date(2025, 1, 1),
        date(2025, 1, 2),
        date(2025, 1, 3),
    ]


def test_three_days_of_downtime_heal_on_the_next_evaluation(engine, clock):
    instance = DagsterInstance.ephemeral()
    due = days_due(clock, 7)
    # Metered up to three days before the end of the look-back, then the daemon was down.
    down = due[-3:]
    materialize_range(due[0], due[-4], instance=instance)

    requests = missed_days_sensor(sensor_context(instance))

    assert [requested_days(r) for r in requests] == [
        (down[0].isoformat(), down[-1].isoformat())
    ]  # fmt: skip
    # Once that run has run (as the daemon runs it), nothing is left to catch up.
    assert run_requested(requests[0], instance).success
    assert isinstance(missed_days_sensor(sensor_context(instance)), SkipReason)


def test_gaps_are_requested_as_separate_single_run_ranges(engine, clock):
    instance = DagsterInstance.ephemeral()
    due = days_due(clock, 7)
    materialize_range(due[2], due[3], instance=instance)
    requests = missed_days_sensor(sensor_context(instance))
    ranges = [requested_days(r) for r in requests]
    assert ranges[0] == (due[0].isoformat(), due[1].isoformat())
    assert ranges[1][0] == due[4].isoformat()


def test_a_day_whose_last_run_failed_is_asked_for_again(engine, clock):
    """Metered once, then a re-run failed (here on bad source data): the day is not fully
    metered any more, though its quotes were materialised before."""
    instance = DagsterInstance.ephemeral()
    due = days_due(clock, 7)
    materialize_range(due[0], due[-1], instance=instance)
    assert isinstance(missed_days_sensor(sensor_context(instance)), SkipReason)

    add_deployment(engine, "dep-a")
    day = due[2]
    add_version(engine, "x:1", "dep-a", "quantum_computer", utc(day.year, day.month, day.day))
    failed = materialize_range(day, day, instance=instance, raise_on_error=False)
    assert not failed.success

    requests = missed_days_sensor(sensor_context(instance))
    assert [requested_days(r) for r in requests] == [
        (day.isoformat(), day.isoformat())
    ]  # fmt: skip


def test_a_range_is_asked_for_again_only_after_six_hours(clock, monkeypatch):
    """Same run key within a period (Dagster launches a key once), a new one after it."""
    instance = DagsterInstance.ephemeral()  # nothing metered: the whole look-back is due

    def keys_at(now):
        hold_clock(monkeypatch, now)
        return [r.run_key for r in missed_days_sensor(sensor_context(instance))]

    assert keys_at(clock) == keys_at(clock + timedelta(hours=5, minutes=59))
    assert keys_at(clock) != keys_at(clock + timedelta(hours=6))
