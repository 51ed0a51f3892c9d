"""A day waits for the days it reads, and a day older than a day it read is stale."""

import threading
import time
from datetime import date

from dagster import AssetKey
from sqlalchemy import select, text

from arcadia_pipeline.days.locks import hold_day, lock_reads
from arcadia_pipeline.days.staleness import is_stale, stale_days
from arcadia_pipeline.db.schema import day_writes
from arcadia_pipeline.flow import DAILY_FLOW, USAGE_PERIOD_AGGREGATES, USAGE_RECORDS
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    defs,
    materialize_range,
    utc,
)

FLOW = DAILY_FLOW.assets


def test_the_map_is_the_asset_graph():
    """The flow holds every upstream asset of Dagster's graph, in the graph's order."""
    graph = defs.resolve_asset_graph()
    ordered = [key.to_user_string() for key in graph.toposorted_asset_keys]
    assert tuple(name for name in ordered if name in FLOW) == FLOW
    for step in DAILY_FLOW:
        upstream = {key.to_user_string() for key in graph.get(AssetKey(step.asset)).parent_keys}
        # the quotes read the inventory too (the month's deployment versions), and say so
        # to Dagster; the inventory reads the source's two tables
        sources = {"arcadia/resource_versions", "arcadia/deployment_versions"}
        assert upstream == {reads.step.asset for reads in step.reads} | (
            sources if step.reads_source else set()
        )


def stamps(engine, asset: str) -> dict[date, object]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(day_writes.c.day, day_writes.c.written_at).where(day_writes.c.asset == asset)
        )
        return dict(rows.all())


def test_re_metering_an_earlier_day_makes_the_later_month_to_date_days_stale(engine):
    add_deployment(engine, "dep")
    add_version(engine, "droplet:1", "dep", "droplet", utc(2025, 3, 1))
    materialize_range(date(2025, 3, 1), date(2025, 3, 5))
    with engine.connect() as connection:
        assert stale_days(connection, DAILY_FLOW) == {asset: {} for asset in DAILY_FLOW.assets}

    add_version(engine, "dns:1", "dep", "dns_zone", utc(2025, 3, 2))
    materialize_range(
        date(2025, 3, 2), date(2025, 3, 2), assets=("resource_inventory", "usage_records")
    )

    with engine.connect() as connection:
        stale = stale_days(connection, DAILY_FLOW)
        assert sorted(stale["usage_period_aggregates"]) == [date(2025, 3, d) for d in (2, 3, 4, 5)]
        # each month-to-date quote read the deployment versions of every day through its own
        # (the prorated terms): the 2nd's inventory was re-read, so all four are stale
        assert sorted(stale["deployment_quotes"]) == [date(2025, 3, d) for d in (2, 3, 4, 5)]
        assert stale["usage_records"] == {}
        assert is_stale(connection, USAGE_PERIOD_AGGREGATES, date(2025, 3, 4))
        assert not is_stale(connection, USAGE_PERIOD_AGGREGATES, date(2025, 3, 1))
    newest = stamps(engine, "usage_records")[date(2025, 3, 2)]
    assert set(stale["usage_period_aggregates"].values()) == {newest}
    inventory = stamps(engine, "resource_inventory")[date(2025, 3, 2)]
    assert set(stale["deployment_quotes"].values()) == {inventory}

    materialize_range(date(2025, 3, 2), date(2025, 3, 5), assets=DAILY_FLOW.assets[2:])
    with engine.connect() as connection:
        assert stale_days(connection, DAILY_FLOW) == {asset: {} for asset in DAILY_FLOW.assets}


def test_a_reader_waits_for_the_writer_of_a_day_it_reads(engine):
    """Month-to-date aggregates of the 5th wait while the 2nd's records are being replaced,
    and their stamp comes after the 2nd's: the order the transactions saw each other in."""
    committed_at = {}

    def write_the_2nd():
        with engine.begin() as connection:
            hold_day(connection, USAGE_RECORDS, date(2025, 3, 2), "writer")
            locked.set()
            time.sleep(1.0)
            committed_at["writer"] = time.monotonic()

    locked = threading.Event()
    writer = threading.Thread(target=write_the_2nd)
    writer.start()
    assert locked.wait(10)
    with engine.begin() as connection:
        read_at = lock_reads(connection, USAGE_PERIOD_AGGREGATES, [date(2025, 3, 5)])
        waited_until = time.monotonic()
        written_at = connection.execute(
            text("SELECT written_at FROM metering.day_writes WHERE asset = 'usage_records'")
        ).scalar_one()
    writer.join()
    assert waited_until >= committed_at["writer"]
    assert read_at > written_at


def test_readers_do_not_wait_for_each_other(engine):
    with engine.begin() as first, engine.begin() as second:
        lock_reads(first, USAGE_PERIOD_AGGREGATES, [date(2025, 3, 5)])
        started = time.monotonic()
        lock_reads(second, USAGE_PERIOD_AGGREGATES, [date(2025, 3, 9)])
        assert time.monotonic() - started < 1
