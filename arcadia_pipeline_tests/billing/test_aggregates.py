"""usage_period_aggregates builds each day on the day before only while that day is current."""

from datetime import date, timedelta

from sqlalchemy import text

from arcadia_pipeline.billing.aggregates import builds_on_day_before
from arcadia_pipeline.flow import USAGE_PERIOD_AGGREGATES
from arcadia_pipeline_tests.billing.test_quotes import aggregates, month_to_date_record_sums
from arcadia_pipeline_tests.support import (
    ASSETS,
    add_deployment,
    add_version,
    materialize_day,
    materialize_range,
    utc,
)

JAN = utc(2025, 1, 1)


def _carried(engine, day: date) -> bool:
    with engine.begin() as connection:
        return builds_on_day_before(connection, USAGE_PERIOD_AGGREGATES, day)


def test_a_day_builds_on_the_day_before_only_while_it_is_current(engine):
    add_deployment(engine, "dep-a")
    add_version(engine, "droplet:a", "dep-a", "droplet", JAN)
    add_version(engine, "spaces:a", "dep-a", "spaces_bucket", JAN, size_gb=310)
    materialize_range(date(2025, 1, 1), date(2025, 1, 9))
    assert _carried(engine, date(2025, 1, 10))  # Jan 9 is current: carried
    assert not _carried(engine, date(2025, 1, 1))  # a month's first day starts afresh
    assert not _carried(engine, date(2025, 1, 11))  # Jan 10 was never written

    # A correction: the droplet was in fact off from Jan 5 12:00 to Jan 6. Jan 5's records
    # are re-metered but not yet the aggregates: every aggregate from Jan 5 on read older
    # records than there are.
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE arcadia.resource_versions SET valid_to = :t, recorded_at = now() "
                "WHERE resource_id = 'droplet:a'"
            ),
            {"t": utc(2025, 1, 5, 12)},
        )
    add_version(engine, "droplet:a", "dep-a", "droplet", utc(2025, 1, 5, 12), utc(2025, 1, 6),
                status="off")  # fmt: skip
    add_version(engine, "droplet:a", "dep-a", "droplet", utc(2025, 1, 6))
    materialize_day(date(2025, 1, 5), assets=["resource_inventory", "usage_records"])
    assert not _carried(engine, date(2025, 1, 10))  # Jan 9 is stale: summed from the 1st

    # Jan 10 alone: from the records, 12 hours fewer (Jan 9's stale total still has them).
    materialize_day(date(2025, 1, 10), assets=ASSETS)
    jan_10 = aggregates(engine, date(2025, 1, 10))
    assert jan_10 == month_to_date_record_sums(engine, date(2025, 1, 10))
    assert jan_10[("dep-a", "droplet_hours")] == 10 * 24 - 12
    assert jan_10[("dep-a", "spaces_gb_month")] == 100  # 310 GB for 10 of 31 days


def test_a_range_builds_each_day_on_the_last_and_equals_the_records(engine):
    add_deployment(engine, "dep-b", "studio")
    add_version(engine, "droplet:b", "dep-b", "droplet", JAN, utc(2025, 1, 20, 6))
    add_version(engine, "dns:b", "dep-b", "dns_zone", utc(2025, 1, 25))
    add_version(engine, "droplet:b2", "dep-b", "droplet", utc(2025, 2, 3))
    materialize_range(date(2025, 1, 1), date(2025, 1, 3))
    # Carried from Jan 3, through a month's end and into February.
    materialize_range(date(2025, 1, 4), date(2025, 2, 5))
    day = date(2025, 1, 1)
    while day <= date(2025, 2, 5):
        assert aggregates(engine, day) == month_to_date_record_sums(engine, day), day
        day += timedelta(days=1)
    feb_5 = aggregates(engine, date(2025, 2, 5))
    assert feb_5[("dep-b", "droplet_hours")] == 72  # February's own: Feb 3 to 5
    assert set(feb_5) == {("dep-b", "droplet_hours"), ("dep-b", "dns_zones")}
