"""projected_quotes through Dagster on real PostgreSQL (issue 19): each deployment's quote
projected from a day to its month's end, with caps, tiers and the minimum; equal to the quote
on the month's last day (its check); `quote --projected` in the CLI.

Issue 19's deployment: starter, two droplets running all May 2026, droplet hours capped at
672 per resource, starter's tiers (0.01 up to 200 h, then 0.008) and a 30.00 minimum. As of
May 10 each droplet has run 240 h; projected to May 31, 744 h each: billable 1344 h, 600
over, 5.20; 25.20 lifted to 30.00 by a 4.80 true-up.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from dagster import DagsterInstance
from sqlalchemy import text

from arcadia_pipeline.billing.checks import projection_differs_from_quote
from arcadia_pipeline.billing.projection import QuoteBehindInventory, replace_projection_day
from arcadia_pipeline_tests.pricing.test_caps import DROPLETS_CAPPED_AT_672
from arcadia_pipeline_tests.pricing.test_lines import (
    MAY,
    MAY_31,
    STARTER_DROPLET_TIERS,
    STARTER_MINIMUM_FROM_MAY,
    cli_json,
    droplet_line,
    run,
    two_droplets_all_may,
)
from arcadia_pipeline_tests.statements.support import check_results
from arcadia_pipeline_tests.support import materialize_range

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

D = Decimal
MAY_10 = date(2026, 5, 10)


def projected(engine, day: date, columns: str) -> tuple:
    """`columns` of dep-may's projection as of `day`, its droplet line's as `l.…`."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    f"SELECT {columns} FROM metering.projected_quotes q"
                    " JOIN metering.projected_quote_lines l USING (as_of_date, deployment_id)"
                    " WHERE q.as_of_date = :d AND q.deployment_id = 'dep-may'"
                    " AND l.billing_kind = 'droplet_hours'"
                ),
                {"d": day},
            ).one()
        )


TOTALS = "q.total_usd, l.usage, l.billable_qty, l.overage_usd, q.minimum_true_up_usd"


def test_the_month_is_projected_from_each_day_and_equals_the_quote_on_its_last(engine):
    two_droplets_all_may(engine)
    for statement in (DROPLETS_CAPPED_AT_672, STARTER_DROPLET_TIERS, STARTER_MINIMUM_FROM_MAY):
        run(engine, statement)
    result = materialize_range(MAY, MAY_31, instance=DagsterInstance.ephemeral())
    assert all(check_results(result).values())
    # The value: 30.00 as of May 10 (the quote that day is the minimum, on 480 h).
    assert projected(engine, MAY_10, TOTALS) == (D("30.00"), 1488, 1344, D("5.20"), D("4.80"))
    # Every day of May projects the same month, each droplet accruing to its end.
    with engine.connect() as connection:
        days = connection.execute(
            text(
                "SELECT q.total_usd, l.usage, l.billable_qty, l.overage_usd"
                " FROM metering.projected_quotes q"
                " JOIN metering.projected_quote_lines l USING (as_of_date, deployment_id)"
                " WHERE q.deployment_id = 'dep-may' AND l.billing_kind = 'droplet_hours'"
            )
        ).all()
        assert len(days) == 31
        assert {tuple(row) for row in days} == {(D("30.00"), 1488, 1344, D("5.20"))}
        assert not projection_differs_from_quote(connection, MAY_31)
    shown = cli_json("quote", "dep-may", "--as-of", "2026-05-10", "--projected")
    line = droplet_line(shown)
    assert (shown["total_usd"], shown["minimum_true_up_usd"]) == ("30.00", "4.80")
    assert (line["qty"], line["billable_qty"], line["amount_usd"]) == ("1488", "1344", "5.20")
    assert shown["projected"] is True


def test_a_projection_keeps_only_the_versions_open_at_the_days_end(engine):
    # droplet:2 ends on May 21: projected from May 10 it runs all month (nothing after the
    # 10th is known to the projection); from May 25, it ran 480 h and accrues no more.
    two_droplets_all_may(engine)
    run(
        engine,
        "UPDATE arcadia.resource_versions SET valid_to = '2026-05-21'"
        " WHERE resource_id = 'droplet:2'",
    )
    materialize_range(MAY, MAY_31, instance=DagsterInstance.ephemeral())
    hours = "l.usage, l.billable_qty"
    assert projected(engine, MAY_10, hours) == (1488, 1488)
    assert projected(engine, date(2026, 5, 25), hours) == (744 + 480, 744 + 480)
    assert projected(engine, MAY_31, "q.total_usd") == (D("24.29"),)  # 20.00 + 480 h x 0.00893


def test_a_projection_that_is_not_the_quote_on_the_months_last_day_is_named(engine):
    two_droplets_all_may(engine)
    materialize_range(date(2026, 5, 30), MAY_31, instance=DagsterInstance.ephemeral())
    with engine.begin() as connection:
        assert not projection_differs_from_quote(connection, MAY_31)
        connection.execute(
            text(
                "UPDATE metering.projected_quotes SET total_usd = total_usd + 0.01"
                " WHERE as_of_date = '2026-05-31'"
            )
        )
        connection.execute(
            text(
                "UPDATE metering.projected_quote_lines SET usage = usage + 1"
                " WHERE as_of_date = '2026-05-31' AND billing_kind = 'droplet_hours'"
            )
        )
        assert projection_differs_from_quote(connection, MAY_31) == [
            "dep-may: projected 20.01, quoted 20.00",  # 96 h metered, none over
            "dep-may/droplet_hours: the projected line is not the quoted",
        ]
        # Another day's projection is not the month's quote: nothing to compare.
        assert not projection_differs_from_quote(connection, date(2026, 5, 30))


def test_a_quote_without_the_line_of_an_open_resource_is_refused_naming_it(engine):
    # The projection adds the rest of the month to the day's quote lines: a deployment and
    # kind with a resource open at the day's end and no line in the quote means a quote older
    # than the day's inventory. It is refused, naming the line, and nothing is written.
    two_droplets_all_may(engine)
    materialize_range(MAY_10, MAY_10, instance=DagsterInstance.ephemeral())
    before = projected(engine, MAY_10, TOTALS)
    with (
        pytest.raises(
            QuoteBehindInventory,
            match=r"1 \(deployment, billing kind\).* 2026-05-10 .*dep-may droplet_hours",
        ),
        engine.begin() as connection,
    ):
        connection.execute(
            text(
                "DELETE FROM metering.deployment_quote_lines WHERE as_of_date = '2026-05-10'"
                " AND billing_kind = 'droplet_hours'"
            )
        )
        replace_projection_day(connection, MAY_10, "stale-quote")
    assert projected(engine, MAY_10, TOTALS) == before
