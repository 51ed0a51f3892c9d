"""Deployments have a history (issue: plan changes, sign-ups and churn billed as they
happened): May 2026 metered and closed through Dagster with one deployment per event, then a
correction of another deployment re-prices the closed month; and a customer deleted from the
source in June.

Catalog (docs/domain.md): starter 20.00 with 744 droplet hours and 50 Spaces GB-months,
studio 50.00 with 2232 droplet hours, agency 150.00; droplet hours 0.00893, Spaces 0.02.
May has 31 days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from dagster import DagsterInstance, build_sensor_context
from sqlalchemy import text

from arcadia_pipeline.cli import main as cli_main
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.defs.daily import missed_days as catchup
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline_tests.conftest import DATA_TABLES
from arcadia_pipeline_tests.statements.support import adjustments, price_month, statements
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    failure_messages,
    materialize_range,
    run_requested,
    sensor,
    utc,
    written_rows,
)

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

D = Decimal
MAY, JUNE = date(2026, 5, 1), date(2026, 6, 1)
MAY_CLOSED = datetime(2026, 6, 4, 3, tzinfo=UTC)  # after the 3-day grace period
REPRICED = datetime(2026, 6, 10, 3, tzinfo=UTC)
APRIL = utc(2026, 4, 1)
ZERO = D("0.00")


@dataclass
class May:
    closed: dict = field(default_factory=dict)  # deployment -> statement with lines
    quotes: dict = field(default_factory=dict)  # (deployment, day) -> total_usd
    adjustments: list = field(default_factory=list)  # after the correction


def quote_totals(engine) -> dict[tuple[str, date], Decimal]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT deployment_id, as_of_date, total_usd FROM metering.deployment_quotes")
        ).all()
    return {(d, day): total for d, day, total in rows}


def set_up_may(engine) -> None:
    # Upgraded to agency at 2026-06-01 00:30, before the 01:10 tick meters May 31 (below).
    add_deployment(engine, "dep-upgrade", "starter")
    add_version(engine, "droplet:up", "dep-upgrade", "droplet", APRIL)
    add_version(engine, "spaces:up", "dep-upgrade", "spaces_bucket", APRIL, size_gb=60)
    # Signed up in November on agency: nothing in May.
    add_deployment(engine, "dep-november", "agency", utc(2026, 11, 3, 9))
    # Signed up on the 21st, no resources.
    add_deployment(engine, "dep-signup", "starter", utc(2026, 5, 21))
    # Churned on the 15th with its droplet.
    add_deployment(engine, "dep-churn", "starter", valid_to=utc(2026, 5, 15))
    add_version(engine, "droplet:churn", "dep-churn", "droplet", APRIL, utc(2026, 5, 15))
    # Renamed mid-month on one plan, and its twin never renamed.
    add_deployment(engine, "dep-rename", "starter", valid_to=utc(2026, 5, 10, 12), name="Old")
    add_deployment(engine, "dep-rename", "starter", utc(2026, 5, 10, 12), name="New")
    add_version(engine, "droplet:rename", "dep-rename", "droplet", APRIL)
    add_deployment(engine, "dep-plain", "starter")
    add_version(engine, "droplet:plain", "dep-plain", "droplet", APRIL)
    # Starter until 05-16 00:00, then studio; three droplets all May.
    add_deployment(engine, "dep-change", "starter", valid_to=utc(2026, 5, 16))
    add_deployment(engine, "dep-change", "studio", utc(2026, 5, 16))
    for n in range(3):
        add_version(engine, f"droplet:change-{n}", "dep-change", "droplet", APRIL)


def record_the_upgrade(engine) -> None:
    """dep-upgrade moves to agency at 2026-06-01 00:30, as the app records it then."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE arcadia.deployment_versions SET valid_to = '2026-06-01 00:30Z' "
                "WHERE deployment_id = 'dep-upgrade'"
            )
        )
    add_deployment(engine, "dep-upgrade", "agency", utc(2026, 6, 1, 0, 30))


def period(plan_code: str, valid_from: str, valid_to: str, base_usd: str) -> dict:
    """A statement's plan period as its JSON has it (times in UTC, money a string)."""
    return {
        "plan_code": plan_code,
        "valid_from": f"{valid_from}T00:00:00+00:00",
        "valid_to": f"{valid_to}T00:00:00+00:00",
        "base_usd": base_usd,
    }


@pytest.fixture(scope="module")
def may(database_url) -> May:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        tables = DATA_TABLES
        connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
    set_up_may(engine)
    instance, monkeypatch, state = DagsterInstance.ephemeral(), pytest.MonkeyPatch(), May()
    try:
        materialize_range(MAY, date(2026, 5, 30), instance=instance)
        record_the_upgrade(engine)
        materialize_range(date(2026, 5, 31), date(2026, 5, 31), instance=instance)
        state.quotes = quote_totals(engine)
        price_month(MAY, MAY_CLOSED, instance, monkeypatch)
        state.closed = statements(engine, MAY)

        # A correction of another deployment re-meters May 30-31 of the closed month: a
        # 1,000 GB bucket of dep-plain, back-dated.
        add_version(engine, "spaces:late", "dep-plain", "spaces_bucket", utc(2026, 5, 30),
                    utc(2026, 6, 1), size_gb=1000, recorded_at=utc(2026, 6, 9))  # fmt: skip
        materialize_range(date(2026, 5, 30), date(2026, 5, 31), instance=instance)
        price_month(MAY, REPRICED, instance, monkeypatch)
        state.adjustments = adjustments(engine, MAY)
        yield state
    finally:
        monkeypatch.undo()
        engine.dispose()


def test_an_upgrade_at_0030_on_the_first_leaves_may_on_starter(may):
    statement = may.closed["dep-upgrade"]
    assert (statement["plan_code"], statement["status"]) == ("starter", "closed")
    assert statement["base_usd"] == D("20.00")
    assert statement["lines"]["spaces_gb_month"]["amount_usd"] == D("0.20")  # 10 GB-months over
    assert statement["total_usd"] == D("20.20")
    assert statement["plan_periods"] == [period("starter", "2026-05-01", "2026-06-01", "20.00")]


def test_a_sign_up_in_november_has_nothing_in_may_even_after_may_is_re_metered(may):
    assert "dep-november" not in may.closed
    assert not [key for key in may.quotes if key[0] == "dep-november"]
    # The correction of dep-plain adjusted its Spaces line alone: no base fee for anyone.
    # 1000 GB x 2/31 = 64.516… GB-months, 14.516… over 50: x 0.02 = 0.29.
    assert [(a["deployment_id"], a["billing_kind"], a["amount_usd"]) for a in may.adjustments] == [
        ("dep-plain", "spaces_gb_month", D("0.29"))
    ]
    assert may.adjustments[0]["qty_delta"] == D("64.516129032258064516")


def test_a_sign_up_on_the_21st_is_billed_eleven_days_of_its_plan(may):
    statement = may.closed["dep-signup"]
    assert statement["base_usd"] == D("7.10")  # 20 x 11/31 = 7.0967…
    assert statement["total_usd"] == D("7.10")
    lines = statement["lines"]
    assert lines["droplet_hours"]["included_qty"] == 264  # 744 x 11/31
    assert lines["spaces_gb_month"]["included_qty"] == D("17.741935483870967742")  # 50 x 11/31
    assert statement["plan_periods"][0]["valid_from"] == "2026-05-21T00:00:00+00:00"
    # Not quoted before it existed; from its first day, quoted its month's base to date.
    assert ("dep-signup", date(2026, 5, 20)) not in may.quotes
    assert may.quotes["dep-signup", date(2026, 5, 21)] == D("7.10")
    assert may.quotes["dep-signup", date(2026, 5, 31)] == D("7.10")


def test_churn_on_the_15th_is_billed_its_part_of_the_month_and_quoted_to_the_end(may):
    statement = may.closed["dep-churn"]
    assert statement["base_usd"] == D("9.03")  # 20 x 14/31 = 9.032…
    droplet = statement["lines"]["droplet_hours"]
    assert (droplet["qty"], droplet["included_qty"], droplet["amount_usd"]) == (336, 336, ZERO)
    assert statement["total_usd"] == D("9.03")
    assert statement["plan_periods"][0]["valid_to"] == "2026-05-15T00:00:00+00:00"
    # Its known end counts from the first day; after it churned it is still quoted May to date.
    assert may.quotes["dep-churn", date(2026, 5, 1)] == D("9.03")
    assert may.quotes["dep-churn", date(2026, 5, 31)] == D("9.03")


def test_a_rename_changes_nothing_billed(may):
    renamed, plain = may.closed["dep-rename"], may.closed["dep-plain"]
    assert renamed["plan_periods"] == plain["plan_periods"]  # one starter period
    assert renamed["base_usd"] == plain["base_usd"] == D("20.00")
    assert {k: line["amount_usd"] for k, line in renamed["lines"].items()} == {
        k: line["amount_usd"] for k, line in plain["lines"].items()
    }


def test_a_plan_change_on_the_16th_moves_the_money_by_the_shares(may):
    statement = may.closed["dep-change"]
    assert statement["plan_code"] == "studio"  # the plan at the month's end
    assert statement["base_usd"] == D("35.48")  # 20 x 15/31 + 50 x 16/31 = 35.4838…
    droplet = statement["lines"]["droplet_hours"]
    assert droplet["qty"] == 2232
    assert droplet["included_qty"] == 1512  # 744 x 15/31 + 2232 x 16/31
    assert (droplet["overage_qty"], droplet["amount_usd"]) == (720, D("6.43"))
    assert statement["total_usd"] == D("41.91")
    # The periods' bases telescope: their sum is the statement's base to the cent.
    assert statement["plan_periods"] == [
        period("starter", "2026-05-01", "2026-05-16", "9.68"),
        period("studio", "2026-05-16", "2026-06-01", "25.80"),
    ]


def test_a_deployment_on_one_plan_all_month_is_billed_as_before(may):
    statement = may.closed["dep-plain"]
    assert (statement["base_usd"], statement["total_usd"]) == (D("20.00"), D("20.00"))
    assert may.quotes["dep-plain", date(2026, 5, 1)] == D("20.00")


# ---- a customer deleted from the source ------------------------------------------------------


def test_a_deleted_customer_stays_billed_for_its_days_and_re_metering_them_names_it(
    engine, monkeypatch, capsys
):
    add_deployment(engine, "dep-gone", "starter")
    add_version(engine, "droplet:gone", "dep-gone", "droplet", utc(2026, 6, 1), utc(2026, 6, 5))
    add_deployment(engine, "dep-stay", "starter")
    add_version(engine, "droplet:stay", "dep-stay", "droplet", APRIL)
    instance = DagsterInstance.ephemeral()
    materialize_range(JUNE, date(2026, 6, 10), instance=instance)
    with engine.begin() as connection:  # deleted from the source on 06-11
        connection.execute(
            text("DELETE FROM arcadia.deployment_versions WHERE deployment_id = 'dep-gone'")
        )
    materialize_range(date(2026, 6, 11), date(2026, 6, 30), instance=instance)

    quotes = quote_totals(engine)
    assert quotes["dep-stay", date(2026, 6, 30)] == D("20.00")  # every deployment is quoted
    assert quotes["dep-gone", date(2026, 6, 30)] == D("6.67")  # 20 x 10/30: the days it existed
    price_month(JUNE, datetime(2026, 7, 4, 3, tzinfo=UTC), instance, monkeypatch)
    closed = statements(engine, JUNE)
    assert closed["dep-gone"]["status"] == "closed"
    assert closed["dep-gone"]["base_usd"] == D("6.67")
    assert closed["dep-gone"]["lines"]["droplet_hours"]["qty"] == 96

    # Re-metering its days fails naming the vanished deployment and its resource, not the
    # catalog, and writes nothing.
    before = written_rows(engine)
    failed = materialize_range(JUNE, date(2026, 6, 5), instance=instance, raise_on_error=False)
    assert not failed.success
    message = failure_messages(failed)
    assert "resource droplet:gone" in message and "deployment 'dep-gone'" in message
    assert "arcadia.deployment_versions" in message
    assert "metering.plans" not in message
    assert written_rows(engine) == before

    # The CLI answers for it alike: its usage, its quote and its statement.
    for args in (
        ["usage", "dep-gone", "--from", "2026-06-01", "--to", "2026-06-30"],
        ["quote", "dep-gone", "--as-of", "2026-06-30"],
        ["statement", "dep-gone", "--month", "2026-06"],
    ):
        assert cli_main(args) == 0, (args, capsys.readouterr().err)
        printed = json.loads(capsys.readouterr().out)
        if args[0] == "usage":
            assert printed["droplet_hours"] == "96"
        else:
            assert printed["deployment_id"] == "dep-gone"
            assert printed["base_usd"] == "6.67"


# ---- any order of metering -------------------------------------------------------------------


def test_the_month_follows_the_history_whatever_order_its_days_are_metered_in(
    engine, database_url, monkeypatch
):
    set_up_may(engine)
    instance = DagsterInstance.ephemeral()
    record_the_upgrade(engine)  # already in the source: the days are metered after it
    for first, last in [(31, 31), (16, 30), (1, 15), (10, 12)]:
        materialize_range(date(2026, 5, first), date(2026, 5, last), instance=instance)
    expected = {
        "dep-upgrade": D("20.20"),
        "dep-signup": D("7.10"),
        "dep-churn": D("9.03"),
        "dep-rename": D("20.00"),
        "dep-plain": D("20.00"),
        "dep-change": D("41.91"),
    }
    # The drafts read the days' snapshots and records, whatever order wrote them.
    price_month(MAY, datetime(2026, 6, 2, tzinfo=UTC), instance, monkeypatch)
    assert {dep: s["total_usd"] for dep, s in statements(engine, MAY).items()} == expected

    # The month-to-date quotes of the days after those metered last read older snapshots:
    # the catch-up sensor refreshes them, then the month closes on the same figures.
    monkeypatch.setattr(catchup, "days_due", lambda *_: [])  # only what is stale
    context = build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(database_url=database_url)}
    )
    for request in sensor("missed_days_sensor")(context):
        assert run_requested(request, instance).success
    quotes = quote_totals(engine)
    assert {dep: quotes[dep, date(2026, 5, 31)] for dep in expected} == expected
    price_month(MAY, MAY_CLOSED, instance, monkeypatch)
    closed = statements(engine, MAY)
    assert {dep: s["total_usd"] for dep, s in closed.items()} == expected
    assert {s["status"] for s in closed.values()} == {"closed"}
