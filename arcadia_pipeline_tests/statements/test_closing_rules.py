"""What closes a month and what refuses to: missing days, unknown plans, months outside the
partitions or past retention; the grace setting, the schedule and the partitions."""

from datetime import UTC, date, datetime

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    SkipReason,
    TimeWindowPartitionMapping,
    build_schedule_context,
)
from sqlalchemy import text

from arcadia_pipeline.defs.statements.month_close import close_cron
from arcadia_pipeline.orchestration.partitions import daily_partitions, monthly_partitions
from arcadia_pipeline.settings import SettingsError, load_settings, settings
from arcadia_pipeline.statements.closing import closes_at
from arcadia_pipeline_tests.statements.support import (
    FEBRUARY,
    check_results,
    price_month,
    run_requested,
    sensor_requests,
    statements,
)
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    defs,
    failure_messages,
    materialize_range,
    utc,
)

CLOSED = datetime(2025, 3, 4, 2, 30, tzinfo=UTC)
month_close_schedule = defs.resolve_schedule_def("month_close_schedule")


@pytest.fixture
def source(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    return engine


def test_a_month_with_a_missing_day_does_not_close_until_the_day_is_metered(source, monkeypatch):
    instance = DagsterInstance.ephemeral()
    materialize_range(FEBRUARY, date(2025, 2, 16), instance=instance)
    materialize_range(date(2025, 2, 18), date(2025, 2, 28), instance=instance)
    price_month(FEBRUARY, datetime(2025, 3, 1, tzinfo=UTC), instance, monkeypatch)
    draft = statements(source, FEBRUARY)
    assert draft["dep-a"]["status"] == "draft"  # a draft needs no complete month

    failed = price_month(FEBRUARY, CLOSED, instance, monkeypatch, raise_on_error=False)

    assert not failed.success
    message = failure_messages(failed)
    assert "monthly_usage_statements failed on 2025-02: cannot close 2025-02" in message
    assert "not metered by every daily asset: 2025-02-17" in message
    assert statements(source, FEBRUARY) == draft  # nothing written
    later = datetime(2025, 3, 6, tzinfo=UTC)
    waiting = sensor_requests(instance, monkeypatch, later)
    assert isinstance(waiting, SkipReason) and "2025-02-17" in waiting.skip_message

    # The day is metered; the month-to-date figures after it are then stale until
    # missed_days_sensor refreshes them, and the month waits for that too.
    materialize_range(date(2025, 2, 17), date(2025, 2, 17), instance=instance)
    waiting = sensor_requests(instance, monkeypatch, later)
    assert "stale (to be refreshed by missed_days_sensor): 2025-02-18 to 2025-02-28" in (
        waiting.skip_message
    )
    refreshed = ("usage_period_aggregates", "deployment_quotes")
    materialize_range(date(2025, 2, 18), date(2025, 2, 28), assets=refreshed, instance=instance)
    # Now the sensor sees the month's days written since its draft, and the run it asks for
    # closes it.
    requests = sensor_requests(instance, monkeypatch, later)
    assert [r.partition_key for r in requests] == ["2025-02-01"]
    assert check_results(run_requested(requests[0], instance)) == {
        "statements_equal_the_month_priced_now": True
    }
    closed = statements(source, FEBRUARY)["dep-a"]
    assert (closed["status"], closed["closed_at"]) == ("closed", later)
    assert closed["lines"]["droplet_hours"]["qty"] == 672


def test_a_failed_close_is_asked_for_again_in_the_next_retry_period(source, monkeypatch):
    instance = DagsterInstance.ephemeral()
    materialize_range(FEBRUARY, date(2025, 2, 28), instance=instance)
    # The plan of the month's last day is not in the catalog (a snapshot's plan broken by
    # hand: a catalog change would make the days stale and the close wait for them).
    set_last_plan(source, "platinum")
    tick = datetime(2025, 3, 5, 3, tzinfo=UTC)  # the schedule's close was missed
    (first,) = sensor_requests(instance, monkeypatch, tick)
    assert first.tags["arcadia/trigger"] == "close"
    assert not run_requested(first, instance, raise_on_error=False).success
    assert statements(source, FEBRUARY) == {}

    # Until the next period the same run key (the daemon does not launch it twice); then a
    # new one, so the close is tried again without anyone noticing first.
    (same,) = sensor_requests(instance, monkeypatch, tick.replace(hour=5, minute=59))
    assert same.run_key == first.run_key
    set_last_plan(source, "starter")  # put right
    (again,) = sensor_requests(instance, monkeypatch, tick.replace(hour=6))
    assert again.run_key != first.run_key and again.partition_key == first.partition_key
    assert run_requested(again, instance).success
    assert statements(source, FEBRUARY)["dep-a"]["status"] == "closed"
    assert isinstance(sensor_requests(instance, monkeypatch, tick.replace(hour=12)), SkipReason)


def set_last_plan(engine, plan_code: str) -> None:
    """The plan of February's last snapshot, written over by hand."""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE metering.inventory_deployments SET plan_code = :plan "
                 "WHERE day = '2025-02-28'"),
            {"plan": plan_code},
        )  # fmt: skip


def test_a_plan_missing_from_the_catalog_fails_the_month_and_writes_nothing(source, monkeypatch):
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 27), date(2025, 2, 28), instance=instance)
    set_last_plan(source, "platinum")  # the plan the month ends on is not in the catalog

    failed = price_month(
        FEBRUARY, datetime(2025, 3, 1, tzinfo=UTC), instance, monkeypatch, raise_on_error=False
    )

    assert not failed.success
    assert "dep-a (plan 'platinum')" in failure_messages(failed)
    assert statements(source, FEBRUARY) == {}
    with source.connect() as connection:
        priced = connection.execute(text("SELECT count(*) FROM metering.statement_months"))
        assert priced.scalar_one() == 0


def test_a_month_retention_removed_records_of_is_never_priced_again(source, monkeypatch):
    instance = DagsterInstance.ephemeral()
    with source.begin() as connection:  # what retention recorded (retention/expiry.py)
        connection.execute(
            text("INSERT INTO metering.retention_removals (month, billing_kind, first_day, "
                 "last_day, records, removed_at) VALUES ('2025-02-01', 'droplet_hours', "
                 "'2025-02-01', '2025-02-28', 28, '2026-04-05 03:30Z')")
        )  # fmt: skip
    a_year_on = datetime(2026, 6, 1, tzinfo=UTC)
    failed = price_month(FEBRUARY, a_year_on, instance, monkeypatch, raise_on_error=False)
    assert (
        "cannot price 2025-02: retention removed usage records of 2025-02: droplet_hours "
        "2025-02-01 to 2025-02-28 (28 records, on 2026-04-05)"
    ) in failure_messages(failed)
    assert statements(source, FEBRUARY) == {}


def test_a_month_before_the_first_partition_is_refused_by_dagster(source, monkeypatch):
    with pytest.raises(Exception, match="2024-12-01"):
        price_month(date(2024, 12, 1), CLOSED, DagsterInstance.ephemeral(), monkeypatch)


def test_grace_days_are_read_and_validated_with_the_other_settings():
    assert load_settings({}).close_grace_days == 3
    assert load_settings({"ARCADIA_CLOSE_GRACE_DAYS": "0"}).close_grace_days == 0
    assert load_settings({"ARCADIA_CLOSE_GRACE_DAYS": "28"}).close_grace_days == 28
    for bad in ("29", "-1", "three", "2.5"):
        with pytest.raises(SettingsError, match="ARCADIA_CLOSE_GRACE_DAYS must be a whole"):
            load_settings({"ARCADIA_CLOSE_GRACE_DAYS": bad})


def test_a_month_closes_at_its_end_plus_the_grace_period():
    assert closes_at(FEBRUARY) == datetime(2025, 3, 4, tzinfo=UTC)
    assert closes_at(FEBRUARY, 0) == datetime(2025, 3, 1, tzinfo=UTC)
    assert closes_at(date(2025, 1, 1), 28) == datetime(2025, 3, 1, tzinfo=UTC)
    assert closes_at(date(2025, 12, 1), 3) == datetime(2026, 1, 4, tzinfo=UTC)


def test_the_schedule_closes_the_previous_month_after_the_grace_period():
    assert month_close_schedule.cron_schedule == "30 2 4 * *" == close_cron(3)
    assert month_close_schedule.execution_timezone == "UTC"
    context = build_schedule_context(scheduled_execution_time=CLOSED)
    request = month_close_schedule(context)
    assert (request.partition_key, request.run_key) == ("2025-02-01", "close:2025-02")


def test_months_are_utc_partitions_from_the_first_day_reading_their_days():
    daily, monthly = daily_partitions(settings()), monthly_partitions(settings())
    asset = defs.get_assets_def("monthly_usage_statements")
    assert asset.partitions_def == monthly
    assert monthly.timezone == "UTC"
    assert monthly.get_first_partition_key() == "2025-01-01"
    this_month = datetime.now(UTC).date().replace(day=1).isoformat()
    assert monthly.get_last_partition_key() == this_month  # it can hold a draft
    for upstream in ("resource_inventory", "usage_records"):
        mapping = asset.get_partition_mapping(AssetKey(upstream))
        assert isinstance(mapping, TimeWindowPartitionMapping)
        days = mapping.get_upstream_mapped_partitions_result_for_partitions(
            monthly.subset_with_partition_keys(["2025-02-01"]),
            monthly,
            daily,
        ).partitions_subset.get_partition_keys()
        assert list(days) == [f"2025-02-{n:02d}" for n in range(1, 29)]
