from dagster import BackfillPolicy, DefaultScheduleStatus, DefaultSensorStatus

from arcadia_pipeline_tests.support import ASSETS, defs


def test_definitions_load_and_wire_the_five_assets_in_order():
    defs.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = [key.to_user_string() for key in graph.toposorted_asset_keys]
    assert [key for key in keys if key in ASSETS] == list(ASSETS)
    assert keys.index("monthly_usage_statements") > keys.index("usage_records")
    for name in ASSETS:
        asset = defs.get_assets_def(name)
        assert asset.backfill_policy == BackfillPolicy.single_run()
        assert asset.partitions_def.timezone == "UTC"
        assert asset.partitions_def.get_first_partition_key() == "2025-01-01"


def test_job_and_schedule_exist():
    job = defs.resolve_job_def("daily_metering_job")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("daily_metering_schedule")
    assert schedule.cron_schedule == "10 1 * * *"
    assert schedule.execution_timezone == "UTC"


def test_schedules_and_sensors_run_without_being_switched_on():
    for name in ("daily_metering_schedule", "retention_schedule"):
        assert defs.resolve_schedule_def(name).default_status == DefaultScheduleStatus.RUNNING
    for name in ("missed_days_sensor", "late_corrections_sensor"):
        assert defs.resolve_sensor_def(name).default_status == DefaultSensorStatus.RUNNING


def test_each_asset_says_what_its_days_read():
    """Dagster's deps say "the same day"; a month-to-date read would make a range two runs
    (orchestration/test_partitions.py), so the description says what the day really reads."""
    aggregates = defs.get_assets_def("usage_period_aggregates")
    assert aggregates.descriptions_by_key[aggregates.key].endswith(
        "Each day reads usage_records: the month to date."
    )
    quotes = defs.get_assets_def("deployment_quotes")
    assert {key.to_user_string() for key in quotes.dependency_keys} == {
        "usage_period_aggregates",
        "resource_inventory",
    }
