"""Retention removes what is past each kind's retention_days, never the open or the previous
billing month, and refuses an invalid metering_config."""

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
)
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_day, utc

TODAY = date(2026, 6, 15)


def _record(connection, kind: str, day: date) -> None:
    connection.execute(
        text("INSERT INTO metering.usage_records (deployment_id, resource_id, resource_kind, "
             "period_start, granularity, qty) VALUES ('dep-a', :r, :k, :p, 'day', 1)"),
        {"r": f"{kind}:1", "k": kind, "p": datetime(day.year, day.month, day.day, tzinfo=UTC)},
    )  # fmt: skip


def _kinds_by_day(connection):
    return set(
        connection.execute(
            text("SELECT resource_kind, (period_start AT TIME ZONE 'UTC')::date "
                 "FROM metering.usage_records")
        ).all()
    )  # fmt: skip


def test_protected_months_are_the_open_and_the_previous_one():
    assert protected_from(date(2026, 6, 15)) == date(2026, 5, 1)
    assert protected_from(date(2026, 1, 1)) == date(2025, 12, 1)
    assert protected_from(date(2026, 3, 31)) == date(2026, 2, 1)


def test_removes_per_kind_drops_whole_expired_months_and_keeps_protected(engine):
    days = [date(2025, 3, 10), date(2025, 6, 10), date(2026, 4, 13), date(2026, 4, 14),
            date(2026, 5, 1), date(2026, 6, 14)]  # fmt: skip
    with engine.begin() as connection:
        ensure_month_partitions(connection, days[0], days[-1])
        connection.execute(
            text("UPDATE metering.metering_config SET retention_days = 62 "
                 "WHERE billing_kind = 'droplet_hours'")
        )  # fmt: skip
        for day in days:
            _record(connection, "droplet_hours", day)
            _record(connection, "spaces_gb_month", day)
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
    # Months every kind has expired go whole (2025-04 was created empty, ahead of writes).
    # (Other tests' empty months older than every cutoff go too; none from 2025-05 on.)
    assert {"usage_records_2025_03", "usage_records_2025_04"} <= set(result.dropped_partitions)
    assert all(name < "usage_records_2025_05" for name in result.dropped_partitions)


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
    engine, database_url
):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2025, 3, 1), date(2025, 3, 1))
        _record(connection, "dns_zones", date(2025, 3, 10))
        connection.execute(text(
            "ALTER TABLE metering.metering_config "
            "DROP CONSTRAINT metering_config_retention_keeps_open_and_previous_month"
        ))  # fmt: skip
        connection.execute(
            text("UPDATE metering.metering_config SET retention_days = 10 "
                 "WHERE billing_kind = 'dns_zones'")
        )  # fmt: skip
    try:
        with (
            pytest.raises(InvalidMeteringConfig, match="dns_zones: retention_days 10"),
            engine.begin() as connection,
        ):
            apply_retention(connection, TODAY)
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
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE metering.metering_config SET retention_days = 400"))
            connection.execute(text(
                "ALTER TABLE metering.metering_config ADD CONSTRAINT "
                "metering_config_retention_keeps_open_and_previous_month "
                "CHECK (retention_days >= 62)"
            ))  # fmt: skip


def test_retention_job_reports_rows_removed_per_kind(engine, database_url):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2024, 1, 1), date(2024, 1, 1))
        _record(connection, "snapshot_gb_month", date(2024, 1, 5))
        _record(connection, "snapshot_gb_month", date(2024, 1, 6))
    run = retention_job.execute_in_process(
        resources={"warehouse": WarehouseResource(database_url=database_url)},
        instance=DagsterInstance.ephemeral(),
    )
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
            text("INSERT INTO metering.kind_map (inventory_kind, billing_kind, accrual) "
                 "VALUES ('load_balancer', 'lb_hours', 'active_hours')")
        )  # fmt: skip
        result = apply_retention(connection, TODAY)
    assert result.inventory_kept_from is None
