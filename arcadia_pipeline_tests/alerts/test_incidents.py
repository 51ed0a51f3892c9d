"""Each incident reaches the local SMTP server and webhook once, through real Dagster runs and
sensor ticks: a failed run, a failed blocking check, a version recorded in the future,
reconciliation findings, a month not closed by its deadline and a freshness miss; a green
night sends nothing.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    build_run_status_sensor_context,
    build_sensor_context,
)
from sqlalchemy import text

from arcadia_pipeline.defs.daily.reconciliation import ReconcileConfig, reconciliation_job
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline_tests.alerts.conftest import assert_one_alert, incidents
from arcadia_pipeline_tests.statements.support import sensor_requests
from arcadia_pipeline_tests.support import (
    ASSETS,
    add_deployment,
    add_version,
    defs,
    evaluate_freshness,
    hold_clock,
    materialize_range,
    sensor,
    utc,
)

DAY = date(2025, 3, 10)
DAILY_FRESHNESS = {AssetCheckKey(AssetKey(asset), "freshness_check") for asset in ASSETS}
STATEMENTS_FRESHNESS = AssetCheckKey(
    AssetKey("monthly_usage_statements"), "statements_closed_on_time"
)


def resources(database_url):
    return {
        "warehouse": WarehouseResource(database_url=database_url),
        "arcadia_source": ArcadiaSourceResource(database_url=database_url),
    }


def meter_day(instance, day=DAY):
    """The nightly run of one day, as the schedule launches it."""
    return defs.resolve_job_def("daily_metering_job").execute_in_process(
        instance=instance, partition_key=day.isoformat(), raise_on_error=False
    )


def run_failure_tick(result, instance, database_url):
    """run_failure_alert_sensor evaluated on the failed run, as the daemon evaluates it."""
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"warehouse": WarehouseResource(database_url=database_url)},
    ).for_run_failure()
    sensor("run_failure_alert_sensor")(context)


def check_tick(instance, database_url, cursor=None):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=database_url)},
    )
    sensor("check_failure_alert_sensor")(context)
    return context.cursor


def corrections_tick(instance, database_url, cursor=None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources=resources(database_url)
    )
    return sensor("late_corrections_sensor")(context)


def reconcile(instance, database_url):
    config = {"ops": {"reconcile_source": {"config": ReconcileConfig().model_dump()}}}
    result = reconciliation_job.execute_in_process(
        run_config=config, resources=resources(database_url), instance=instance
    )
    assert result.success
    return result


@pytest.fixture
def bad_source(engine):
    """A resource of a kind the kind map does not know: the day fails at once, named."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "lb:1", "dep-a", "load_balancer", utc(2025, 1, 1))


def test_a_failed_run_is_told_once_with_job_asset_days_and_error(
    engine, database_url, channels, bad_source
):
    instance = DagsterInstance.ephemeral()
    result = meter_day(instance)
    assert not result.success

    run_failure_tick(result, instance, database_url)
    run_failure_tick(result, instance, database_url)  # the same failure evaluated again

    mail, post = assert_one_alert(
        channels,
        "run failed: daily_metering_job on 2025-03-10",
        "job: daily_metering_job",
        "resource_inventory",
        "days: 2025-03-10",
        "error: resource_inventory failed on 2025-03-10: the source has 1 row(s) the "
        "pipeline cannot meter",
    )
    assert post["type"] == "failure"
    assert "Traceback" not in mail  # the first line of the error, not the stack
    assert incidents(engine) == [f"run:{result.run_id}"]


def test_a_green_night_sends_nothing(engine, database_url, channels, monkeypatch):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=50)
    instance = DagsterInstance.ephemeral()
    assert meter_day(instance).success

    cursor = check_tick(instance, database_url)
    assert cursor is not None  # the checks of the night were read, all passed
    assert corrections_tick(instance, database_url).run_requests == []
    hold_clock(monkeypatch, datetime(2025, 3, 11, 4, 40, tzinfo=UTC))
    reconcile(instance, database_url)
    sensor_requests(instance, monkeypatch, datetime(2025, 3, 11, 5, tzinfo=UTC))

    assert channels.emails == [] and channels.posts == []
    assert incidents(engine) == []


def test_a_failed_blocking_check_is_told_once(engine, database_url, channels, doubling_trigger):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    result = meter_day(instance)
    assert not result.success

    cursor = check_tick(instance, database_url)
    check_tick(instance, database_url, cursor)  # nothing new
    check_tick(instance, database_url)  # the same evaluations read again (a lost cursor)

    assert_one_alert(
        channels,
        "check failed: usage_records_within_bounds on usage_records (2025-03-10)",
        "job: daily_metering_job",
        "asset: usage_records",
        "days: 2025-03-10",
        "droplet:1: 48.000000000000000000 hours on 2025-03-10",
    )
    [incident] = incidents(engine)
    assert incident == (
        f"check:usage_records:usage_records_within_bounds:2025-03-10:{result.run_id}"
    )


def test_a_version_recorded_in_the_future_is_told_once(engine, database_url, channels):
    today = datetime.now(UTC).date()
    day = today - timedelta(days=3)
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    materialize_range(day, day)
    instance = DagsterInstance.ephemeral()
    first = corrections_tick(instance, database_url)
    ahead = datetime.now(UTC) + timedelta(days=1)
    midday = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    add_version(engine, "snapshot:ahead", "dep-a", "snapshot", midday,
                midday + timedelta(hours=6), size_gb=10, recorded_at=ahead)  # fmt: skip

    second = corrections_tick(instance, database_url, first.cursor)
    corrections_tick(instance, database_url, second.cursor)  # still in the future: named again

    assert_one_alert(
        channels,
        "recorded_at in the future: resource snapshot:ahead",
        "job: late_corrections_sensor",
        "asset: resource_inventory",
        f"days: from {day.isoformat()}",
        f"recorded_at {ahead.isoformat()}",
    )
    [incident] = incidents(engine)
    assert incident.startswith("future:resource snapshot:ahead version valid_from")


def test_reconciliation_findings_are_told_once_per_run(engine, database_url, channels, monkeypatch):
    add_deployment(engine, "dep-a", "starter")
    add_deployment(engine, "dep-b", "starter")
    add_version(engine, "spaces:big", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=5000)
    add_version(engine, "droplet:1", "dep-b", "droplet", utc(2025, 1, 1))
    materialize_range(date(2025, 2, 10), date(2025, 2, 12))
    with engine.begin() as connection:  # deleted outright: no timestamp says so
        connection.execute(
            text("DELETE FROM arcadia.resource_versions WHERE resource_id = 'spaces:big'")
        )
    hold_clock(monkeypatch, datetime(2025, 2, 20, 4, 40, tzinfo=UTC))
    instance = DagsterInstance.ephemeral()
    result = reconcile(instance, database_url)

    assert_one_alert(
        channels,
        "reconciliation found 3 changed day(s): 2025-02-10 to 2025-02-12",
        "job: reconciliation_job",
        "asset: resource_inventory",
        "days: 2025-02-10 to 2025-02-12",
        "deployments: dep-a",
    )
    assert "dep-b" not in channels.posts[0]["message"]
    assert incidents(engine) == [f"reconcile:{result.run_id}"]


def test_a_month_not_closed_by_its_deadline_is_told_once_with_why(engine, channels, monkeypatch):
    """February is due to close on 4 March (grace 3 days); a day after that it is still not
    closed, its days not all metered: told once, however many ticks see it."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    materialize_range(date(2025, 2, 1), date(2025, 2, 27))  # the 28th never metered
    instance = DagsterInstance.ephemeral()

    sensor_requests(instance, monkeypatch, datetime(2025, 3, 4, 12, tzinfo=UTC))
    assert channels.posts == []  # due, but the sensor's day of grace is not over
    sensor_requests(instance, monkeypatch, datetime(2025, 3, 5, 0, 5, tzinfo=UTC))
    sensor_requests(instance, monkeypatch, datetime(2025, 3, 5, 0, 10, tzinfo=UTC))

    assert_one_alert(
        channels,
        "2025-02 did not close by its deadline",
        "job: monthly_statements_job",
        "asset: monthly_usage_statements",
        "days: 2025-02",
        "2025-02-28",
    )
    assert incidents(engine) == ["close:2025-02"]


def test_a_day_not_metered_by_morning_is_told_once_for_all_daily_assets(
    engine, database_url, channels
):
    """The day due is not metered: the five daily assets' freshness checks fail, evaluated
    twice by the sensor's runs; one alert, for the deadline, naming every asset."""
    instance = DagsterInstance.ephemeral()
    evaluate_freshness(instance, list(DAILY_FRESHNESS))
    cursor = check_tick(instance, database_url)
    evaluate_freshness(instance, list(DAILY_FRESHNESS))
    check_tick(instance, database_url, cursor)

    mail, _ = assert_one_alert(
        channels,
        "check failed: freshness_check on " + ", ".join(sorted(ASSETS)),
        "to have arrived",
        "severity: WARN",
    )
    [incident] = incidents(engine)
    assert incident.startswith("freshness:freshness_check:") and incident.endswith("T03:00Z")


def test_a_month_closed_late_is_one_incident_for_its_check_and_the_close_sensor(
    engine, database_url, channels, monkeypatch
):
    """statements_closed_on_time fails on 5 March for February; statement_months_sensor sees
    the same missed close: one alert between them."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    materialize_range(date(2025, 2, 1), date(2025, 2, 27))
    instance = DagsterInstance.ephemeral()

    hold_clock(monkeypatch, datetime(2025, 3, 5, 0, 5, tzinfo=UTC))
    evaluate_freshness(instance, [STATEMENTS_FRESHNESS])
    check_tick(instance, database_url)
    sensor_requests(instance, monkeypatch, datetime(2025, 3, 5, 0, 10, tzinfo=UTC))

    assert_one_alert(
        channels,
        "check failed: statements_closed_on_time on monthly_usage_statements",
        "2025-02 is not closed by its deadline 2025-03-05 00:00 UTC",
        "2025-02-28",
    )
    assert incidents(engine) == ["close:2025-02"]
