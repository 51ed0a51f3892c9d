"""Retention removes what is past each kind's retention_days, never the open or the previous
billing month nor a month that has not closed, records what it removed per month and kind,
and refuses an invalid metering_config."""

import logging
from datetime import UTC, date, datetime

import pytest
from dagster import DagsterInstance
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.defs.retention.retention_job import retention_job
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.retention.expiry import (
    InvalidMeteringConfig,
    apply_retention,
    protected_from,
    remove_inventory_before,
    removed_by_retention,
)
from arcadia_pipeline.utc import add_months
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    hold_clock,
    materialize_day,
    utc,
)

TODAY = date(2026, 6, 15)
NOON = datetime(2026, 6, 15, 12, tzinfo=UTC)  # the job's clock: TODAY


def _record(connection, kind: str, day: date, resource: int = 1) -> None:
    connection.execute(
        text("INSERT INTO metering.usage_records (deployment_id, resource_id, resource_kind, "
             "period_start, granularity, qty) VALUES ('dep-a', :r, :k, :p, 'day', 1)"),
        {"r": f"{kind}:{resource}", "k": kind,
         "p": datetime(day.year, day.month, day.day, tzinfo=UTC)},
    )  # fmt: skip


def _close(connection, first: date, last: date) -> None:
    """Months first..last closed: retention waits for a month until it has."""
    month = first
    while month <= last:
        connection.execute(
            text("INSERT INTO metering.statement_months (month, closed_at, repriced_at) "
                 "VALUES (:m, :at, :at)"),
            {"m": month, "at": datetime(2026, 1, 1, tzinfo=UTC)},
        )  # fmt: skip
        month = add_months(month, 1)


def _keep(connection, kind: str, days: int, effective_from: date) -> None:
    """A new metering_config row for `kind` from an open month (a closed month's terms
    never change): the way an operator changes retention."""
    connection.execute(
        text("INSERT INTO metering.metering_config (billing_kind, granularity, retention_days, "
             "effective_from) VALUES (:k, 'day', :d, :f)"),
        {"k": kind, "d": days, "f": effective_from},
    )  # fmt: skip


def _kinds_by_day(connection):
    return set(
        connection.execute(
            text("SELECT resource_kind, (period_start AT TIME ZONE 'UTC')::date "
                 "FROM metering.usage_records")
        ).all()
    )  # fmt: skip


def _removals(connection) -> list[tuple]:
    return connection.execute(
        text("SELECT month, billing_kind, first_day, last_day, records, run_id "
             "FROM metering.retention_removals ORDER BY month, billing_kind, removed_at")
    ).all()  # fmt: skip


def _run_retention(engine, monkeypatch, now: datetime = NOON):
    """retention_job through Dagster, its clock held at `now`."""
    hold_clock(monkeypatch, now)
    instance = DagsterInstance.ephemeral()
    run = retention_job.execute_in_process(
        resources={
            "warehouse": WarehouseResource(
                database_url=engine.url.render_as_string(hide_password=False)
            )
        },
        instance=instance,
    )
    run.logs = instance.all_logs(run.run_id)  # the run's log lines, with their levels
    return run


def _warnings(run) -> list[str]:
    return [entry.user_message for entry in run.logs if entry.level == logging.WARNING]


def _usage_observation(run) -> dict:
    for event in run.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            observation = event.event_specific_data.asset_observation
            if observation.asset_key.to_user_string() == "usage_records":
                return {key: value.value for key, value in observation.metadata.items()}
    raise AssertionError("no usage_records observation")


def test_protected_months_are_the_open_and_the_previous_one():
    assert protected_from(date(2026, 6, 15)) == date(2026, 5, 1)
    assert protected_from(date(2026, 1, 1)) == date(2025, 12, 1)
    assert protected_from(date(2026, 3, 31)) == date(2026, 2, 1)


def test_removes_per_kind_drops_whole_expired_months_and_keeps_protected(engine):
    days = [date(2025, 3, 10), date(2025, 6, 10), date(2026, 4, 13), date(2026, 4, 14),
            date(2026, 5, 1), date(2026, 6, 14)]  # fmt: skip
    with engine.begin() as connection:
        ensure_month_partitions(connection, days[0], days[-1])
        _keep(connection, "droplet_hours", 62, date(2026, 6, 1))
        for day in days:
            _record(connection, "droplet_hours", day)
            _record(connection, "spaces_gb_month", day)
        # Every month up to April closed: only retention_days and the protected months hold.
        _close(connection, date(2025, 3, 1), date(2026, 4, 1))
    with engine.begin() as connection:
        result = apply_retention(connection, TODAY)
        left = _kinds_by_day(connection)

    # droplet_hours keeps 62 days (from 2026-04-14); spaces keep 400 (from 2025-05-11).
    assert left == {
        ("droplet_hours", date(2026, 4, 14)), ("droplet_hours", date(2026, 5, 1)),
        ("droplet_hours", date(2026, 6, 14)),
        ("spaces_gb_month", date(2025, 6, 10)), ("spaces_gb_month", date(2026, 4, 13)),
        ("spaces_gb_month", date(2026, 4, 14)), ("spaces_gb_month", date(2026, 5, 1)),
        ("spaces_gb_month", date(2026, 6, 14)),
    }  # fmt: skip
    assert result.removed["droplet_hours"] == 3
    assert result.removed["spaces_gb_month"] == 1
    assert result.waiting == []
    # Months every kind has expired go whole (2025-04 was created empty, ahead of writes).
    # (Other tests' empty months older than every cutoff go too; none from 2025-05 on.)
    assert {"usage_records_2025_03", "usage_records_2025_04"} <= set(result.dropped_partitions)
    assert all(name < "usage_records_2025_05" for name in result.dropped_partitions)


CAPPED_DAYS = (date(2025, 3, 31), date(2025, 6, 30), date(2026, 4, 1), date(2026, 4, 30),
               date(2026, 5, 1))  # fmt: skip


def test_each_removal_is_recorded_per_month_and_kind_with_its_days_and_records(engine, monkeypatch):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2025, 3, 1), TODAY)
        _keep(connection, "droplet_hours", 62, date(2026, 6, 1))  # kept from 2026-04-14
        for day in (date(2025, 3, 5), date(2025, 3, 20)):  # a partition every kind expired
            _record(connection, "droplet_hours", day)
            _record(connection, "spaces_gb_month", day)
        for n in range(1, 21):  # 2026-04-01..20, two droplets: 1-13 expired, 14-20 kept
            for resource in (1, 2):
                _record(connection, "droplet_hours", date(2026, 4, n), resource)
        _close(connection, date(2025, 3, 1), date(2026, 4, 1))
        # Capped month-to-date rows of a month retention removes records of (2025-03 whole,
        # 2026-04 in part) and of months it does not.
        for day in CAPPED_DAYS:
            connection.execute(
                text("INSERT INTO metering.capped_resource_usage VALUES "
                     "(:day, 'dep-a', 'droplet_hours', 'droplet_hours:1', 1)"),
                {"day": day},
            )  # fmt: skip
    run = _run_retention(engine, monkeypatch)

    assert run.success
    assert "usage_records_2025_03" in _usage_observation(run)["dropped_partitions"]
    with engine.connect() as connection:
        removals = _removals(connection)
        removed_at = connection.execute(
            text("SELECT DISTINCT removed_at FROM metering.retention_removals")
        ).scalars()
        assert len(list(removed_at)) == 1  # one run, one instant
        # The dropped partition's, per kind, and the per-kind delete's: days and counts.
        assert removals == [
            (date(2025, 3, 1), "droplet_hours", date(2025, 3, 5), date(2025, 3, 20), 2,
             run.run_id),
            (date(2025, 3, 1), "spaces_gb_month", date(2025, 3, 5), date(2025, 3, 20), 2,
             run.run_id),
            (date(2026, 4, 1), "droplet_hours", date(2026, 4, 1), date(2026, 4, 13), 26,
             run.run_id),
        ]  # fmt: skip
        april = removed_by_retention(connection, date(2026, 4, 17))  # any day of the month
        assert april.startswith(
            "retention removed usage records of 2026-04: droplet_hours 2026-04-01 to "
            "2026-04-13 (26 records, on "
        )
        assert "spaces_gb_month" not in april
        march = removed_by_retention(connection, date(2025, 3, 1))
        assert "droplet_hours 2025-03-05 to 2025-03-20 (2 records" in march
        assert "spaces_gb_month 2025-03-05 to 2025-03-20 (2 records" in march
        assert removed_by_retention(connection, date(2026, 5, 1)) is None
        assert removed_by_retention(connection, date(2025, 6, 1)) is None  # nothing in it
        # Those months are never metered again: no day of theirs is built on.
        kept = connection.execute(
            text("SELECT as_of_date FROM metering.capped_resource_usage ORDER BY 1")
        ).scalars()
        assert list(kept) == [date(2025, 6, 30), date(2026, 5, 1)]


def test_retention_waits_for_a_month_that_has_not_closed_and_says_so(engine, monkeypatch):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2026, 1, 1), TODAY)
        _keep(connection, "droplet_hours", 62, date(2026, 6, 1))  # kept from 2026-04-14
        for day in (date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10),
                    date(2026, 4, 5), date(2026, 4, 20)):  # fmt: skip
            _record(connection, "droplet_hours", day)
        _record(connection, "spaces_gb_month", date(2026, 2, 10))  # 400 days: not expired
        _close(connection, date(2026, 1, 1), date(2026, 1, 1))  # February never closed
    run = _run_retention(engine, monkeypatch)

    assert run.success
    observed = _usage_observation(run)
    assert observed["rows_removed_droplet_hours"] == 1  # January's alone
    # Which kind waits for which month, in the metadata and as a warning.
    waiting = observed["waiting_for_close"]
    assert waiting.startswith("droplet_hours: records from 2026-02-01 on kept until 2026-02")
    assert "spaces_gb_month" not in waiting
    assert _warnings(run) == [f"retention waits: {waiting}"]
    with engine.connect() as connection:
        assert _kinds_by_day(connection) == {
            ("droplet_hours", date(2026, 2, 10)), ("droplet_hours", date(2026, 3, 10)),
            ("droplet_hours", date(2026, 4, 5)), ("droplet_hours", date(2026, 4, 20)),
            ("spaces_gb_month", date(2026, 2, 10)),
        }  # fmt: skip
        assert [r[:5] for r in _removals(connection)] == [
            (date(2026, 1, 1), "droplet_hours", date(2026, 1, 10), date(2026, 1, 10), 1)
        ]
        assert removed_by_retention(connection, date(2026, 2, 1)) is None

    # February and March close: their records go; April waits in turn.
    with engine.begin() as connection:
        _close(connection, date(2026, 2, 1), date(2026, 3, 1))
    again = _run_retention(engine, monkeypatch)

    observed = _usage_observation(again)
    assert observed["rows_removed_droplet_hours"] == 2
    assert observed["waiting_for_close"].startswith(
        "droplet_hours: records from 2026-04-01 on kept until 2026-04"
    )
    with engine.connect() as connection:
        assert _kinds_by_day(connection) == {
            ("droplet_hours", date(2026, 4, 5)), ("droplet_hours", date(2026, 4, 20)),
            ("spaces_gb_month", date(2026, 2, 10)),
        }  # fmt: skip
        assert [r[:5] for r in _removals(connection)] == [
            (date(2026, 1, 1), "droplet_hours", date(2026, 1, 10), date(2026, 1, 10), 1),
            (date(2026, 2, 1), "droplet_hours", date(2026, 2, 10), date(2026, 2, 10), 1),
            (date(2026, 3, 1), "droplet_hours", date(2026, 3, 10), date(2026, 3, 10), 1),
        ]


def test_the_schema_rejects_invalid_config_with_a_named_constraint(engine):
    for statement, constraint in [
        ("UPDATE metering.metering_config SET retention_days = 30",
         "metering_config_retention_keeps_open_and_previous_month"),
        ("UPDATE metering.metering_config SET granularity = 'week'",
         "metering_config_granularity_is_day_or_hour"),
    ]:  # fmt: skip
        with pytest.raises(IntegrityError, match=constraint), engine.begin() as connection:
            connection.execute(text(statement))


def test_invalid_config_that_got_past_the_schema_is_refused_and_nothing_removed(
    engine, monkeypatch
):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2025, 3, 1), date(2025, 3, 1))
        _record(connection, "dns_zones", date(2025, 3, 10))
        # Closed, so that only the refusal keeps the record.
        _close(connection, date(2025, 3, 1), date(2025, 3, 1))
        connection.execute(text(
            "ALTER TABLE metering.metering_config "
            "DROP CONSTRAINT metering_config_retention_keeps_open_and_previous_month"
        ))  # fmt: skip
        _keep(connection, "dns_zones", 10, date(2026, 6, 1))
    try:
        with (
            pytest.raises(InvalidMeteringConfig, match="dns_zones: retention_days 10"),
            engine.begin() as connection,
        ):
            apply_retention(connection, TODAY)
        hold_clock(monkeypatch, NOON)
        run = retention_job.execute_in_process(
            resources={
                "warehouse": WarehouseResource(
                    database_url=str(engine.url.render_as_string(hide_password=False))
                )
            },
            instance=DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        assert not run.success
        with engine.connect() as connection:
            assert (
                connection.execute(text("SELECT count(*) FROM metering.usage_records")).scalar_one()
                == 1
            )
            assert _removals(connection) == []
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("DELETE FROM metering.metering_config WHERE retention_days < 62")
            )
            connection.execute(text(
                "ALTER TABLE metering.metering_config ADD CONSTRAINT "
                "metering_config_retention_keeps_open_and_previous_month "
                "CHECK (retention_days >= 62)"
            ))  # fmt: skip


def test_retention_job_reports_rows_removed_per_kind(engine, monkeypatch):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2024, 1, 1), date(2024, 1, 1))
        _record(connection, "snapshot_gb_month", date(2024, 1, 5))
        _record(connection, "snapshot_gb_month", date(2024, 1, 6))
        _close(connection, date(2024, 1, 1), date(2024, 1, 1))
    run = _run_retention(engine, monkeypatch)
    assert run.success
    metadata = run.output_for_node("remove_expired_usage_records")
    assert metadata["snapshot_gb_month"] == 2
    observations = [e for e in run.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    observed = {
        e.event_specific_data.asset_observation.asset_key.to_user_string():
        e.event_specific_data.asset_observation.metadata
        for e in observations
    }  # fmt: skip
    assert observed["usage_records"]["rows_removed_snapshot_gb_month"].value == 2
    assert observed["resource_inventory"]["rows_removed"].value == 0


def test_inventory_goes_with_the_last_kind_keeping_its_day(engine):
    # Default retention is 400 days for every kind: on TODAY the first day kept is 2025-05-11.
    add_deployment(engine, "dep-a")
    add_version(engine, "d1", "dep-a", "droplet", utc(2025, 1, 1))
    days = [date(2025, 3, 10), date(2025, 5, 10), date(2025, 5, 11), date(2026, 6, 14)]
    for day in days:
        materialize_day(day, assets=("resource_inventory",))
    with engine.begin() as connection:
        result = apply_retention(connection, TODAY)
    with engine.begin() as connection:
        inventory = remove_inventory_before(connection, result.inventory_kept_from)

    assert result.inventory_kept_from == date(2025, 5, 11)
    assert inventory.rows_removed == 2  # one version a day, 2025-03-10 and 2025-05-10
    assert {"resource_inventory_2025_03", "resource_inventory_2025_04"} <= set(
        inventory.dropped_partitions
    )
    assert "resource_inventory_2025_05" not in inventory.dropped_partitions
    with engine.connect() as connection:
        for table in ("resource_inventory", "inventory_deployments", "inventory_snapshots"):
            kept = connection.execute(
                text(f"SELECT DISTINCT day FROM metering.{table} ORDER BY day")
            ).scalars()
            assert list(kept) == [date(2025, 5, 11), date(2026, 6, 14)], table


def test_a_billing_kind_without_config_keeps_all_inventory(engine):
    """Its records are never removed, so the snapshots they point at must stay too."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO metering.kind_map (inventory_kind, billing_kind, accrual, "
                 "effective_from) VALUES ('load_balancer', 'lb_hours', 'active_hours', "
                 "'2025-01-01')")
        )  # fmt: skip
        result = apply_retention(connection, TODAY)
    assert result.inventory_kept_from is None
