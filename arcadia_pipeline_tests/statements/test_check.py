"""The check finds every way what a month has billed can differ from the month priced now."""

from datetime import UTC, date, datetime

import pytest
from dagster import DagsterInstance
from sqlalchemy import text

from arcadia_pipeline.statements.balance import month_mismatches
from arcadia_pipeline_tests.statements.support import FEBRUARY, price_month
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)


@pytest.fixture
def drafted(engine, monkeypatch):
    """Two days of February metered and drafted (a draft needs no complete month)."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 27), date(2025, 2, 28), instance=instance)
    price_month(FEBRUARY, datetime(2025, 3, 1, tzinfo=UTC), instance, monkeypatch)
    return engine


def mismatches(engine) -> list[str]:
    with engine.begin() as connection:
        return month_mismatches(connection, FEBRUARY)


def test_a_fresh_draft_has_no_mismatch(drafted):
    assert mismatches(drafted) == []


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (
            "UPDATE metering.monthly_statement_lines SET amount_usd = 1 "
            "WHERE billing_kind = 'dns_zones'",
            [
                "dep-a: total 20.00 != base 20.00 + lines 1.00 (1 mispriced line(s))",
                "dep-a/dns_zones: billed qty 0 and 1.00 USD, priced now qty 0 and 0.00 USD",
            ],
        ),
        (
            "UPDATE metering.monthly_statements SET total_usd = 21",
            [
                "dep-a: total 21.00 != base 20.00 + lines 0.00",
                "dep-a: statement + adjustments 21.00 USD, priced now 20.00 USD",
            ],
        ),
        (
            "INSERT INTO metering.statement_adjustments (month, deployment_id, billing_kind, "
            "qty_delta, amount_usd) VALUES ('2025-02-01', 'dep-a', 'droplet_hours', 1, 0.01)",
            [
                "dep-a: statement + adjustments 20.01 USD, priced now 20.00 USD",
                "dep-a/droplet_hours: billed qty 49.000000000000000000 and 0.01 USD, priced "
                "now qty 48.000000000000000000 and 0.00 USD",
            ],
        ),
    ],
)
def test_a_tampered_month_is_named(drafted, tamper, found):
    with drafted.begin() as connection:
        connection.execute(text(tamper))
    assert mismatches(drafted) == found
