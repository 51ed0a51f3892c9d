"""The billing checks pass on real aggregates and quotes and fail, naming the ids, on
purpose-built bad data."""

from datetime import date

import pytest
from sqlalchemy import text

from arcadia_pipeline.billing.checks import aggregate_mismatches, quote_mismatches
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

DAY = date(2025, 3, 10)


@pytest.fixture
def billed(engine):
    for deployment in ("dep-a", "dep-b"):
        add_deployment(engine, deployment, "starter")
        add_version(engine, f"{deployment}:droplet", deployment, "droplet", utc(2025, 1, 1))
        add_version(engine, f"{deployment}:spaces", deployment, "spaces_bucket",
                    utc(2025, 1, 1), size_gb=80)  # fmt: skip
    materialize_range(date(2025, 3, 1), DAY)
    return engine


def _run(engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


def test_both_pass_on_real_aggregates_and_quotes(billed):
    with billed.connect() as connection:
        assert aggregate_mismatches(connection, DAY) == []
        assert quote_mismatches(connection, DAY) == []


def test_an_aggregate_that_is_not_the_sum_of_its_records_is_named(billed):
    _run(billed, "UPDATE metering.usage_period_aggregates SET qty = qty + 1 "
                 "WHERE as_of_date = '2025-03-10' AND deployment_id = 'dep-b' "
                 "AND billing_kind = 'droplet_hours'")  # fmt: skip
    # A record written after the aggregates were: the sum moves, the aggregate does not.
    _run(billed, "INSERT INTO metering.usage_records (deployment_id, resource_id, "
                 "resource_kind, period_start, granularity, qty) VALUES ('dep-a', 'dns:late', "
                 "'dns_zones', '2025-03-04', 'day', 1)")  # fmt: skip
    with billed.connect() as connection:
        problems = sorted(aggregate_mismatches(connection, DAY))
    assert problems == [
        "dep-a/dns_zones: aggregate None, records sum 1.000000000000000000",
        "dep-b/droplet_hours: aggregate 241.000000000000000000, records sum 240.000000000000000000",
    ]


def test_a_quote_whose_total_or_lines_do_not_add_up_is_named(billed):
    _run(billed, "UPDATE metering.deployment_quotes SET total_usd = total_usd + 0.01 "
                 "WHERE as_of_date = '2025-03-10' AND deployment_id = 'dep-a'")  # fmt: skip
    # A line priced off the rule (80 GB for 10 of 31 days is 25.8 GB-months of the 50
    # included: no overage), its quote kept consistent with it: only the rule catches it.
    _run(billed, "UPDATE metering.deployment_quote_lines SET overage_usd = 5 "
                 "WHERE as_of_date = '2025-03-10' AND deployment_id = 'dep-b' "
                 "AND billing_kind = 'spaces_gb_month'")  # fmt: skip
    _run(billed, "UPDATE metering.deployment_quotes SET overage_usd = overage_usd + 5, "
                 "total_usd = total_usd + 5 "
                 "WHERE as_of_date = '2025-03-10' AND deployment_id = 'dep-b'")  # fmt: skip
    with billed.connect() as connection:
        problems = sorted(quote_mismatches(connection, DAY))
    assert len(problems) == 2
    assert problems[0].startswith("dep-a: total 20.01 != base 20.00 + lines 0")
    assert problems[1].startswith("dep-b:") and "(1 mispriced line(s))" in problems[1]
