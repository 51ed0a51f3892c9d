"""What fails an asset is never retried unless a retry can heal it, wherever in the asset it
is raised, and a range that is reversed or names a key that is not a partition is refused
at once, naming the key and writing nothing."""

from datetime import date, timedelta

import pytest
from dagster import DagsterEventType, DagsterInstance

from arcadia_pipeline import utc
from arcadia_pipeline.defs.metering import usage_records as usage_records_defs
from arcadia_pipeline.orchestration.partitions import range_tags
from arcadia_pipeline_tests.support import (
    NOTHING_WRITTEN,
    add_deployment,
    add_version,
    defs,
    failure_messages,
    materialize_range,
    written_rows,
)


@pytest.fixture
def source(engine):
    add_deployment(engine, "dep-a")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc.day_start(date(2025, 1, 1)))
    return engine


def attempts(result, instance) -> int:
    """How many times the run's steps were tried: one, plus one per retry."""
    retries = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY
    ).records
    return 1 + len(retries)


def run_range(first: date, last: date, instance: DagsterInstance):
    """The daily job over [first, last] as a range run, however the range is ordered."""
    tags = {**range_tags(first, last)}
    return defs.resolve_job_def("daily_metering_job").execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )


def test_a_reversed_range_is_refused_at_once_and_writes_nothing(source):
    instance = DagsterInstance.ephemeral()
    result = run_range(date(2025, 5, 10), date(2025, 5, 1), instance)
    assert not result.success
    assert attempts(result, instance) == 1
    message = failure_messages(result)
    assert "partition range 2025-05-10...2025-05-01 is reversed: its start is after its end" in (
        message
    )
    assert "min() arg" not in message
    assert written_rows(source) == NOTHING_WRITTEN


def test_a_reversed_range_of_months_fails_instead_of_pricing_nothing(source):
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("monthly_statements_job").execute_in_process(
        instance=instance,
        tags=range_tags(date(2025, 5, 1), date(2025, 3, 1)),
        raise_on_error=False,
    )
    assert not result.success
    assert "partition range 2025-05-01...2025-03-01 is reversed" in failure_messages(result)


def test_a_range_past_the_last_partition_names_the_day_that_is_not_one(source):
    instance = DagsterInstance.ephemeral()
    today = utc.now().date()
    result = run_range(today - timedelta(days=2), today + timedelta(days=1), instance)
    assert not result.success
    assert attempts(result, instance) == 1
    assert (
        f"partition range {today - timedelta(days=2)}...{today + timedelta(days=1)}: "
        f"{today + timedelta(days=1)} is not a partition (the partitions run from 2025-01-01 "
        f"to {today - timedelta(days=1)})"
    ) in failure_messages(result)
    assert written_rows(source) == NOTHING_WRITTEN


def test_a_bug_anywhere_in_an_asset_fails_once_naming_the_asset(source, monkeypatch):
    """Raised before any day is named (here: creating the month's partitions)."""

    def broken(*args):
        raise ValueError("a bug")

    monkeypatch.setattr(usage_records_defs, "ensure_month_partitions", broken)
    instance = DagsterInstance.ephemeral()
    result = materialize_range(
        date(2025, 3, 1), date(2025, 3, 2), instance=instance, raise_on_error=False
    )
    assert not result.success
    assert attempts(result, instance) == 1
    assert "usage_records failed on 2025-03-01 to 2025-03-02: a bug" in failure_messages(result)
