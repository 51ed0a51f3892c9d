"""The nightly schedule: at 01:10 UTC it materialises yesterday's UTC partition, all five assets,
the run tagged with its day.

Ticks are evaluated in-process with `build_schedule_context`, as the daemon would evaluate them;
no database is needed (a schedule only builds run requests).
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, build_schedule_context

from arcadia_pipeline.defs.daily import metering_job
from arcadia_pipeline_tests.support import ASSETS, defs

SCHEDULE = "daily_metering_schedule"
JOB = "daily_metering_job"


def tick(scheduled_execution_time: datetime):
    """Evaluate one tick of the schedule as the daemon would at that instant."""
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance,
            scheduled_execution_time=scheduled_execution_time,
            repository_def=defs.get_repository_def(),  # resolves the day's partition tags
        )
        return defs.resolve_schedule_def(SCHEDULE).evaluate_tick(context)


def test_the_schedule_in_the_definitions_is_the_one_in_metering_job_py():
    [built] = metering_job.defs().schedules
    loaded = defs.resolve_schedule_def(SCHEDULE)
    assert (built.name, built.cron_schedule, built.job_name) == (
        loaded.name,
        loaded.cron_schedule,
        loaded.job_name,
    )


def test_the_schedule_fires_daily_at_0110_utc():
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert schedule.cron_schedule == "10 1 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == JOB


@pytest.mark.parametrize(
    ("scheduled_at", "partition"),
    [
        (datetime(2025, 1, 2, 1, 10, tzinfo=UTC), "2025-01-01"),  # first partition
        (datetime(2025, 2, 1, 1, 10, tzinfo=UTC), "2025-01-31"),  # across a month end
        (datetime(2025, 3, 1, 1, 10, tzinfo=UTC), "2025-02-28"),  # February, common year
        (datetime(2025, 4, 1, 1, 10, tzinfo=UTC), "2025-03-31"),
        (datetime(2025, 7, 15, 1, 10, tzinfo=UTC), "2025-07-14"),  # an ordinary mid-month day
        (datetime(2026, 1, 1, 1, 10, tzinfo=UTC), "2025-12-31"),  # across a year end
        (datetime(2028, 2, 29, 1, 10, tzinfo=UTC), "2028-02-28"),  # on the leap day
        (datetime(2028, 3, 1, 1, 10, tzinfo=UTC), "2028-02-29"),  # the leap day itself
    ],
)
def test_each_tick_requests_exactly_yesterdays_utc_partition(scheduled_at, partition):
    result = tick(scheduled_at)
    assert result.skip_message is None
    [request] = result.run_requests
    assert request.partition_key == partition
    assert request.tags["dagster/partition"] == partition
    assert request.tags["arcadia/days"] == partition  # visible in the UI's run list
    # One run per day: a re-evaluated tick for the same day is de-duplicated by its run key.
    assert request.run_key == partition
    # The run targets the job (not an ad-hoc selection), so it runs all five assets.
    assert request.job_name in (None, JOB)
    assert request.asset_selection is None


def test_a_tick_given_in_another_timezone_still_targets_the_previous_utc_day():
    # 02:10 at UTC+01:00 is 01:10 UTC on 1 February: yesterday in UTC is 31 January.
    cet = timezone(timedelta(hours=1))
    [request] = tick(datetime(2025, 2, 1, 2, 10, tzinfo=cet)).run_requests
    assert request.partition_key == "2025-01-31"


def test_no_run_before_the_first_partition_is_complete():
    # Partitions start on 2025-01-01; at 01:10 that day no UTC day of the range is over yet.
    result = tick(datetime(2025, 1, 1, 1, 10, tzinfo=UTC))
    assert not result.run_requests


def test_the_scheduled_job_materialises_the_five_metering_assets():
    job = defs.resolve_job_def(JOB)
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert keys == set(ASSETS)
    # Daily-partitioned like the assets, so a tick's partition key addresses one UTC day.
    assert job.partitions_def == defs.get_assets_def("usage_records").partitions_def
    assert job.partitions_def.timezone == "UTC"
