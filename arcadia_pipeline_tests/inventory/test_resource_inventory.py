"""resource_inventory: source validation, the kind map as data, and a separate source database.

A source row the pipeline cannot meter must fail the run naming the row and the problem,
before anything of the range is written; what the kind map says is data, not code.
"""

import os
from datetime import date
from decimal import Decimal

import pytest
from dagster import DagsterInstance, materialize
from sqlalchemy import text

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.schema import UNATTRIBUTED
from arcadia_pipeline.inventory.changes import changed_days, snapshot_times
from arcadia_pipeline.inventory.reconciliation import differing_days
from arcadia_pipeline.inventory.snapshot import replace_inventory_day
from arcadia_pipeline.inventory.staging import stage_source
from arcadia_pipeline.orchestration.partitions import range_tags
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline_tests.support import (
    ASSETS,
    NOTHING_WRITTEN,
    add_deployment,
    add_version,
    copy_source,
    defs,
    failure_messages,
    materialize_day,
    materialize_range,
    usage_rows,
    utc,
    written_rows,
)

# ---- validation --------------------------------------------------------------------------


def unknown_kind(engine):
    add_version(engine, "lb:9", "dep", "load_balancer", utc(2025, 3, 3, 8))
    return "lb:9", ["'load_balancer'", "kind_map"]


def storage_without_size(engine):
    add_version(engine, "spaces:9", "dep", "spaces_bucket", utc(2025, 3, 3, 8))
    return "spaces:9", ["size_gb"]


def unknown_status(engine):
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 8), status="deleted")
    return "droplet:9", ["'deleted'", "status"]


def ends_before_it_starts(engine):
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 8), utc(2025, 3, 3, 7))
    return "droplet:9", ["valid_to"]


def ends_before_the_range_it_starts_in(engine):
    # starts inside the range but claims to end before the range even began: a corrupt row
    # of the metered days that must be reported, not silently left out of the inventory
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 8), utc(2025, 2, 28))
    return "droplet:9", ["valid_to"]


def unattributed_of_unknown_kind(engine):
    # an unknown kind is an error even when nobody would be billed for it
    add_version(engine, "lb:9", None, "load_balancer", utc(2025, 3, 3, 8))
    return "lb:9", ["'load_balancer'", "kind_map"]


def ends_when_it_starts(engine):
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 8), utc(2025, 3, 3, 8))
    return "droplet:9", ["valid_to"]


def overlapping_versions(engine):
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 8), utc(2025, 3, 3, 12))
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 11), status="off")
    return "droplet:9", ["overlap"]


def overlapping_an_open_version(engine):
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 8))
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 3, 11), status="off")
    return "droplet:9", ["overlap"]


def unknown_deployment(engine):
    add_version(engine, "droplet:9", "ghost", "droplet", utc(2025, 3, 3, 8))
    return "droplet:9", ["deployment 'ghost' does not exist", "arcadia.deployment_versions"]


def deployment_signs_up_after_the_resource(engine):
    add_deployment(engine, "dep-late", valid_from=utc(2025, 3, 3, 12))
    add_version(engine, "droplet:9", "dep-late", "droplet", utc(2025, 3, 3, 8))
    return "droplet:9", ["deployment 'dep-late' does not exist", "arcadia.deployment_versions"]


def deployment_churns_before_the_resource_ends(engine):
    add_deployment(engine, "dep-gone", valid_to=utc(2025, 3, 3, 10))
    add_version(engine, "droplet:9", "dep-gone", "droplet", utc(2025, 3, 3, 8))
    return "droplet:9", ["deployment 'dep-gone' does not exist", "arcadia.deployment_versions"]


def overlapping_deployment_versions(engine):
    add_deployment(engine, "dep-x", valid_to=utc(2025, 3, 3, 12))
    add_deployment(engine, "dep-x", "studio", utc(2025, 3, 3, 11))
    return "deployment dep-x", ["overlaps the previous version of the same deployment"]


def unknown_plan(engine):
    """The deployment's version covers every day of the range, so it breaks all of them."""
    add_deployment(engine, "dep-x", "platinum")
    add_version(engine, "droplet:9", "dep-x", "droplet", utc(2025, 3, 3, 8))
    return "dep-x", ["'platinum'", "plan_code"], "days 2025-03-01 to 2025-03-03"


@pytest.mark.parametrize(
    "bad_input",
    [
        unknown_kind,
        unattributed_of_unknown_kind,
        storage_without_size,
        unknown_status,
        ends_before_it_starts,
        ends_before_the_range_it_starts_in,
        ends_when_it_starts,
        overlapping_versions,
        overlapping_an_open_version,
        unknown_deployment,
        deployment_signs_up_after_the_resource,
        deployment_churns_before_the_resource_ends,
        overlapping_deployment_versions,
        unknown_plan,
    ],
)
def test_a_row_that_cannot_be_metered_fails_the_range_naming_it_and_writes_nothing(
    engine, bad_input
):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:ok", "dep", "droplet", utc(2025, 3, 1))
    # the bad row exists on the last day only: the earlier, valid days must not be written
    row, problem_words, *days = bad_input(engine)

    result = materialize_range(date(2025, 3, 1), date(2025, 3, 3), raise_on_error=False)

    assert not result.success
    message = failure_messages(result)
    assert row in message
    for word in problem_words:
        assert word in message
    assert "droplet:ok" not in message  # only the offending rows are named
    days_broken = days[0] if days else "day 2025-03-03"
    assert f"cannot meter on {days_broken} of this run" in message  # and the days they break
    assert written_rows(engine) == NOTHING_WRITTEN


def test_a_failed_validation_keeps_what_earlier_runs_wrote(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:ok", "dep", "droplet", utc(2025, 3, 1))
    materialize_day(date(2025, 3, 2))
    before = usage_rows(engine)
    add_version(engine, "droplet:9", "dep", "droplet", utc(2025, 3, 2, 8), status="paused")

    result = materialize_day(date(2025, 3, 2), raise_on_error=False)

    assert not result.success
    assert "droplet:9" in failure_messages(result)
    assert usage_rows(engine) == before


def test_usage_without_its_days_inventory_snapshot_fails_naming_the_day(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 3, 1))

    result = materialize_day(date(2025, 3, 4), assets=("usage_records",), raise_on_error=False)

    assert not result.success
    assert "2025-03-04" in failure_messages(result)
    assert "resource_inventory" in failure_messages(result)
    assert usage_rows(engine) == []


# ---- the kind map is data ------------------------------------------------------------------


def test_a_kind_marked_not_billable_is_skipped_without_error(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.kind_map (inventory_kind, billing_kind, accrual, "
                "effective_from) VALUES ('floating_ip', NULL, NULL, '2025-03-01')"
            )
        )
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 3, 1))
    add_version(engine, "fip:1", "dep", "floating_ip", utc(2025, 3, 1))
    add_version(engine, "fip:2", None, "floating_ip", utc(2025, 3, 1))

    result = materialize_day(date(2025, 3, 2))

    assert result.success
    assert [r["resource_id"] for r in usage_rows(engine)] == ["droplet:1"]


@pytest.fixture
def load_balancer_kind(engine):
    """A new billable kind added purely as rows (removed again: the fixture `engine` only
    restores the kind map)."""
    statements = [  # from March 2025 on, the month the tests meter
        "INSERT INTO metering.kind_map VALUES ('load_balancer', 'lb_hours', 'active_hours', "
        "'2025-03-01')",
        "INSERT INTO metering.metering_config (billing_kind, granularity, retention_days, "
        "effective_from) VALUES ('lb_hours', 'day', 400, '2025-03-01')",
        "INSERT INTO metering.plan_items SELECT DISTINCT plan_code, 'lb_hours', 100, "
        "DATE '2025-03-01' FROM metering.plans",
        "INSERT INTO metering.overage_tiers SELECT DISTINCT plan_code, 'lb_hours', "
        "NULL::numeric, 0.015, DATE '2025-03-01' FROM metering.plans",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    yield "lb_hours"
    with engine.begin() as connection:
        for table in ("overage_tiers", "plan_items", "metering_config"):
            connection.execute(
                text(f"DELETE FROM metering.{table} WHERE billing_kind = 'lb_hours'")
            )
        connection.execute(
            text("DELETE FROM metering.kind_map WHERE inventory_kind = 'load_balancer'")
        )


def test_a_new_billable_kind_added_as_data_is_metered(engine, load_balancer_kind):
    add_deployment(engine, "dep")
    add_version(engine, "lb:1", "dep", "load_balancer", utc(2025, 3, 1))
    add_version(engine, "lb:2", "dep", "load_balancer", utc(2025, 3, 2, 18))
    # Only the 2nd is metered: its snapshot speaks for March from the 1st (pricing/proration):
    # "dep", on its plan all along, has March whole and its full inclusion.

    result = materialize_day(date(2025, 3, 2))  # every asset, down to the quotes

    assert result.success
    rows = usage_rows(engine)
    assert [(r["resource_id"], r["resource_kind"], r["qty"]) for r in rows] == [
        ("lb:1", "lb_hours", Decimal(24)),
        ("lb:2", "lb_hours", Decimal(6)),
    ]
    # ...and priced from its catalog rows: 30 hours used, 100 included, no overage
    with engine.connect() as connection:
        line = connection.execute(
            text(
                "SELECT usage, included, overage_usd FROM metering.deployment_quote_lines "
                "WHERE deployment_id = 'dep' AND billing_kind = 'lb_hours'"
            )
        ).one()
    assert tuple(line) == (Decimal(30), Decimal(100), Decimal("0.00"))


# ---- a separate source database ----------------------------------------------------------------


def seed_tricky_source(engine):
    """Values that must survive a trip through COPY: long decimals, microseconds, NULLs,
    a plan change and a rename inside the range, a deployment that churned."""
    add_deployment(engine, "dep-a")
    plan_change = utc(2025, 3, 1, 17, 45, 12, 345678)
    add_deployment(engine, "dep-b", "starter", utc(2024, 12, 1), plan_change, name="B")
    add_deployment(
        engine,
        "dep-b",
        "agency",
        plan_change,
        name="B ☃ O'Brien",
        recorded_at=utc(2025, 3, 1, 18, 0, 0, 1),
    )
    add_deployment(engine, "dep-c", "studio", utc(2025, 1, 1), utc(2025, 3, 2, 6, 0, 0, 7))
    add_version(
        engine,
        "spaces:1",
        "dep-a",
        "spaces_bucket",
        utc(2025, 2, 27, 3, 4, 5, 123456),
        utc(2025, 3, 2, 9, 0, 0, 999999),
        size_gb="100.123456789012345678",
    )
    add_version(
        engine,
        "spaces:1",
        "dep-b",
        "spaces_bucket",
        utc(2025, 3, 2, 9, 0, 0, 999999),
        size_gb="0.5",
    )
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 3, 1, 13, 27, 41))
    add_version(engine, "droplet:2", "dep-b", "droplet", utc(2025, 3, 1), status="off")
    add_version(engine, "droplet:stray", None, "droplet", utc(2025, 3, 1))
    add_version(engine, "dns:1", "dep-b", "dns_zone", utc(2025, 1, 1), utc(2025, 3, 2, 22))


def content(rows):
    return [
        {k: v for k, v in r.items() if k not in ("run_id", "inventory_snapshot_id")} for r in rows
    ]


def test_a_separate_source_database_gives_the_same_records(engine, source_database, monkeypatch):
    seed_tricky_source(engine)
    first, last = date(2025, 3, 1), date(2025, 3, 2)
    materialize_range(first, last, assets=("resource_inventory", "usage_records"))
    same_database = usage_rows(engine)
    inventory_same_database = inventory_rows(engine)

    # move the source rows to the other database, leaving the warehouse's own copy empty
    copy_source(engine, source_database)
    with engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE arcadia.resource_versions, arcadia.deployment_versions, "
                "metering.usage_records, metering.resource_inventory, "
                "metering.inventory_snapshots, metering.inventory_deployments"
            )
        )
    monkeypatch.setenv("ARCADIA_SOURCE_DATABASE_URL", source_database)
    warehouse_url = os.environ["ARCADIA_DATABASE_URL"]

    result = materialize(
        [defs.get_assets_def(name) for name in ASSETS[:2]],
        resources={
            "warehouse": WarehouseResource(database_url=warehouse_url),
            "arcadia_source": ArcadiaSourceResource(database_url=source_database),
        },
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(first, last),
    )

    assert result.success
    assert len(same_database) == 9
    assert content(usage_rows(engine)) == content(same_database)
    assert inventory_rows(engine) == inventory_same_database
    # the deployment versions, clipped to each day: dep-b twice on 03-01, dep-c until 03-02
    assert len(inventory_same_database[1]) == 7


def inventory_rows(engine):
    """The inventory snapshots' content, without ids: resources, then deployments."""
    with engine.connect() as connection:
        resources = connection.execute(
            text(
                "SELECT day, resource_id, deployment_id, inventory_kind, billing_kind, "
                "accrual, size_gb, status, valid_from, valid_to, starts_at, ends_at, "
                "recorded_at FROM metering.resource_inventory "
                "ORDER BY day, resource_id, valid_from"
            )
        ).mappings()
        deployments = connection.execute(
            text(
                "SELECT day, deployment_id, starts_at, ends_at, name, plan_code, valid_from, "
                "valid_to, recorded_at FROM metering.inventory_deployments "
                "ORDER BY day, deployment_id, starts_at"
            )
        ).mappings()
        return [dict(r) for r in resources], [dict(r) for r in deployments]


def test_a_long_run_never_overwrites_a_snapshot_staged_after_its_own(engine):
    """A range run stages the source, a correction lands and a correction run re-meters a
    day; when the range run reaches that day its older copy must not undo the correction."""
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 3, 1))
    day = date(2025, 3, 2)
    with engine.connect() as connection:
        with connection.begin():
            ensure_month_partitions(connection, day, day)
            _, staged_at = stage_source(connection, None, utc(2025, 3, 1), utc(2025, 3, 3))
        # the correction, and the run that re-meters its day
        add_version(engine, "spaces:late", "dep", "spaces_bucket", utc(2025, 3, 1), size_gb=10)
        materialize_day(day, assets=("resource_inventory",))
        with connection.begin():
            snapshot = replace_inventory_day(connection, day, "range-run", taken_at=staged_at)

    assert snapshot.kept_newer
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT resource_id FROM metering.resource_inventory WHERE day = :d ORDER BY 1"),
            {"d": day},
        ).scalars()
        assert list(kept) == ["droplet:1", "spaces:late"]


# ---- unattributed versions: held under '' ------------------------------------------------------


@pytest.mark.citus
def test_an_unattributed_version_is_held_under_the_sentinel_and_matches_the_source(engine):
    """The source's NULL deployment_id is held as UNATTRIBUTED (''), a key Citus can
    distribute: counted, never metered, fingerprinted under '', and equal to the source in
    the corrections' and the reconciliation's comparisons; attributing it later is found."""
    add_deployment(engine, "dep-a")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 3, 1))
    add_version(engine, "droplet:orphan", None, "droplet", utc(2025, 3, 1))
    adopted = utc(2025, 3, 3, 12)
    add_version(engine, "droplet:adopted", None, "droplet", utc(2025, 3, 1), adopted)
    add_version(engine, "droplet:adopted", "dep-a", "droplet", adopted)
    first, last = date(2025, 3, 2), date(2025, 3, 4)
    assert materialize_range(first, last, assets=("resource_inventory", "usage_records")).success

    with engine.connect() as connection:
        held = connection.execute(
            text(
                "SELECT day, resource_id, deployment_id FROM metering.resource_inventory "
                "ORDER BY day, resource_id, starts_at"
            )
        ).all()
        unattributed = connection.execute(
            text("SELECT day, unattributed_resources FROM metering.inventory_snapshots")
        ).all()
        keys = connection.execute(
            text("SELECT DISTINCT deployment_id FROM metering.day_fingerprints ORDER BY 1")
        ).scalars()
        assert set(keys) == {UNATTRIBUTED, "dep-a"}
    d2, d3, d4 = (date(2025, 3, d) for d in (2, 3, 4))
    assert held == [
        (d2, "droplet:1", "dep-a"), (d2, "droplet:adopted", ""), (d2, "droplet:orphan", ""),
        (d3, "droplet:1", "dep-a"), (d3, "droplet:adopted", ""), (d3, "droplet:adopted", "dep-a"),
        (d3, "droplet:orphan", ""),
        (d4, "droplet:1", "dep-a"), (d4, "droplet:adopted", "dep-a"), (d4, "droplet:orphan", ""),
    ]  # fmt: skip
    assert sorted(unattributed) == [(d2, 2), (d3, 2), (d4, 1)]
    metered = {(r["deployment_id"], r["resource_id"], r["qty"]) for r in usage_rows(engine)}
    assert {(d, r) for d, r, _ in metered} == {("dep-a", "droplet:1"), ("dep-a", "droplet:adopted")}
    assert ("dep-a", "droplet:adopted", 12) in metered  # its attributed half of the 3rd

    def compared() -> tuple[set, dict]:
        with engine.connect() as connection:
            days = snapshot_times(connection, first, last)
            changed = changed_days(connection, None, days, utc(2025, 1, 1), utc(2025, 3, 5))
            return changed, differing_days(connection, None, first, last)

    assert compared() == (set(), {})
    # Attributed after the fact: both see the days it changes (the corrections read every
    # version recorded in the window, this one's recorded_at included).
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE arcadia.resource_versions SET deployment_id = 'dep-a' "
                "WHERE resource_id = 'droplet:orphan'"
            )
        )
    assert compared() == ({d2, d3, d4}, {day: [UNATTRIBUTED, "dep-a"] for day in (d2, d3, d4)})
