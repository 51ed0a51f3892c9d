"""capped_resource_usage, written with each day's aggregates (issue 19): each resource's
month to date of the kinds capped in the day's month, the day before's rows plus the day's
records, and rebuilt from the month's records when the day before is stale (a cap added to
a metered month). Migration 0017 fills it for the days aggregated before it.

Issue 19's deployment (tests/pricing/test_lines.py): two starter droplets running all May
2026, 744 h each. Uncapped the month quotes 26.64; `droplet_hours` capped at 672 h from May
it quotes 25.36.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from dagster import DagsterInstance
from sqlalchemy import text

from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.pricing.usage import usage_by_resource
from arcadia_pipeline_tests.pricing.test_caps import DROPLETS_CAPPED_AT_672
from arcadia_pipeline_tests.pricing.test_lines import (
    MAY,
    MAY_31,
    dep_may_quote,
    run,
    two_droplets_all_may,
)
from arcadia_pipeline_tests.statements.support import check_results
from arcadia_pipeline_tests.support import materialize_range

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

MAY_20 = date(2026, 5, 20)


def capped_rows(engine) -> dict[date, dict[tuple[str, str, str], Decimal]]:
    """{as_of_date: {(deployment, kind, resource): qty}} of capped_resource_usage."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT as_of_date, deployment_id, billing_kind, resource_id, qty"
                " FROM metering.capped_resource_usage"
            )
        ).all()
    table: dict[date, dict[tuple[str, str, str], Decimal]] = {}
    for day, *key, qty in rows:
        table.setdefault(day, {})[tuple(key)] = qty
    return table


def month_to_date(engine, day: date) -> dict[tuple[str, str, str], Decimal]:
    """dep-may's droplet hours per resource from May 1 to `day`, summed from the records."""
    with engine.connect() as connection:
        return {
            ("dep-may", kind, resource): qty
            for kind, resource, qty in usage_by_resource(connection, "dep-may", MAY, day)
        }


def test_a_cap_added_to_a_metered_month_rebuilds_each_resources_month_to_date(engine, database_url):
    two_droplets_all_may(engine)
    assert all(check_results(materialize_range(MAY, MAY_31)).values())
    assert capped_rows(engine) == {}  # no cap: nothing to keep
    assert dep_may_quote(engine, MAY_31, "q.total_usd") == (Decimal("26.64"),)

    # The cap makes May's days stale: the 20th, metered again, is summed from the month's
    # records; each day after it is the day before's rows plus its own.
    run(engine, DROPLETS_CAPPED_AT_672)
    result = materialize_range(MAY_20, MAY_31, instance=DagsterInstance.ephemeral())
    assert all(check_results(result).values())
    table = capped_rows(engine)
    days = [MAY_20 + timedelta(days=n) for n in range(12)]
    assert sorted(table) == days
    for day in days:
        assert table[day] == month_to_date(engine, day), day
    assert table[MAY_20][("dep-may", "droplet_hours", "droplet:1")] == 480
    assert table[MAY_31][("dep-may", "droplet_hours", "droplet:2")] == 744
    assert dep_may_quote(engine, MAY_31, "q.total_usd, l.billable_qty") == (
        Decimal("25.36"),
        1344,
    )

    # 0017 fills every aggregated day, the 1st to the 19th too, from its month's records.
    downgrade(database_url, "0016")
    upgrade(database_url)
    filled = capped_rows(engine)
    assert sorted(filled) == [MAY + timedelta(days=n) for n in range(31)]
    assert all(filled[day] == month_to_date(engine, day) for day in filled)
    assert all(filled[day] == table[day] for day in days)
