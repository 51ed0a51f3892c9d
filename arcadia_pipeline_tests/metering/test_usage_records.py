"""usage_records, materialised for real (Dagster + PostgreSQL) from hand-built source versions.

Expected quantities come from docs/domain.md's accrual table, computed by hand here. qty is
numeric(38, 18): a value that is a terminating decimal must be exact; one that is not
(100/31 GB-months) must be right to the last stored digit, and a whole month of such
records must still sum to exactly the size (or exactly one zone).
"""

import os
import subprocess
import sys
import textwrap
import threading
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from sqlalchemy import text

from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    materialize_day,
    materialize_range,
    set_granularity,
    usage_rows,
    utc,
)

METERING = ("resource_inventory", "usage_records")
LAST_DIGIT = Fraction(1, 10**18)  # qty is numeric(38, 18)
REPO = Path(__file__).resolve().parents[2]


def meter_day(day, **kwargs):
    return materialize_day(day, assets=METERING, **kwargs)


def meter_range(first, last, **kwargs):
    return materialize_range(first, last, assets=METERING, **kwargs)


def qty_of(rows, resource_id, deployment_id=None):
    matching = [
        r
        for r in rows
        if r["resource_id"] == resource_id
        and (deployment_id is None or r["deployment_id"] == deployment_id)
    ]
    assert len(matching) == 1, matching
    return matching[0]["qty"]


def assert_near(qty: Decimal, exact: Fraction) -> None:
    """qty is `exact` rounded somewhere within the last stored digit."""
    assert abs(Fraction(qty) - exact) <= LAST_DIGIT, (qty, float(exact))


def content(rows):
    """Rows without their lineage, which legitimately changes from run to run: the run id,
    and the inventory snapshot, which every run of a day takes afresh (new id)."""
    lineage = ("run_id", "inventory_snapshot_id", "metered_at")
    return [{k: v for k, v in r.items() if k not in lineage} for r in rows]


def day_rows(engine, day):
    return usage_rows(
        engine,
        "period_start >= :d0 AND period_start < :d1",
        d0=utc(day.year, day.month, day.day),
        d1=utc(day.year, day.month, day.day) + timedelta(days=1),
    )


def partition_metadata(result, asset_name, day):
    """The metadata the materialisation recorded for one partition (day)."""
    [event] = [
        m for m in result.asset_materializations_for_node(asset_name) if m.partition == str(day)
    ]
    return {key: value.value for key, value in event.metadata.items()}


# ---- whole days -----------------------------------------------------------------------


@pytest.mark.citus
def test_whole_day_in_a_31_day_month(engine):
    add_deployment(engine, "dep")
    since = utc(2024, 12, 1)  # long before the day: the version covers it whole
    add_version(engine, "droplet:1", "dep", "droplet", since)
    add_version(engine, "spaces:31", "dep", "spaces_bucket", since, size_gb=31)
    add_version(engine, "spaces:100", "dep", "spaces_bucket", since, size_gb=100)
    add_version(engine, "snapshot:1", "dep", "snapshot", since, size_gb=62)
    add_version(engine, "backup:1", "dep", "droplet_backup", since, size_gb="15.5")
    add_version(engine, "dns:1", "dep", "dns_zone", since)

    meter_day(date(2025, 1, 15))

    rows = usage_rows(engine)
    assert {r["resource_kind"] for r in rows} == {
        "droplet_hours",
        "spaces_gb_month",
        "snapshot_gb_month",
        "droplet_backup_gb_month",
        "dns_zones",
    }
    assert {(r["period_start"], r["granularity"]) for r in rows} == {(utc(2025, 1, 15), "day")}
    assert qty_of(rows, "droplet:1") == Decimal(24)
    # size / 31 days: exact where it terminates, to the last digit where it does not
    assert qty_of(rows, "spaces:31") == Decimal(1)
    assert qty_of(rows, "snapshot:1") == Decimal(2)
    assert qty_of(rows, "backup:1") == Decimal("0.5")
    assert_near(qty_of(rows, "spaces:100"), Fraction(100, 31))
    assert_near(qty_of(rows, "dns:1"), Fraction(1, 31))


def test_whole_day_in_a_28_day_month(engine):
    add_deployment(engine, "dep")
    since = utc(2025, 1, 1)
    add_version(engine, "droplet:1", "dep", "droplet", since)
    add_version(engine, "spaces:28", "dep", "spaces_bucket", since, size_gb=28)
    add_version(engine, "spaces:100", "dep", "spaces_bucket", since, size_gb=100)
    add_version(engine, "dns:1", "dep", "dns_zone", since)

    meter_day(date(2025, 2, 28))

    rows = usage_rows(engine)
    assert qty_of(rows, "droplet:1") == Decimal(24)
    assert qty_of(rows, "spaces:28") == Decimal(1)
    assert_near(qty_of(rows, "spaces:100"), Fraction(100, 28))
    assert_near(qty_of(rows, "dns:1"), Fraction(1, 28))


def test_a_whole_month_of_days_sums_to_exactly_the_size_and_one_zone(engine):
    # 868 = 31 * 28: exactly 28 GB-months a day in January and 31 in February.
    add_deployment(engine, "dep")
    since = utc(2024, 12, 31, 12)
    add_version(engine, "spaces:868", "dep", "spaces_bucket", since, size_gb=868)
    add_version(engine, "spaces:100", "dep", "spaces_bucket", since, size_gb=100)
    add_version(engine, "dns:1", "dep", "dns_zone", since)

    meter_range(date(2025, 1, 1), date(2025, 2, 28))

    with engine.connect() as connection:
        sums = {
            (month, resource): (qty, records)
            for month, resource, qty, records in connection.execute(
                text(
                    "SELECT date_trunc('month', period_start)::date, resource_id, sum(qty), "
                    "count(*) FROM metering.usage_records GROUP BY 1, 2"
                )
            )
        }
    for month, days in ((date(2025, 1, 1), 31), (date(2025, 2, 1), 28)):
        assert sums[month, "spaces:868"] == (Decimal(868), days)
        assert sums[month, "spaces:100"] == (Decimal(100), days)
        assert sums[month, "dns:1"] == (Decimal(1), days)
    for row in usage_rows(engine, "resource_id = 'spaces:868'"):
        assert row["qty"] == (28 if row["period_start"].month == 1 else 31)


def test_leap_day_2024_is_a_29th_of_the_month(engine):
    """Feb 2024 is before the default partition start (2025-01-01): meter it through the
    configurable start date, in a fresh process since the partitioning is fixed at import."""
    add_deployment(engine, "dep")
    since = utc(2024, 1, 20)
    add_version(engine, "droplet:1", "dep", "droplet", since)
    add_version(engine, "spaces:29", "dep", "spaces_bucket", since, size_gb=29)
    add_version(engine, "spaces:100", "dep", "spaces_bucket", since, size_gb=100)
    add_version(engine, "dns:1", "dep", "dns_zone", since)
    script = textwrap.dedent(
        """
        from datetime import date
        from arcadia_pipeline_tests.support import materialize_range
        materialize_range(
            date(2024, 2, 1), date(2024, 2, 29), assets=("resource_inventory", "usage_records")
        )
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "ARCADIA_METERING_START_DATE": "2024-01-01"},
        cwd=REPO,
        check=True,
        capture_output=True,
    )

    leap_day = day_rows(engine, date(2024, 2, 29))
    assert qty_of(leap_day, "droplet:1") == Decimal(24)
    assert qty_of(leap_day, "spaces:29") == Decimal(1)
    assert_near(qty_of(leap_day, "spaces:100"), Fraction(100, 29))
    assert_near(qty_of(leap_day, "dns:1"), Fraction(1, 29))
    with engine.connect() as connection:
        sums = dict(
            connection.execute(
                text("SELECT resource_id, sum(qty) FROM metering.usage_records GROUP BY 1")
            ).all()
        )
    assert sums == {
        "droplet:1": Decimal(29 * 24),
        "spaces:29": Decimal(29),
        "spaces:100": Decimal(100),
        "dns:1": Decimal(1),
    }


# ---- partial days ----------------------------------------------------------------------


def test_created_at_18_00_accrues_six_hours(engine):
    add_deployment(engine, "dep")
    created = utc(2025, 1, 10, 18)
    add_version(engine, "droplet:1", "dep", "droplet", created)
    # 124 GB for a quarter of a 31-day day: 124 * 6h / (31 * 24h) = 1 GB-month
    add_version(engine, "spaces:124", "dep", "spaces_bucket", created, size_gb=124)

    meter_day(date(2025, 1, 10))

    rows = usage_rows(engine)
    assert qty_of(rows, "droplet:1") == Decimal(6)
    assert qty_of(rows, "spaces:124") == Decimal(1)


def test_powered_off_at_09_30_gives_one_record_of_nine_and_a_half_hours(engine):
    add_deployment(engine, "dep")
    off_at = utc(2025, 1, 10, 9, 30)
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 1, 1), off_at)
    add_version(engine, "droplet:1", "dep", "droplet", off_at, status="off")

    meter_day(date(2025, 1, 10))

    [row] = usage_rows(engine)
    assert row["qty"] == Decimal("9.5")
    assert row["granularity"] == "day"


def test_a_droplet_off_all_day_still_gets_a_record_of_zero(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 1, 1), status="off")

    meter_day(date(2025, 1, 10))

    [row] = usage_rows(engine)
    assert (row["resource_id"], row["qty"]) == ("droplet:1", Decimal(0))


def test_a_resource_gone_at_midnight_has_no_record_that_day(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:gone", "dep", "droplet", utc(2025, 1, 1), utc(2025, 1, 10))
    add_version(engine, "droplet:later", "dep", "droplet", utc(2025, 1, 11))

    meter_day(date(2025, 1, 10))

    assert usage_rows(engine) == []


def test_resize_of_a_bucket_mid_day_is_one_record_summing_both_sizes(engine):
    add_deployment(engine, "dep")
    resized = utc(2025, 1, 10, 12)
    add_version(engine, "spaces:1", "dep", "spaces_bucket", utc(2025, 1, 1), resized, size_gb=31)
    add_version(engine, "spaces:1", "dep", "spaces_bucket", resized, size_gb=62)

    meter_day(date(2025, 1, 10))

    # half a day at 31 GB (0.5) + half a day at 62 GB (1.0), over a 31-day month
    [row] = usage_rows(engine)
    assert row["qty"] == Decimal("1.5")


@pytest.mark.citus
def test_re_attribution_mid_day_gives_one_record_per_deployment(engine):
    add_deployment(engine, "dep-a")
    add_deployment(engine, "dep-b")
    moved = utc(2025, 1, 10, 15)
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1), moved)
    add_version(engine, "droplet:1", "dep-b", "droplet", moved)
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), moved, size_gb=124)
    add_version(engine, "spaces:1", "dep-b", "spaces_bucket", moved, size_gb=124)

    meter_day(date(2025, 1, 10))

    rows = usage_rows(engine)
    assert [(r["deployment_id"], r["resource_id"], r["qty"]) for r in rows] == [
        ("dep-a", "droplet:1", Decimal(15)),
        ("dep-a", "spaces:1", Decimal("2.5")),  # 124 GB * 15h / 744h
        ("dep-b", "droplet:1", Decimal(9)),
        ("dep-b", "spaces:1", Decimal("1.5")),  # 124 GB * 9h / 744h
    ]


def test_unattributed_resources_are_not_metered_but_counted_per_partition(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:mine", "dep", "droplet", utc(2025, 1, 1))
    # unattributed on the 11th only (two of them), none on the 10th
    add_version(engine, "droplet:stray", None, "droplet", utc(2025, 1, 11), utc(2025, 1, 12))
    add_version(engine, "spaces:stray", None, "spaces_bucket", utc(2025, 1, 11, 6), size_gb=10)
    instance = DagsterInstance.ephemeral()

    result = meter_range(date(2025, 1, 10), date(2025, 1, 11), instance=instance)

    assert {r["resource_id"] for r in usage_rows(engine)} == {"droplet:mine"}
    assert (
        partition_metadata(result, "usage_records", "2025-01-10")["unattributed_resources_skipped"]
        == 0
    )
    assert (
        partition_metadata(result, "usage_records", "2025-01-11")["unattributed_resources_skipped"]
        == 2
    )
    # the instance holds the same per-partition numbers for the UI
    latest = instance.get_latest_materialization_event(AssetKey("usage_records"))
    materialization = latest.asset_materialization
    skipped = materialization.metadata["unattributed_resources_skipped"].value
    assert skipped == {"2025-01-10": 0, "2025-01-11": 2}[materialization.partition]


# ---- hourly granularity ----------------------------------------------------------------


@pytest.mark.citus
def test_hourly_records_cover_each_hour_the_resource_existed_and_sum_to_the_day(engine):
    add_deployment(engine, "dep")
    created = utc(2025, 1, 10, 13, 27, 41)
    add_version(engine, "droplet:1", "dep", "droplet", created)
    add_version(engine, "spaces:1", "dep", "spaces_bucket", created, size_gb=100)
    day = date(2025, 1, 10)
    meter_day(day)
    daily = {r["resource_id"]: r["qty"] for r in usage_rows(engine)}

    set_granularity(engine, "droplet_hours", "hour")
    set_granularity(engine, "spaces_gb_month", "hour")
    meter_day(day)

    rows = usage_rows(engine)
    assert {r["granularity"] for r in rows} == {"hour"}
    droplet = [r for r in rows if r["resource_id"] == "droplet:1"]
    assert [r["period_start"] for r in droplet] == [utc(2025, 1, 10, h) for h in range(13, 24)]
    # 13:27:41 -> 14:00 is 1939 s; every later hour is whole
    assert_near(droplet[0]["qty"], Fraction(1939, 3600))
    assert [r["qty"] for r in droplet[1:]] == [Decimal(1)] * 10
    spaces = [r for r in rows if r["resource_id"] == "spaces:1"]
    assert len(spaces) == 11
    assert_near(spaces[0]["qty"], Fraction(100 * 1939, 31 * 86400))
    for row in spaces[1:]:
        assert_near(row["qty"], Fraction(100 * 3600, 31 * 86400))
    # the hours add up to the day's value exactly, not merely approximately
    assert sum(r["qty"] for r in droplet) == daily["droplet:1"]
    assert sum(r["qty"] for r in spaces) == daily["spaces:1"]
    assert_near(daily["droplet:1"], 10 + Fraction(1939, 3600))


@pytest.mark.citus
def test_hourly_records_of_a_split_hour_sum_its_versions(engine):
    add_deployment(engine, "dep")
    off_at = utc(2025, 1, 10, 9, 30)
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 1, 1), off_at)
    add_version(engine, "droplet:1", "dep", "droplet", off_at, status="off")
    set_granularity(engine, "droplet_hours", "hour")

    meter_day(date(2025, 1, 10))

    rows = usage_rows(engine)
    # an off droplet still exists: a record (of 0) for every hour of the day
    assert [r["period_start"] for r in rows] == [utc(2025, 1, 10, h) for h in range(24)]
    assert [r["qty"] for r in rows] == [Decimal(1)] * 9 + [Decimal("0.5")] + [Decimal(0)] * 14


@pytest.mark.citus
def test_granularity_flip_day_hour_day_never_double_counts(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 1, 1))
    add_version(engine, "droplet:2", "dep", "droplet", utc(2025, 1, 10, 7, 45))
    add_version(engine, "dns:1", "dep", "dns_zone", utc(2025, 1, 1))
    day = date(2025, 1, 10)

    def per_kind():
        with engine.connect() as connection:
            return {
                (kind, granularity): (qty, n)
                for kind, granularity, qty, n in connection.execute(
                    text(
                        "SELECT resource_kind, granularity, sum(qty), count(*) "
                        "FROM metering.usage_records GROUP BY 1, 2"
                    )
                )
            }

    meter_day(day)
    as_days = per_kind()
    as_days_rows = usage_rows(engine)
    assert as_days[("droplet_hours", "day")] == (Decimal("40.25"), 2)

    set_granularity(engine, "droplet_hours", "hour")
    meter_day(day)
    # the day's droplet records are now hourly only, with the same total
    assert per_kind() == {
        ("droplet_hours", "hour"): (Decimal("40.25"), 24 + 17),
        ("dns_zones", "day"): as_days[("dns_zones", "day")],
    }

    set_granularity(engine, "droplet_hours", "day")
    meter_day(day)
    assert per_kind() == as_days
    assert content(usage_rows(engine)) == content(as_days_rows)


# ---- idempotency -----------------------------------------------------------------------


def mixed_day(engine):
    """A day with partial, resized, re-attributed, off and unattributed resources."""
    add_deployment(engine, "dep-a")
    add_deployment(engine, "dep-b", "studio")
    noon = utc(2025, 1, 10, 12)
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1), noon)
    add_version(engine, "droplet:1", "dep-b", "droplet", noon)
    add_version(engine, "droplet:2", "dep-a", "droplet", utc(2025, 1, 10, 18))
    add_version(engine, "droplet:3", "dep-b", "droplet", utc(2025, 1, 1), status="off")
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), noon, size_gb=31)
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", noon, size_gb=62)
    add_version(engine, "dns:1", "dep-b", "dns_zone", utc(2025, 1, 1))
    add_version(engine, "droplet:stray", None, "droplet", utc(2025, 1, 1))
    return date(2025, 1, 10)


def test_re_running_a_day_leaves_identical_rows(engine):
    day = mixed_day(engine)
    meter_day(day)
    first = usage_rows(engine)

    second_run = meter_day(day)

    again = usage_rows(engine)
    assert content(again) == content(first)
    assert len(again) == 6  # no duplicates: one per (deployment, resource, period)
    assert {r["run_id"] for r in again} == {second_run.run_id}
    with engine.connect() as connection:
        snapshot_id = connection.execute(
            text("SELECT snapshot_id FROM metering.inventory_snapshots WHERE day = :d"),
            {"d": day},
        ).scalar_one()
    assert {r["inventory_snapshot_id"] for r in again} == {snapshot_id}


def test_two_runs_of_the_same_day_at_once_leave_the_rows_of_one_run(engine):
    day = mixed_day(engine)
    meter_day(day)
    expected = content(usage_rows(engine))
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE metering.usage_records"))

    results, errors = [], []

    def run():
        try:
            # each run has its own Dagster instance, opened and closed in its own thread
            with DagsterInstance.ephemeral() as instance:
                results.append(meter_day(day, instance=instance))
        except Exception as error:  # surfaced below, with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [r.success for r in results] == [True, True]
    assert content(usage_rows(engine)) == expected
    with engine.connect() as connection:
        snapshots = connection.execute(
            text("SELECT count(*) FROM metering.inventory_snapshots WHERE day = :d"), {"d": day}
        ).scalar_one()
        inventory_snapshot_ids = connection.execute(
            text("SELECT count(DISTINCT snapshot_id) FROM metering.resource_inventory")
        ).scalar_one()
    assert (snapshots, inventory_snapshot_ids) == (1, 1)


def test_re_attribution_corrected_in_the_source_replaces_the_old_deployments_record(engine):
    add_deployment(engine, "dep-a")
    add_deployment(engine, "dep-b")
    moved = utc(2025, 1, 10, 15)
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1), moved)
    add_version(engine, "droplet:1", "dep-b", "droplet", moved)
    day = date(2025, 1, 10)
    meter_day(day)
    assert [r["deployment_id"] for r in usage_rows(engine)] == ["dep-a", "dep-b"]

    # the app finds it was dep-b's droplet all along and corrects its history
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE arcadia.resource_versions SET deployment_id = 'dep-b', "
                "recorded_at = now() WHERE resource_id = 'droplet:1'"
            )
        )
    meter_day(day)

    [row] = usage_rows(engine)
    assert (row["deployment_id"], row["qty"]) == ("dep-b", Decimal(24))


# ---- ranges ----------------------------------------------------------------------------


def assert_every_day_once(engine, first, last):
    rows = usage_rows(engine)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert [r["period_start"] for r in rows] == [utc(d.year, d.month, d.day) for d in days]
    return rows


@pytest.mark.citus
def test_a_range_over_a_month_boundary_writes_every_day_once(engine):
    add_deployment(engine, "dep")
    add_version(engine, "spaces:1", "dep", "spaces_bucket", utc(2025, 1, 1), size_gb=868)
    first, last = date(2025, 1, 30), date(2025, 2, 2)

    result = meter_range(first, last)

    rows = assert_every_day_once(engine, first, last)
    # each day divides by its own month's length: 868/31 in January, 868/28 in February
    assert [r["qty"] for r in rows] == [Decimal(28), Decimal(28), Decimal(31), Decimal(31)]
    assert {r["run_id"] for r in rows} == {result.run_id}  # one run for the whole range


def test_a_range_over_a_year_boundary_writes_every_day_once(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 12, 1))
    add_version(engine, "dns:1", "dep", "dns_zone", utc(2025, 12, 1))
    first, last = date(2025, 12, 30), date(2026, 1, 2)

    meter_range(first, last)

    droplet = usage_rows(engine, "resource_id = 'droplet:1'")
    assert [r["period_start"] for r in droplet] == [
        utc(2025, 12, 30),
        utc(2025, 12, 31),
        utc(2026, 1, 1),
        utc(2026, 1, 2),
    ]
    assert {r["qty"] for r in droplet} == {Decimal(24)}
    assert len(usage_rows(engine, "resource_id = 'dns:1'")) == 4


# ---- lineage and storage ---------------------------------------------------------------


def test_records_carry_the_run_and_the_days_inventory_snapshot(engine):
    day = mixed_day(engine)

    result = meter_day(day)

    with engine.connect() as connection:
        snapshot_id, snapshot_run = connection.execute(
            text("SELECT snapshot_id, run_id FROM metering.inventory_snapshots WHERE day = :d"),
            {"d": day},
        ).one()
    rows = usage_rows(engine)
    assert rows
    assert snapshot_run == result.run_id
    assert {(r["run_id"], r["inventory_snapshot_id"]) for r in rows} == {
        (result.run_id, snapshot_id)
    }
    assert {r["sub_attribution"] for r in rows} == {None}  # reserved, never written yet
    metadata = partition_metadata(result, "usage_records", day)
    assert metadata["inventory_snapshot_id"] == str(snapshot_id)  # text: an id is not plotted
    assert metadata["records"] == len(rows)
    # Only the day's own figures: nothing of the run (its days, its records) on every day.
    assert not [key for key in metadata if key.endswith("_in_run")]


@pytest.mark.citus
def test_records_land_in_month_partitions_created_two_months_ahead(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 10, 1))

    meter_day(date(2025, 10, 15))

    with engine.connect() as connection:
        partitions = set(
            connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent "
                    "JOIN pg_namespace n ON n.oid = p.relnamespace "
                    "WHERE n.nspname = 'metering' "
                    "AND p.relname IN ('usage_records', 'resource_inventory')"
                )
            ).scalars()
        )
        # Counted in the partition itself (tableoid would name a shard on Citus).
        held = connection.execute(
            text("SELECT count(*) FROM metering.usage_records_2025_10")
        ).scalar_one()
        total = connection.execute(text("SELECT count(*) FROM metering.usage_records")).scalar()
    for table in ("usage_records", "resource_inventory"):
        assert {f"{table}_2025_10", f"{table}_2025_11", f"{table}_2025_12"} <= partitions
    assert held == total == 1
