"""Freshness in Dagster's terms, through real runs on real PostgreSQL: yesterday's partition
of each daily asset by 03:00 UTC; the last billing month due closed by its end plus the
grace days plus one; the sensor that evaluates them; the jobs that leave them out."""

from datetime import UTC, date, datetime, time, timedelta

from dagster import AssetCheckKey, AssetKey, DagsterInstance, SkipReason, build_sensor_context

from arcadia_pipeline.statements.closing import close_deadline, last_month_due
from arcadia_pipeline_tests.statements.support import FEBRUARY, price_month
from arcadia_pipeline_tests.support import (
    ASSETS,
    add_deployment,
    add_version,
    defs,
    evaluate_freshness,
    hold_clock,
    materialize_day,
    materialize_range,
    sensor,
    utc,
)

STATEMENTS_CHECK = AssetCheckKey(AssetKey("monthly_usage_statements"), "statements_closed_on_time")
DAILY_CHECKS = {AssetCheckKey(AssetKey(asset), "freshness_check") for asset in ASSETS}


def day_due(now: datetime) -> date:
    """The partition Dagster's check expects now: yesterday from 03:00 UTC, else the day
    before."""
    deadline = datetime.combine(now.date(), time(3), tzinfo=UTC)
    if now < deadline:
        deadline -= timedelta(days=1)
    return deadline.date() - timedelta(days=1)


def verdicts(result) -> dict[AssetCheckKey, tuple[bool, str]]:
    return {
        AssetCheckKey(e.asset_key, e.check_name): (e.passed, e.description)
        for e in result.get_asset_check_evaluations()
    }


def metadata(result, key: AssetCheckKey) -> dict:
    [evaluation] = [
        e
        for e in result.get_asset_check_evaluations()
        if AssetCheckKey(e.asset_key, e.check_name) == key
    ]
    return {name: value.value for name, value in evaluation.metadata.items()}


def freshness_tick(instance: DagsterInstance):
    return sensor("freshness_checks_sensor")(build_sensor_context(instance=instance))


def test_each_daily_asset_is_fresh_once_the_day_due_is_metered(engine):
    """Before the day due (yesterday from 03:00 UTC) is metered, every daily asset's
    freshness check fails naming it; once it is, they pass until the next 03:00."""
    now = datetime.now(UTC)
    due = day_due(now)
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_day(due - timedelta(days=1), instance=instance)  # the day before: not enough

    before = verdicts(evaluate_freshness(instance, list(DAILY_CHECKS)))
    assert set(before) == DAILY_CHECKS
    for passed, description in before.values():
        assert not passed
        assert f"We expected partition {due.isoformat()} to have arrived" in description

    materialize_day(due, instance=instance)
    after = evaluate_freshness(instance, list(DAILY_CHECKS))
    assert all(passed for passed, _ in verdicts(after).values()), verdicts(after)
    next_deadline = datetime.combine(due + timedelta(days=2), time(3), tzinfo=UTC)
    fresh_until = metadata(after, AssetCheckKey(AssetKey(ASSETS[0]), "freshness_check"))
    assert fresh_until["dagster/fresh_until_timestamp"] == next_deadline.timestamp()


def test_a_month_closed_by_its_deadline_passes(engine, monkeypatch):
    """February closes on 4 March (grace 3 days); it is late from 5 March 00:00."""
    assert close_deadline(FEBRUARY) == utc(2025, 3, 5)
    assert last_month_due(utc(2025, 3, 4, 23, 59)) == date(2025, 1, 1)
    assert last_month_due(utc(2025, 3, 5)) == FEBRUARY
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 1), date(2025, 2, 28), instance=instance)
    price_month(FEBRUARY, utc(2025, 3, 4, 2, 30), instance, monkeypatch)

    hold_clock(monkeypatch, utc(2025, 3, 6))
    result = evaluate_freshness(instance, [STATEMENTS_CHECK])
    passed, description = verdicts(result)[STATEMENTS_CHECK]
    assert passed, description
    assert description.startswith("2025-02 closed at 2025-03-04 02:30")
    found = metadata(result, STATEMENTS_CHECK)
    assert found["month"] == "2025-02"
    assert found["dagster/fresh_until_timestamp"] == utc(2025, 4, 5).timestamp()
    with engine.connect() as connection:
        (priced_at,) = connection.exec_driver_sql(
            "SELECT repriced_at FROM metering.statement_months WHERE month = '2025-02-01'"
        ).one()
    assert found["billing_months"].splitlines()[2:] == [
        f"| 2025-02 | closed | {priced_at:%Y-%m-%d %H:%M} | 2025-03-04 02:30 | 1 | 20.00 | 0 "
        "| 0.00 | 20.00 |"
    ]


def test_a_month_not_closed_by_its_deadline_fails_naming_why(engine, monkeypatch):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 1), date(2025, 2, 27), instance=instance)

    hold_clock(monkeypatch, utc(2025, 3, 5, 0, 5))
    result = evaluate_freshness(instance, [STATEMENTS_CHECK])
    passed, description = verdicts(result)[STATEMENTS_CHECK]
    assert not passed
    assert description.startswith(
        "2025-02 is not closed by its deadline 2025-03-05 00:00 UTC: its days are not final:"
    )
    assert "2025-02-28" in description
    assert metadata(result, STATEMENTS_CHECK)["incident"] == "close:2025-02"

    # Every day metered, but no run closed it: said so.
    materialize_day(date(2025, 2, 28), instance=instance)
    passed, description = verdicts(evaluate_freshness(instance, [STATEMENTS_CHECK]))[
        STATEMENTS_CHECK
    ]
    assert not passed
    assert description.endswith("no run closed it (the close schedule's tick was missed)")


def test_no_month_due_before_the_first_metered_month_passes(monkeypatch):
    hold_clock(monkeypatch, utc(2025, 1, 20))  # the tests meter from 2025-01-01
    result = evaluate_freshness(DagsterInstance.ephemeral(), [STATEMENTS_CHECK])
    assert verdicts(result)[STATEMENTS_CHECK] == (True, "no billing month is due to be closed yet")


def test_the_sensor_evaluates_them_in_runs_of_their_own_and_again_once_updated(engine):
    """First tick: every freshness check, never evaluated, in one run of checks alone. A
    failed check is evaluated again only once its asset is materialised since."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()

    request = freshness_tick(instance)
    assert set(request.asset_check_keys) == DAILY_CHECKS | {STATEMENTS_CHECK}
    assert not request.asset_selection
    evaluate_freshness(instance, request.asset_check_keys)  # nothing metered: all fail

    assert isinstance(freshness_tick(instance), SkipReason)
    materialize_day(day_due(datetime.now(UTC)), instance=instance)
    again = freshness_tick(instance)
    assert set(again.asset_check_keys) == DAILY_CHECKS


def test_the_jobs_runs_leave_the_freshness_checks_out(engine):
    """A nightly run evaluates the day's seven checks, never a freshness check: a backfill
    of last year neither reads as a miss nor as fresh."""
    daily = defs.resolve_job_def("daily_metering_job").asset_layer.asset_graph
    monthly = defs.resolve_job_def("monthly_statements_job").asset_layer.asset_graph
    names = {key.name for key in daily.asset_check_keys | monthly.asset_check_keys}
    assert names == {
        "usage_records_complete",
        "usage_records_within_bounds",
        "usage_records_month_closure",
        "aggregates_equal_usage_records",
        "quote_totals_add_up",
        "projection_totals_add_up",
        "projection_is_the_quote_on_month_end",
        "statements_equal_the_month_priced_now",
    }
    add_deployment(engine, "dep-a", "starter")
    result = defs.resolve_job_def("daily_metering_job").execute_in_process(
        instance=DagsterInstance.ephemeral(), partition_key="2025-03-10"
    )
    assert "freshness_check" not in {e.check_name for e in result.get_asset_check_evaluations()}
