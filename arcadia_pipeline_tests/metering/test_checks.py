"""Each usage_records check passes on real metering and fails, naming the ids, on
purpose-built bad data; a failed blocking check stops the downstream assets."""

from datetime import date
from decimal import Decimal

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from sqlalchemy import text

from arcadia_pipeline.metering.checks import (
    incomplete_records,
    month_closure_errors,
    out_of_bounds_records,
)
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    defs,
    materialize_day,
    materialize_range,
    set_granularity,
    utc,
)

DAY = date(2025, 3, 10)


@pytest.fixture
def metered(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=50)
    add_version(engine, "dns:a.com", "dep-a", "dns_zone", utc(2025, 1, 1))
    materialize_range(
        date(2025, 2, 1), date(2025, 2, 28), assets=("resource_inventory", "usage_records")
    )
    materialize_day(DAY, assets=("resource_inventory", "usage_records"))
    return engine


def _run(engine, sql: str, **params) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def test_checks_pass_on_real_metering(metered):
    with metered.connect() as connection:
        assert incomplete_records(connection, DAY) == []
        assert out_of_bounds_records(connection, DAY) == []
        assert month_closure_errors(connection, date(2025, 2, 28)) == []


def test_completeness_names_missing_and_unexplained_records(metered):
    _run(
        metered,
        "DELETE FROM metering.usage_records WHERE resource_id = 'spaces:1' "
        "AND period_start = '2025-03-10'",
    )
    _run(
        metered,
        "INSERT INTO metering.usage_records (deployment_id, resource_id, resource_kind,"
        " period_start, granularity, qty) VALUES ('dep-a', 'droplet:ghost', 'droplet_hours',"
        " '2025-03-10', 'day', 1)",
    )
    with metered.connect() as connection:
        problems = incomplete_records(connection, DAY)
    assert any("missing dep-a/spaces:1@2025-03-10T00:00Z" in p for p in problems)
    assert any("unexpected dep-a/droplet:ghost" in p for p in problems)


def test_bounds_name_negative_overlong_and_sub_attributed_records(metered):
    _run(metered, "ALTER TABLE metering.usage_records DROP CONSTRAINT usage_records_qty_check")
    try:
        _run(
            metered,
            "UPDATE metering.usage_records SET qty = 25 "
            "WHERE resource_id = 'droplet:1' AND period_start = '2025-03-10'",
        )
        _run(
            metered,
            "UPDATE metering.usage_records SET qty = -1 "
            "WHERE resource_id = 'spaces:1' AND period_start = '2025-03-10'",
        )
        _run(
            metered,
            "UPDATE metering.usage_records SET sub_attribution = '{\"team\": 1}' "
            "WHERE resource_id = 'dns:a.com' AND period_start = '2025-03-10'",
        )
        with metered.connect() as connection:
            problems = out_of_bounds_records(connection, DAY)
    finally:
        _run(metered, "TRUNCATE metering.usage_records")
        _run(
            metered,
            "ALTER TABLE metering.usage_records ADD CONSTRAINT usage_records_qty_check "
            "CHECK (qty >= 0)",
        )
    assert "droplet:1: 25.000000000000000000 hours on 2025-03-10" in problems
    assert any(p.startswith("dep-a/spaces:1@") and "qty < 0" in p for p in problems)
    assert any(p.startswith("dep-a/dns:a.com@") and "sub_attribution" in p for p in problems)


def test_bounds_name_an_hourly_record_over_one_hour(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    set_granularity(engine, "droplet_hours", "hour")
    materialize_day(DAY, assets=("resource_inventory", "usage_records"))
    _run(
        engine,
        "UPDATE metering.usage_records SET qty = 1.5 "
        "WHERE resource_id = 'droplet:1' AND period_start = '2025-03-10T07:00Z'",
    )
    with engine.connect() as connection:
        problems = out_of_bounds_records(connection, DAY)
    # The day is 24.5 hours too: both bounds name it.
    assert problems == [
        "droplet:1: 24.500000000000000000 hours on 2025-03-10",
        "droplet:1: 1.500000000000000000 hours in the hour 2025-03-10T07:00Z",
    ]


@pytest.mark.citus
def test_month_closure_names_a_resource_whose_month_does_not_sum(metered):
    _run(
        metered,
        "UPDATE metering.usage_records SET qty = qty + 0.000001 "
        "WHERE resource_id = 'spaces:1' AND period_start = '2025-02-14'",
    )
    with metered.connect() as connection:
        problems = month_closure_errors(connection, date(2025, 2, 28))
    assert problems == [
        "spaces:1: month sums to 50.000001000000000000, expected 50.000000000000000000"
    ]


def test_month_closure_is_exact_to_the_last_digit(metered):
    """The records telescope, so the check needs no tolerance: one unit of 1e-18 is seen."""
    _run(
        metered,
        "UPDATE metering.usage_records SET qty = qty - 0.000000000000000001 "
        "WHERE resource_id = 'dns:a.com' AND period_start = '2025-02-03'",
    )
    with metered.connect() as connection:
        problems = month_closure_errors(connection, date(2025, 2, 28))
    assert problems == [
        "dns:a.com: month sums to 0.999999999999999999, expected 1.000000000000000000"
    ]


def test_a_resource_that_changes_kind_at_midnight_is_metered_and_its_month_closes(engine):
    """A droplet until 02-15 00:00, then a 100 GB bucket under the same id: each kind has
    its own days, its records their own billing kinds, and the month-closure check does not
    sum the two kinds as one stretch (docs/domain.md §4)."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "res:1", "dep-a", "droplet", utc(2025, 1, 1), utc(2025, 2, 15))
    add_version(engine, "res:1", "dep-a", "spaces_bucket", utc(2025, 2, 15), size_gb=100)
    result = materialize_range(date(2025, 2, 1), date(2025, 2, 28))
    assert result.success
    with engine.connect() as connection:
        totals = dict(
            connection.execute(
                text("SELECT resource_kind, sum(qty) FROM metering.usage_records "
                     "WHERE resource_id = 'res:1' GROUP BY 1")
            ).all()
        )  # fmt: skip
        assert month_closure_errors(connection, date(2025, 2, 28)) == []
    assert totals["droplet_hours"] == 14 * 24
    assert abs(totals["spaces_gb_month"] - Decimal(100) * 14 / 28) < Decimal("1e-17")


@pytest.mark.citus
def test_month_closure_passes_over_a_resource_not_with_one_deployment_all_month(engine):
    """Grouped by deployment and resource: a droplet that moved from dep-a to dep-b, one
    unattributed until it was adopted, one unattributed all month are each with one
    deployment for no whole month, so their records are not summed as one stretch (no false
    problem, nor one for the unattributed key ''); a droplet of dep-a all month still is."""
    add_deployment(engine, "dep-a", "starter")
    add_deployment(engine, "dep-b", "starter")
    moved, adopted = utc(2025, 2, 10, 12), utc(2025, 2, 5)
    add_version(engine, "droplet:moved", "dep-a", "droplet", utc(2025, 1, 1), moved)
    add_version(engine, "droplet:moved", "dep-b", "droplet", moved)
    add_version(engine, "droplet:adopted", None, "droplet", utc(2025, 1, 1), adopted)
    add_version(engine, "droplet:adopted", "dep-a", "droplet", adopted)
    add_version(engine, "droplet:orphan", None, "droplet", utc(2025, 1, 1))
    add_version(engine, "droplet:stable", "dep-a", "droplet", utc(2025, 1, 1))
    assert materialize_range(
        date(2025, 2, 1), date(2025, 2, 28), assets=("resource_inventory", "usage_records")
    ).success
    with engine.connect() as connection:
        assert month_closure_errors(connection, date(2025, 2, 28)) == []
    _run(
        engine,
        "UPDATE metering.usage_records SET qty = qty + 0.000001 WHERE period_start = '2025-02-20'",
    )
    with engine.connect() as connection:
        problems = month_closure_errors(connection, date(2025, 2, 28))
    assert problems == [
        "droplet:stable: month sums to 672.000001000000000000, expected 672.000000000000000000"
    ]


@pytest.mark.citus
def test_failed_blocking_check_stops_downstream_and_names_ids(engine, doubling_trigger):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    result = materialize_day(DAY, instance=instance, raise_on_error=False)

    assert not result.success
    evaluations = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    bounds = evaluations["usage_records_within_bounds"]
    assert not bounds.passed
    assert "droplet:1: 48.000000000000000000 hours on 2025-03-10" in bounds.description
    # usage_records was written, but nothing downstream of the failed check ran.
    keys = {event.asset_key for event in result.asset_materializations_for_node("usage_records")}
    assert keys == {AssetKey("usage_records")}
    assert result.asset_materializations_for_node("usage_period_aggregates") == []
    assert result.asset_materializations_for_node("deployment_quotes") == []
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM metering.usage_period_aggregates")
            ).scalar_one()
            == 0
        )


def test_a_range_run_names_each_days_outcome(engine, doubling_trigger):
    """One run over three days, the droplet's hours doubled on each: its one evaluation per
    check names the days that passed and those that failed."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    result = materialize_range(
        date(2025, 3, 9),
        date(2025, 3, 11),
        assets=("resource_inventory", "usage_records"),
        raise_on_error=False,
    )

    outcomes = {
        e.check_name: (e.passed, *(e.metadata[k].value for k in ("days_passed", "days_failed")))
        for e in result.get_asset_check_evaluations()
    }
    assert outcomes == {
        "usage_records_complete": (True, "2025-03-09 to 2025-03-11", "-"),
        "usage_records_within_bounds": (False, "-", "2025-03-09 to 2025-03-11"),
        "usage_records_month_closure": (True, "2025-03-09 to 2025-03-11", "-"),
    }


def test_a_check_counts_every_problem_and_lists_the_first_twenty(engine):
    """30 hourly records missing: 20 named, 30 counted, in the rule and in the check's
    result (its `problems` metadata and "… and 10 more")."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    add_version(engine, "droplet:2", "dep-a", "droplet", utc(2025, 1, 1))
    set_granularity(engine, "droplet_hours", "hour")
    materialize_day(DAY, assets=("resource_inventory", "usage_records"))
    _run(
        engine,
        "DELETE FROM metering.usage_records WHERE resource_id = 'droplet:1' "
        "OR (resource_id = 'droplet:2' AND period_start < '2025-03-10T06:00Z')",
    )
    with engine.connect() as connection:
        problems = incomplete_records(connection, DAY)
    assert (len(problems), problems.total) == (20, 30)

    key = AssetCheckKey(AssetKey("usage_records"), "usage_records_complete")
    job = defs.resolve_job_def("daily_metering_job")
    result = job.get_subset(asset_selection=set(), asset_check_selection={key}).execute_in_process(
        instance=DagsterInstance.ephemeral(), partition_key=DAY.isoformat(), raise_on_error=False
    )  # the check alone, on the day as it stands
    [complete] = result.get_asset_check_evaluations()
    assert not complete.passed
    assert complete.metadata["problems"].value == 30
    assert complete.description.endswith("… and 10 more")
