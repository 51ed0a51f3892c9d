"""A billing month's records are read from its partition, whose extended statistics give the
planner the number of resources: the per-resource sums of the aggregates' check and the
statements are estimated from them, not guessed as a tenth of the records."""

from datetime import date

import pytest
from sqlalchemy import select, text

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.db.partitions import ensure_month_partitions, month_partition
from arcadia_pipeline.db.schema import usage_records
from arcadia_pipeline.pricing.usage import billable_usage_of, month_usage

MARCH = date(2025, 3, 1)
# 60 resources of 20 deployments, one record a day for 31 days: 1,860 records.
RECORDS = """
INSERT INTO metering.usage_records
  (deployment_id, resource_id, resource_kind, period_start, granularity, qty)
SELECT 'dep-' || (r % 20), 'res-' || r, CASE WHEN r % 3 = 0 THEN 'dns_zones' ELSE
  'droplet_hours' END, timestamptz '2025-03-01 00:00+00' + d * interval '1 day', 'day', 24
FROM generate_series(1, 60) r, generate_series(0, 30) d"""


def _statistics(connection) -> set[str]:
    return set(
        connection.execute(
            text("SELECT stxname FROM pg_statistic_ext WHERE stxname LIKE 'usage_records_%'")
        ).scalars()
    )


def _per_resource_estimate(connection, records) -> int:
    """The planner's rows for the aggregate grouped by resource in billable_usage_of."""
    query = billable_usage_of(MARCH, date(2025, 3, 31), records=records)
    compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
    (plan,) = connection.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    estimates, nodes = [], [plan["Plan"]]
    while nodes:
        node = nodes.pop()
        if any("resource_id" in key for key in node.get("Group Key", ())):
            estimates.append(node["Plan Rows"])
        nodes += node.get("Plans", [])
    (estimate,) = estimates
    return estimate


def test_a_month_is_read_from_its_partition_estimated_per_resource(engine):
    with engine.begin() as connection:
        ensure_month_partitions(connection, MARCH, MARCH)
        connection.execute(text(RECORDS))
    with engine.connect() as connection:
        connection.execute(text("ANALYZE metering.usage_records_2025_03"))
        assert "usage_records_2025_03_resources" in _statistics(connection)
        partition = month_partition(connection, usage_records, date(2025, 3, 17))
        read = str(select(partition.c.qty).compile(connection))
        assert "FROM metering.usage_records_2025_03 AS usage_records" in read
        # The same sums as from the parent, 24 h a record, 3 resources a deployment.
        from_partition = connection.execute(
            billable_usage_of(MARCH, date(2025, 3, 31), records=partition)
        ).all()
        from_parent = connection.execute(billable_usage_of(MARCH, date(2025, 3, 31))).all()
        assert sorted(from_partition) == sorted(from_parent)
        assert len(from_parent) == 40 and sum(row.qty for row in from_parent) == 60 * 31 * 24
        # No cap in effect: month_usage sums per (deployment, kind) alone, to the same rows.
        plain = month_usage(connection, MARCH, date(2025, 3, 31))
        assert "resource_id" not in str(plain.compile(connection))
        assert sorted(connection.execute(plain)) == sorted(from_parent)
        # 60 resources; the parent, never analysed, guesses a tenth of the 1,860 records.
        assert 45 <= _per_resource_estimate(connection, partition) <= 80
        assert _per_resource_estimate(connection, usage_records) >= 180
        # A month with no partition (never metered, or dropped by retention): the parent.
        assert month_partition(connection, usage_records, date(1999, 1, 1)) is usage_records


def test_0018_gives_the_existing_partitions_their_statistics(scratch_database):
    upgrade(scratch_database, "0017")
    engine = make_engine(scratch_database)
    with engine.begin() as connection:
        for month, upper in (("2025_03", "2025-04-01"), ("2025_04", "2025-05-01")):
            connection.execute(
                text(
                    f"CREATE TABLE metering.usage_records_{month} PARTITION OF "
                    f"metering.usage_records FOR VALUES FROM ('{month.replace('_', '-')}-01') "
                    f"TO ('{upper}')"
                )
            )
    upgrade(scratch_database)
    with engine.connect() as connection:
        assert _statistics(connection) == {
            "usage_records_2025_03_resources",
            "usage_records_2025_04_resources",
        }
    downgrade(scratch_database, "0017")
    with engine.connect() as connection:
        assert _statistics(connection) == set()
    engine.dispose()


@pytest.mark.citus  # the statistic and the partition's read on a distributed partition too
def test_a_capped_month_is_summed_per_resource_from_its_partition(engine):
    with engine.begin() as connection:
        ensure_month_partitions(connection, MARCH, MARCH)
        connection.execute(text(RECORDS))
        # 24 h a day for 31 days is 744 h a droplet: 700 of them count.
        connection.execute(
            text("INSERT INTO metering.billing_caps VALUES ('droplet_hours', 700, '2025-03-01')")
        )
    with engine.connect() as connection:
        capped = month_usage(connection, MARCH, date(2025, 3, 31))
        assert "metering.usage_records_2025_03 AS usage_records" in str(capped.compile(connection))
        rows = {(r.deployment_id, r.billing_kind): r for r in connection.execute(capped)}
        parent = connection.execute(billable_usage_of(MARCH, date(2025, 3, 31))).all()
    assert sorted(rows.values()) == sorted(parent)
    # Each deployment has two droplets and a DNS zone (dep-1: res-1, res-41 and res-21).
    assert (rows["dep-1", "droplet_hours"].qty, rows["dep-1", "droplet_hours"].billable_qty) == (
        2 * 744,
        2 * 700,
    )
    assert rows["dep-1", "dns_zones"].billable_qty == rows["dep-1", "dns_zones"].qty == 744
    droplets = [r for (_, kind), r in rows.items() if kind == "droplet_hours"]
    assert len(droplets) == 20 and {r.billable_qty for r in droplets} == {1400}
    assert sum(r.records for r in rows.values()) == 60 * 31
