"""A late correction of the source re-meters exactly the affected metered days."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context
from sqlalchemy import text

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.defs.daily import corrections
from arcadia_pipeline.defs.daily import missed_days as catchup
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.utc import contiguous_ranges, month_start
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    copy_source,
    materialize_range,
    requested_days,
    run_requested,
    sensor,
    usage_rows,
)

missed_days_sensor = sensor("missed_days_sensor")
late_corrections_sensor = sensor("late_corrections_sensor")


def _evaluate(database_url, instance, cursor=None, source_url=None):
    resources = {
        "warehouse": WarehouseResource(database_url=database_url),
        "arcadia_source": ArcadiaSourceResource(database_url=source_url or database_url),
    }
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return late_corrections_sensor(context), context


def catchup_context(database_url, instance):
    resources = {"warehouse": WarehouseResource(database_url=database_url)}
    return build_sensor_context(instance=instance, resources=resources)


def _ranges_of(requests):
    def assets(request):
        keys = request.asset_selection
        return None if keys is None else sorted(k.to_user_string() for k in keys)

    return [
        (*requested_days(r),
         assets(r))
        for r in requests
    ]  # fmt: skip


def _ranges(result):
    return _ranges_of(result.run_requests)


@pytest.fixture
def metered_days(engine):
    """Ten recent days metered, with a droplet that ran all along."""
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=12), today - timedelta(days=3)
    add_deployment(engine, "dep-a", "starter")
    start = datetime.combine(first - timedelta(days=30), datetime.min.time(), UTC)
    add_version(engine, "droplet:1", "dep-a", "droplet", start)
    materialize_range(first, last)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_no_correction_no_run_and_the_cursor_is_persisted(engine, database_url, metered_days):
    result, _ = _evaluate(database_url, DagsterInstance.ephemeral())
    assert result.run_requests == []
    assert isinstance(result.skip_reason, SkipReason)
    assert result.cursor is not None  # newest recorded_at, so the next tick reads only news


@pytest.mark.citus
def test_backdated_resource_re_meters_its_day_and_refreshes_the_month_after(
    engine, database_url, metered_days, monkeypatch
):
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    # The app's sync catches up: a snapshot that existed on one metered day, recorded now.
    day = metered_days[4]
    midday = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    add_version(engine, "snapshot:9", "dep-a", "snapshot", midday, midday + timedelta(hours=12),
                size_gb=30, recorded_at=datetime.now(UTC))  # fmt: skip

    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)

    assert _ranges(result) == [(day.isoformat(), day.isoformat(), None)]

    # Running what the sensor asked for, as the daemon would, meters the snapshot; the
    # month-to-date figures of the later days of its month are now older than their
    # records, and the catch-up sensor refreshes exactly those.
    for request in result.run_requests:
        run = run_requested(request, instance)
        assert run.success
    # One day is launched as that day's partition, so its checks count for the day in the
    # UI (a range run's check results are recorded for its window, not per day).
    assert result.run_requests[0].partition_key == day.isoformat()
    evaluations = run.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    assert {e.partition for e in evaluations} == {day.isoformat()}
    assert [r["resource_id"] for r in usage_rows(engine, "resource_id = 'snapshot:9'")] == [
        "snapshot:9"
    ]
    monkeypatch.setattr(catchup, "days_due", lambda *_: [])  # only what is stale, not missed
    tail = [d for d in metered_days if d > day and month_start(d) == month_start(day)]
    refresh = missed_days_sensor(catchup_context(database_url, instance))
    refresh = [] if isinstance(refresh, SkipReason) else refresh  # the day ends its month
    expected = [
        (
            first.isoformat(),
            last.isoformat(),
            ["deployment_quotes", "projected_quotes", "usage_period_aggregates"],
        )
        for first, last in contiguous_ranges(tail)
    ]
    assert _ranges_of(refresh) == expected
    for request in refresh:
        assert run_requested(request, instance).success
    assert missed_days_sensor(catchup_context(database_url, instance)).skip_message
    with engine.connect() as connection:
        with_snapshot = connection.execute(
            text("SELECT as_of_date FROM metering.usage_period_aggregates "
                 "WHERE billing_kind = 'snapshot_gb_month' ORDER BY 1")
        ).scalars()  # fmt: skip
        assert list(with_snapshot) == [day, *tail]
    again, _ = _evaluate(database_url, instance, cursor=result.cursor)
    assert again.run_requests == []


def test_backdated_power_off_re_meters_exactly_the_days_it_touches(
    engine, database_url, metered_days
):
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    off_from = datetime.combine(metered_days[2], datetime.min.time(), UTC) + timedelta(hours=20)
    off_to = datetime.combine(metered_days[4], datetime.min.time(), UTC) + timedelta(hours=3)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        # Split the running version around a back-dated power-off, as the app would.
        connection.execute(
            text("UPDATE arcadia.resource_versions SET valid_to = :t, recorded_at = :now "
                 "WHERE resource_id = 'droplet:1'"),
            {"t": off_from, "now": now},
        )  # fmt: skip
    add_version(engine, "droplet:1", "dep-a", "droplet", off_from, off_to, status="off",
                recorded_at=now)  # fmt: skip
    add_version(engine, "droplet:1", "dep-a", "droplet", off_to, recorded_at=now)

    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)

    # All three rows were (re)recorded now, but only the days from the power-off to the
    # power-on meter differently: the closed version still covers the days before whole,
    # the reopened one the days after. Those are re-metered as one single-run range; the
    # month-to-date billing of the later days is refreshed by the catch-up sensor after.
    assert _ranges(result) == [(metered_days[2].isoformat(), metered_days[4].isoformat(), None)]
    assert result.cursor > first_tick.cursor


def test_a_version_closed_today_re_meters_nothing_before(engine, database_url, metered_days):
    """Ordinary activity (a droplet resized today) closes a long-lived version: that is a
    new recorded_at on a row overlapping every metered day, and none of them changes."""
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE arcadia.resource_versions SET valid_to = :now, recorded_at = :now "
                 "WHERE resource_id = 'droplet:1'"),
            {"now": now},
        )  # fmt: skip
    add_version(engine, "droplet:1", "dep-a", "droplet", now, recorded_at=now)

    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)

    assert result.run_requests == []
    assert result.cursor > first_tick.cursor


@pytest.mark.citus
def test_a_backdated_deletion_re_meters_the_days_it_removes(engine, database_url, metered_days):
    """The version now ends earlier: the later days lose the resource (nothing overlaps
    them any more, so only the snapshot side shows it)."""
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    deleted_at = datetime.combine(metered_days[-2], datetime.min.time(), UTC)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE arcadia.resource_versions SET valid_to = :t, recorded_at = now() "
                 "WHERE resource_id = 'droplet:1'"),
            {"t": deleted_at},
        )  # fmt: skip

    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)

    assert _ranges(result) == [(metered_days[-2].isoformat(), metered_days[-1].isoformat(), None)]


def test_a_backdated_plan_change_re_meters_the_days_it_moves(engine, database_url, metered_days):
    """The app records late that dep-a moved to studio at noon on a metered day: that day
    and every later one differ (plan and clipped times), the earlier ones do not."""
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    changed_at = datetime.combine(metered_days[6], datetime.min.time(), UTC) + timedelta(hours=12)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE arcadia.deployment_versions SET valid_to = :t, recorded_at = :now "
                 "WHERE deployment_id = 'dep-a'"),
            {"t": changed_at, "now": now},
        )  # fmt: skip
    add_deployment(engine, "dep-a", "studio", changed_at, recorded_at=now)

    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)

    assert _ranges(result) == [(metered_days[6].isoformat(), metered_days[-1].isoformat(), None)]
    for request in result.run_requests:
        assert run_requested(request, instance).success
    with engine.connect() as connection:
        plans = connection.execute(
            text("SELECT day, array_agg(plan_code ORDER BY starts_at) "
                 "FROM metering.inventory_deployments GROUP BY day ORDER BY day")
        ).all()  # fmt: skip
    assert plans == [
        (day, ["starter"] if day < metered_days[6] else
              ["starter", "studio"] if day == metered_days[6] else ["studio"])
        for day in metered_days
    ]  # fmt: skip


def test_a_renamed_deployment_re_meters_the_days_it_names(engine, database_url, metered_days):
    """A rename back-dated to a metered day changes that day's snapshot of the deployment
    (what the day holds is its name too), though nothing billed moves."""
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE arcadia.deployment_versions SET name = 'Renamed', recorded_at = now() "
                 "WHERE deployment_id = 'dep-a'")
        )  # fmt: skip

    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)

    assert _ranges(result) == [(metered_days[0].isoformat(), metered_days[-1].isoformat(), None)]


def test_a_correction_in_a_separate_source_database(
    engine, database_url, source_database, metered_days
):
    """The comparison reads the source where ARCADIA_SOURCE_DATABASE_URL points; here the
    warehouse's own arcadia tables keep the old history, so only the source shows the change."""
    copy_source(engine, source_database)
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance, source_url=source_database)
    deleted_at = datetime.combine(metered_days[-1], datetime.min.time(), UTC)
    with make_engine(source_database).begin() as connection:
        connection.execute(
            text("UPDATE arcadia.resource_versions SET valid_to = :t, recorded_at = now()"),
            {"t": deleted_at},
        )

    result, _ = _evaluate(
        database_url, instance, cursor=first_tick.cursor, source_url=source_database
    )

    last = metered_days[-1].isoformat()
    assert _ranges(result) == [(last, last, None)]


def test_a_large_sync_is_worked_off_over_several_ticks(
    engine, database_url, metered_days, monkeypatch
):
    """Each tick reads a bounded batch of versions past its cursor (here one), so none
    outgrows the sensor's time limit, and the next tick carries on from there."""
    monkeypatch.setattr(corrections, "MAX_VERSIONS_PER_TICK", 1)
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    now = datetime.now(UTC)
    for resource_id, day, recorded in [
        ("snapshot:8", metered_days[1], now - timedelta(seconds=1)),
        ("snapshot:9", metered_days[6], now),
    ]:
        midday = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
        add_version(engine, resource_id, "dep-a", "snapshot", midday, midday + timedelta(hours=1),
                    size_gb=10, recorded_at=recorded)  # fmt: skip

    second, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)
    assert [r[:2] for r in _ranges(second) if r[2] is None] == [(metered_days[1].isoformat(),) * 2]
    for request in second.run_requests:
        assert run_requested(request, instance).success

    third, _ = _evaluate(database_url, instance, cursor=second.cursor)
    assert [r[:2] for r in _ranges(third) if r[2] is None] == [(metered_days[6].isoformat(),) * 2]
    assert third.cursor > second.cursor > first_tick.cursor


def _snapshot_on(engine, resource_id: str, day, recorded_at: datetime) -> None:
    """A 10 GB snapshot that existed six hours of `day`, recorded at `recorded_at`."""
    midday = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    add_version(engine, resource_id, "dep-a", "snapshot", midday, midday + timedelta(hours=6),
                size_gb=10, recorded_at=recorded_at)  # fmt: skip


def test_a_commit_within_the_late_commit_window_is_re_metered(
    engine, database_url, metered_days, monkeypatch
):
    """A long app transaction commits a correction stamped 30 minutes before its commit:
    behind the cursor, inside ARCADIA_LATE_COMMIT_WINDOW_MINUTES (60): seen."""
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    day = metered_days[2]
    _snapshot_on(engine, "snapshot:late", day, datetime.now(UTC) - timedelta(minutes=30))

    monkeypatch.setenv("ARCADIA_LATE_COMMIT_WINDOW_MINUTES", "20")
    narrow, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)
    assert narrow.run_requests == []  # behind a 20-minute window: the reconciliation's
    monkeypatch.delenv("ARCADIA_LATE_COMMIT_WINDOW_MINUTES")
    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)
    assert _ranges(result) == [(day.isoformat(), day.isoformat(), None)]


def test_a_future_recorded_at_is_named_and_hides_no_later_correction(
    engine, database_url, metered_days
):
    """A host whose clock is a day ahead writes one version: its day is re-metered, the row
    is named, and the cursor stays at now, so a correction recorded before that future time
    is still seen on the next tick."""
    instance = DagsterInstance.ephemeral()
    first_tick, _ = _evaluate(database_url, instance)
    ahead = datetime.now(UTC) + timedelta(days=1)
    _snapshot_on(engine, "snapshot:ahead", metered_days[1], ahead)

    before = datetime.now(UTC)
    result, _ = _evaluate(database_url, instance, cursor=first_tick.cursor)
    assert _ranges(result) == [(metered_days[1].isoformat(),) * 2 + (None,)]
    assert before <= datetime.fromisoformat(result.cursor) <= datetime.now(UTC)
    warehouse = WarehouseResource(database_url=database_url)
    source = ArcadiaSourceResource(database_url=database_url)
    tick = corrections.changed_since(warehouse, source, None, datetime.now(UTC))
    valid_from = datetime.combine(metered_days[1], datetime.min.time(), UTC) + timedelta(hours=6)
    assert tick.future == [
        f"resource snapshot:ahead version valid_from {valid_from.isoformat()} "
        f"recorded_at {ahead.isoformat()}"
    ]
    for request in result.run_requests:
        assert run_requested(request, instance).success

    _snapshot_on(engine, "snapshot:next", metered_days[5], datetime.now(UTC))
    later, _ = _evaluate(database_url, instance, cursor=result.cursor)
    # The future row's day matches its snapshot now: only the new correction's day runs.
    assert _ranges(later) == [(metered_days[5].isoformat(),) * 2 + (None,)]
