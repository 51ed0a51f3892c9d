"""Graduated overage tiers priced through Dagster on real PostgreSQL (issue 19): the quotes,
the closed statement and the adjustment of a back-dated removal, and the lines the catalog
cannot price refused by name.

Issue 19's deployment: starter (20.00, 744 droplet hours included), two droplets running all
May 2026 (31 days: 2 x 744 h = 1488 h, 744 h over). Starter's droplet tiers from May: 0.01
up to 200 h of overage, then 0.008.
- Flat (the shipped 0.00893): 744 x 0.00893 = 6.64392 -> 6.64, total 26.64.
- Tiered: 200 x 0.01 + 544 x 0.008 = 6.352 -> 6.35, total 26.35; the line shows 0.008, the
  price of its last hour.
- droplet:2 learnt, after the close, to have ended on May 16: 744 + 360 h, 360 over:
  200 x 0.01 + 160 x 0.008 = 3.28, an adjustment of 3.28 - 6.35 = -3.07 (flat: -3.43).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from dagster import DagsterInstance
from sqlalchemy import text

from arcadia_pipeline.cli import main as cli_main
from arcadia_pipeline_tests.statements.support import (
    adjustments,
    check_results,
    price_month,
    statements,
)
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    failure_messages,
    materialize_range,
    utc,
)

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

D = Decimal
MAY, MAY_31 = date(2026, 5, 1), date(2026, 5, 31)
MAY_CLOSED = datetime(2026, 6, 4, 3, tzinfo=UTC)  # after the 3-day grace period
CORRECTED = datetime(2026, 6, 20, tzinfo=UTC)
STARTER_DROPLET_TIERS = (
    "INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty, unit_price_usd,"
    " effective_from) VALUES ('starter', 'droplet_hours', 200, 0.01, '2026-05-01'),"
    " ('starter', 'droplet_hours', NULL, 0.008, '2026-05-01')"
)


def run(engine, statement: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement))


def two_droplets_all_may(engine) -> None:
    add_deployment(engine, "dep-may", "starter")
    for n in (1, 2):
        add_version(engine, f"droplet:{n}", "dep-may", "droplet", utc(2026, 4, 1))


# The tiers May's 744 h over fill: what the CLI shows under the droplet line.
MAY_TIERS = [
    {"from_qty": "0", "up_to_qty": "200", "qty": "200", "unit_price_usd": "0.01",
     "amount_usd": "2"},
    {"from_qty": "200", "up_to_qty": None, "qty": "544", "unit_price_usd": "0.008",
     "amount_usd": "4.352"},
]  # fmt: skip


def cli_json(*args: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(list(args)) == 0
    return json.loads(out.getvalue())


def droplet_line(shown: dict) -> dict:
    [line] = [line for line in shown["lines"] if line["billing_kind"] == "droplet_hours"]
    return line


def dep_may_quote(engine, day: date, columns: str) -> tuple:
    """`columns` of dep-may's quote as of `day`, its droplet line's as `l.…`."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    f"SELECT {columns} FROM metering.deployment_quotes q"
                    " JOIN metering.deployment_quote_lines l USING (as_of_date, deployment_id)"
                    " WHERE q.as_of_date = :d AND q.deployment_id = 'dep-may'"
                    " AND l.billing_kind = 'droplet_hours'"
                ),
                {"d": day},
            ).one()
        )


def quote_line(engine, day: date) -> tuple:
    return dep_may_quote(
        engine,
        day,
        "q.total_usd, l.usage, l.included, l.overage_qty, l.unit_price_usd, l.overage_usd",
    )


def end_droplet_2_on_may_16(engine, instance, monkeypatch):
    """The back-dated removal, learnt on June 20: May's days from the 16th re-metered, then
    May priced again (the adjusting run's result)."""
    run(
        engine,
        "UPDATE arcadia.resource_versions SET valid_to = '2026-05-16', recorded_at ="
        f" '{CORRECTED.isoformat()}' WHERE resource_id = 'droplet:2'",
    )
    materialize_range(date(2026, 5, 16), MAY_31, instance=instance)
    return price_month(MAY, CORRECTED, instance, monkeypatch)


def test_a_tiered_month_is_quoted_closed_and_adjusted_on_its_tiers(engine, monkeypatch):
    two_droplets_all_may(engine)
    run(engine, STARTER_DROPLET_TIERS)
    instance = DagsterInstance.ephemeral()
    quoted = materialize_range(MAY, MAY_31, instance=instance)
    assert all(check_results(quoted).values())
    # total, usage, included, overage, unit price (of the last hour), amount
    assert quote_line(engine, MAY_31) == (D("26.35"), 1488, 744, 744, D("0.008"), D("6.35"))
    live = cli_json("quote", "dep-may", "--as-of", "2026-05-31")  # the pure reference
    assert (live["total_usd"], droplet_line(live)["amount_usd"]) == ("26.35", "6.35")
    assert droplet_line(live)["tiers"] == MAY_TIERS
    # On the 10th: 480 h used, none over: the first tier's price shows, nothing charged.
    assert quote_line(engine, date(2026, 5, 10)) == (D("20.00"), 480, 744, 0, D("0.01"), 0)

    closed = price_month(MAY, MAY_CLOSED, instance, monkeypatch)
    assert all(check_results(closed).values())
    statement = statements(engine, MAY)["dep-may"]
    hours = statement["lines"]["droplet_hours"]
    assert (statement["status"], statement["total_usd"]) == ("closed", D("26.35"))
    assert (hours["overage_qty"], hours["unit_price_usd"], hours["amount_usd"]) == (
        744, D("0.008"), D("6.35"),
    )  # fmt: skip

    # droplet:2 ended on May 16, learnt on June 20: re-metered, then May priced again.
    assert all(check_results(end_droplet_2_on_may_16(engine, instance, monkeypatch)).values())
    [adjustment] = adjustments(engine, MAY)
    assert (adjustment["billing_kind"], adjustment["qty_delta"], adjustment["amount_usd"]) == (
        "droplet_hours", -384, D("-3.07"),
    )  # fmt: skip
    assert statements(engine, MAY)["dep-may"]["total_usd"] == D("26.35")  # closed: kept
    shown = cli_json("statement", "dep-may", "--month", "2026-05")
    assert droplet_line(shown)["tiers"] == MAY_TIERS  # the closed line, as it was billed
    assert (shown["total_usd"], shown["total_with_adjustments_usd"]) == ("26.35", "23.28")


@pytest.mark.parametrize(
    ("catalog", "named"),
    [
        (
            "DELETE FROM metering.overage_tiers WHERE plan_code = 'starter'"
            " AND billing_kind = 'dns_zones'",
            "dns_zones of plan 'starter' (e.g. deployment dep-may)",
        ),
        (  # May's droplet tiers end at 200 h: the hours above have no price
            "INSERT INTO metering.overage_tiers VALUES"
            " ('starter', 'droplet_hours', 200, 0.01, '2026-05-01')",
            "droplet_hours of plan 'starter' (e.g. deployment dep-may)",
        ),
    ],
    ids=["no tier", "no open tier"],
)
def test_a_line_without_an_open_tier_is_refused_by_name_and_nothing_is_quoted(
    engine, catalog, named
):
    two_droplets_all_may(engine)
    run(engine, catalog)
    failed = materialize_range(MAY, MAY, raise_on_error=False)
    assert not failed.success
    assert (
        "billing kinds quoted on 2026-05-01 have no open (last) overage tier in"
        f" metering.overage_tiers: {named}"
    ) in failure_messages(failed)
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT count(*) FROM metering.deployment_quotes")).scalar()
            == 0
        )


STARTER_MINIMUM_FROM_MAY = (
    "INSERT INTO metering.plans (plan_code, base_usd, minimum_usd, effective_from)"
    " VALUES ('starter', 20.00, 30.00, '2026-05-01')"
)


def quote_totals(engine, day: date) -> tuple:
    return dep_may_quote(
        engine,
        day,
        "q.base_usd, q.overage_usd, q.minimum_usd, q.minimum_true_up_usd, q.total_usd",
    )


def test_a_minimum_commitment_trues_up_quotes_statements_and_adjustments(engine, monkeypatch):
    # Starter from May: 20.00 base, 30.00 minimum, droplet tiers as above.
    two_droplets_all_may(engine)
    run(engine, STARTER_DROPLET_TIERS)
    run(engine, STARTER_MINIMUM_FROM_MAY)
    instance = DagsterInstance.ephemeral()
    quoted = materialize_range(MAY, MAY_31, instance=instance)
    assert all(check_results(quoted).values())
    # base, overage, minimum, true-up, total: 26.35 lifted by 3.65 to 30.00.
    assert quote_totals(engine, MAY_31) == (
        D("20.00"),
        D("6.35"),
        D("30.00"),
        D("3.65"),
        D("30.00"),
    )
    # On the 10th nothing is over yet: the whole minimum is due (the deployment is open to
    # the month's end, so it exists all month), 10.00 above the base.
    assert quote_totals(engine, date(2026, 5, 10)) == (
        D("20.00"), D("0.00"), D("30.00"), D("10.00"), D("30.00"),
    )  # fmt: skip
    live = cli_json("quote", "dep-may", "--as-of", "2026-05-31")
    assert (live["minimum_usd"], live["minimum_true_up_usd"], live["total_usd"]) == (
        "30.00", "3.65", "30.00",
    )  # fmt: skip

    assert all(check_results(price_month(MAY, MAY_CLOSED, instance, monkeypatch)).values())
    statement = statements(engine, MAY)["dep-may"]
    assert (statement["minimum_usd"], statement["minimum_true_up_usd"], statement["total_usd"]) == (
        D("30.00"), D("3.65"), D("30.00"),
    )  # fmt: skip

    # droplet:2 ended on May 16: its line falls by 3.07, the true-up rises by as much.
    assert all(check_results(end_droplet_2_on_may_16(engine, instance, monkeypatch)).values())
    assert sorted(
        (a["billing_kind"], a["qty_delta"], a["amount_usd"]) for a in adjustments(engine, MAY)
    ) == [("droplet_hours", -384, D("-3.07")), ("minimum_true_up", 0, D("3.07"))]
    shown = cli_json("statement", "dep-may", "--month", "2026-05")
    assert (shown["minimum_true_up_usd"], shown["total_with_adjustments_usd"]) == ("3.65", "30.00")
