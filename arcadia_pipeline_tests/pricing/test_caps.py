"""Per-resource monthly caps priced through Dagster on real PostgreSQL (issue 19): the quotes,
the closed statement, the adjustment of a back-dated removal, the CLI's billable usage, and a
resource that moved between deployments capped on each side.

Issue 19's deployment: starter (20.00, 744 droplet hours included), two droplets running all
May 2026 (744 h each). `droplet_hours` capped at 672 h per resource and month from May:
- flat 0.00893: billable 2 x 672 = 1344 h, 600 over: 5.358 -> 5.36, total 25.36;
- starter's tiers (0.01 up to 200 h, then 0.008): 2.00 + 3.20 = 5.20, total 25.20;
- and starter's 30.00 minimum: a 4.80 true-up, total 30.00.
droplet:2 learnt, after the close, to have ended on May 16 (360 h): raw 1104 h (-384),
billable 672 + 360 = 1032 h, 288 over: 2.00 + 0.704 = 2.70, an adjustment of 2.70 - 5.20 =
-2.50; with the minimum, the true-up rises by as much (+2.50).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from dagster import DagsterInstance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Numeric, Text, column, text, values

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.pricing.reference import capped_usage
from arcadia_pipeline.pricing.terms import load_caps
from arcadia_pipeline.pricing.usage import (
    billable_usage_of,
    capped_resource_sums,
    usage_by_resource,
)
from arcadia_pipeline_tests.pricing.test_lines import (
    MAY,
    MAY_31,
    MAY_CLOSED,
    STARTER_DROPLET_TIERS,
    STARTER_MINIMUM_FROM_MAY,
    cli_json,
    dep_may_quote,
    droplet_line,
    end_droplet_2_on_may_16,
    run,
    two_droplets_all_may,
)
from arcadia_pipeline_tests.statements.support import (
    adjustments,
    check_results,
    price_month,
    statements,
)
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

D = Decimal
DROPLETS_CAPPED_AT_672 = (
    "INSERT INTO metering.billing_caps (billing_kind, monthly_cap_qty, effective_from)"
    " VALUES ('droplet_hours', 672, '2026-05-01')"
)
# The quote's total, the droplet line's usage, billable, included and overage hours, its
# unit price and amount, and the minimum true-up.
QUOTE_COLUMNS = (
    "q.total_usd, l.usage, l.billable_qty, l.included, l.overage_qty, l.unit_price_usd,"
    " l.overage_usd, q.minimum_true_up_usd"
)


@pytest.mark.parametrize(
    ("terms", "quoted"),
    [
        ((), (D("25.36"), 1488, 1344, 744, 600, D("0.00893"), D("5.36"), 0)),
        ((STARTER_DROPLET_TIERS,), (D("25.20"), 1488, 1344, 744, 600, D("0.008"), D("5.20"), 0)),
        (
            (STARTER_DROPLET_TIERS, STARTER_MINIMUM_FROM_MAY),
            (D("30.00"), 1488, 1344, 744, 600, D("0.008"), D("5.20"), D("4.80")),
        ),
    ],
    ids=["cap", "cap and tiers", "cap, tiers and minimum"],
)
def test_a_capped_month_is_quoted_on_its_billable_hours(engine, terms, quoted):
    two_droplets_all_may(engine)
    for statement in (DROPLETS_CAPPED_AT_672, *terms):
        run(engine, statement)
    result = materialize_range(MAY, MAY_31, instance=DagsterInstance.ephemeral())
    assert all(check_results(result).values())
    assert dep_may_quote(engine, MAY_31, QUOTE_COLUMNS) == quoted
    # The pure reference (the CLI's live quote) caps resource by resource in Python.
    live = cli_json("quote", "dep-may", "--as-of", "2026-05-31")
    line = droplet_line(live)
    assert (live["total_usd"], line["qty"], line["billable_qty"], line["amount_usd"]) == (
        str(quoted[0]), "1488", "1344", str(quoted[6]),
    )  # fmt: skip
    # On the 28th each droplet has run 672 h: nothing is capped yet.
    assert dep_may_quote(engine, date(2026, 5, 28), "l.usage, l.billable_qty") == (1344, 1344)
    assert dep_may_quote(engine, date(2026, 5, 29), "l.usage, l.billable_qty") == (1392, 1344)
    usage = cli_json("usage", "dep-may", "--from", "2026-05-01", "--to", "2026-05-31")
    billable = cli_json(
        "usage", "dep-may", "--from", "2026-05-01", "--to", "2026-05-31", "--billable"
    )
    assert (usage["droplet_hours"], billable["droplet_hours"]) == ("1488", "1344")


def test_a_back_dated_removal_in_a_capped_tiered_month_adjusts_by_the_repriced_difference(
    engine, monkeypatch
):
    two_droplets_all_may(engine)
    for statement in (DROPLETS_CAPPED_AT_672, STARTER_DROPLET_TIERS, STARTER_MINIMUM_FROM_MAY):
        run(engine, statement)
    instance = DagsterInstance.ephemeral()
    materialize_range(MAY, MAY_31, instance=instance)
    assert all(check_results(price_month(MAY, MAY_CLOSED, instance, monkeypatch)).values())
    statement = statements(engine, MAY)["dep-may"]
    hours = statement["lines"]["droplet_hours"]
    assert (statement["minimum_true_up_usd"], statement["total_usd"]) == (D("4.80"), D("30.00"))
    assert (hours["qty"], hours["billable_qty"], hours["overage_qty"], hours["amount_usd"]) == (
        1488, 1344, 600, D("5.20"),
    )  # fmt: skip

    assert all(check_results(end_droplet_2_on_may_16(engine, instance, monkeypatch)).values())
    assert sorted(
        (a["billing_kind"], a["qty_delta"], a["amount_usd"]) for a in adjustments(engine, MAY)
    ) == [("droplet_hours", -384, D("-2.50")), ("minimum_true_up", 0, D("2.50"))]
    shown = cli_json("statement", "dep-may", "--month", "2026-05")
    assert (droplet_line(shown)["qty"], droplet_line(shown)["billable_qty"]) == ("1488", "1344")
    assert (shown["total_usd"], shown["total_with_adjustments_usd"]) == ("30.00", "30.00")


def test_a_resource_that_moved_is_capped_on_each_side(engine):
    # droplet:1 runs for dep-a until May 11 (240 h), then for dep-b (504 h): under a 300 h
    # cap, dep-a bills 240 h and dep-b 300 h. A cap on the resource's whole month would bill
    # 300 h in all.
    add_deployment(engine, "dep-a", "starter")
    add_deployment(engine, "dep-b", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2026, 5, 1), utc(2026, 5, 11))
    add_version(engine, "droplet:1", "dep-b", "droplet", utc(2026, 5, 11))
    run(
        engine,
        "INSERT INTO metering.billing_caps VALUES ('droplet_hours', 300, '2026-05-01')",
    )
    result = materialize_range(MAY, MAY_31, instance=DagsterInstance.ephemeral())
    assert all(check_results(result).values())
    with engine.connect() as connection:
        quoted = connection.execute(
            text(
                "SELECT deployment_id, usage, billable_qty FROM metering.deployment_quote_lines"
                " WHERE as_of_date = '2026-05-31' AND billing_kind = 'droplet_hours'"
                " ORDER BY deployment_id"
            )
        ).all()
    assert [tuple(row) for row in quoted] == [("dep-a", 240, 240), ("dep-b", 504, 300)]
    for deployment, hours in (("dep-a", ("240", "240")), ("dep-b", ("504", "300"))):
        live = cli_json("quote", deployment, "--as-of", "2026-05-31")
        assert (droplet_line(live)["qty"], droplet_line(live)["billable_qty"]) == hours


# ---- the per-resource cap: both SQL forms against the Python reference -------------------

# (deployment, resource, day of May 2026, qty): records of one capped kind.
records = st.lists(
    st.tuples(
        st.sampled_from(["dep-a", "dep-b"]),
        st.sampled_from(["droplet:1", "droplet:2", "droplet:3"]),
        st.integers(min_value=1, max_value=31),
        st.decimals(min_value=0, max_value=24, places=6),
    ),
    max_size=12,
    unique_by=lambda r: r[:3],
)


def resource_rows(rows: list[tuple]):
    """(deployment_id, billing_kind, resource_id, qty) rows as a VALUES list."""
    columns = [column(name, Text) for name in ("deployment_id", "billing_kind", "resource_id")]
    return values(*columns, column("qty", Numeric), name="resource_rows").data(rows)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=records, cap=st.decimals(min_value=D("0.5"), max_value=100, places=3))
def test_capped_usage_sql_agrees_with_the_reference_resource_by_resource(engine, rows, cap):
    first, last = MAY, MAY_31
    with engine.begin() as connection:
        ensure_month_partitions(connection, first, last)
        connection.execute(text("DELETE FROM metering.usage_records"))
        connection.execute(text("DELETE FROM metering.billing_caps"))
        connection.execute(
            text("INSERT INTO metering.billing_caps VALUES ('droplet_hours', :cap, '2026-05-01')"),
            {"cap": cap},
        )
        for deployment, resource, day, qty in rows:
            connection.execute(
                text(
                    "INSERT INTO metering.usage_records (deployment_id, resource_id,"
                    " resource_kind, period_start, granularity, qty)"
                    " VALUES (:d, :r, 'droplet_hours', :p, 'day', :q)"
                ),
                {"d": deployment, "r": resource, "p": utc(2026, 5, day), "q": qty},
            )
        # From the records (statements, the aggregates' check), and from rows per resource
        # (the aggregates' capped_resource_usage, the projection).
        in_sql = {
            (row.deployment_id, row.billing_kind): row.billable_qty
            for row in connection.execute(billable_usage_of(first, last))
        }
        per_resource = [
            (d, kind, r, q)
            for d in ("dep-a", "dep-b")
            for kind, r, q in usage_by_resource(connection, d, first, last)
        ]
        from_resources = {
            (row.deployment_id, row.billing_kind): row.billable_qty
            for row in connection.execute(
                capped_resource_sums(resource_rows(per_resource), first, one_per_resource=True)
            )
        } if per_resource else {}  # fmt: skip
        caps = load_caps(connection, first)
        reference = {
            (deployment, kind): qty
            for deployment in ("dep-a", "dep-b")
            for kind, qty in capped_usage(
                usage_by_resource(connection, deployment, first, last), caps
            ).items()
        }
    assert in_sql == reference
    assert from_resources == reference
