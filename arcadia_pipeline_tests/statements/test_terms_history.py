"""Every term a bill depends on has a history (issue 20): May 2026 metered and closed through
Dagster on real PostgreSQL, then the catalog and the kind map change from June, a deployment
back-dated to May 1 is metered after the close, and May is re-priced on May's terms.

Catalog (docs/domain.md): starter 20.00 with 744 droplet hours and 50 Spaces GB-months
included; droplet hours 0.00893/h, Spaces 0.02/GB-month. May has 31 days, June 30.

The story, in stages (each re-price captured on its own):
1. May closes at 2026-06-04 03:00 (after the 3-day grace) with dep-may: a droplet, a 60 GB
   bucket (10 GB-months over: 0.20) and a 100 GB `volume`, a kind known but not billable.
2. From June, `volume` is billed (volume_gb_month, 0.10/GB-month) and `spaces_bucket` is not;
   May re-metered and re-priced: wrong would be +10.00 and -0.20, right is nothing.
3. From June, starter costs 25.00 with 500 droplet hours and droplet hours cost 0.01;
   dep-late, a starter deployment with a droplet back-dated to May 1 (recorded on June 9),
   is metered: right is base +20.00 and 744 droplet hours for 0.00 (wrong: +25.00, +2.44).
4. June's terms change again (base 30, droplet 0.02, volume 0.20): May re-priced, nothing.
5. June 1-10 metered; June's volume price changes again (0.20 -> 0.30): those days' quotes
   are stale, the catch-up sensor refreshes them and they take the new price.
6. June's volume is then metered by the hour: the days' usage records are stale and the
   catch-up re-meters them (and what follows them) in hours.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from dagster import DagsterInstance, build_sensor_context
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from arcadia_pipeline.cli import main as cli_main
from arcadia_pipeline.days.staleness import stale_days
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.defs.daily import missed_days as catchup
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline_tests.conftest import CATALOG_TABLES, DATA_TABLES
from arcadia_pipeline_tests.statements.support import adjustments, price_month, statements
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    hold_clock,
    materialize_range,
    requested_days,
    run_requested,
    sensor,
    utc,
)

D = Decimal
MAY, JUNE = date(2026, 5, 1), date(2026, 6, 1)
MAY_31, JUNE_10 = date(2026, 5, 31), date(2026, 6, 10)
MAY_CLOSED = datetime(2026, 6, 4, 3, tzinfo=UTC)  # after the 3-day grace period
APRIL = utc(2026, 4, 1)
# The kinds the shipped starter plan includes: a closed statement has a line for each.
STARTER_KINDS = {
    "droplet_hours",
    "spaces_gb_month",
    "snapshot_gb_month",
    "droplet_backup_gb_month",
    "dns_zones",
}

# What the trigger says to any change reaching May once it has closed.
REFUSED = (
    "would change the terms of closed months (closed through 2026-05): "
    "a change names a billing month from 2026-06 on"
)


@dataclass
class Refresh:
    """A change of June's terms after June 1-10 were metered, and the catch-up that follows."""

    stale: dict  # stale_days after the change
    requests: list  # (first day, last day, assets) of each run the sensor asked for
    succeeded: bool  # every requested run succeeded
    stale_after: dict  # stale_days after those runs


@dataclass
class Story:
    closed: dict = field(default_factory=dict)  # deployment -> May's closed statement
    refusals: dict = field(default_factory=dict)  # attempt -> the error it raised (or None)
    may_kinds: dict = field(default_factory=dict)  # stage -> {billing kind: May's records}
    after_kind_map: list = field(default_factory=list)  # May's adjustments after stage 2
    after_late: list = field(default_factory=list)  # ... after stage 3
    after_second_change: list = field(default_factory=list)  # ... after stage 4
    june_kinds: dict = field(default_factory=dict)  # {billing kind: June 1-10 records}
    june_kinds_hourly: dict = field(default_factory=dict)  # ... after stage 6
    cli: dict | None = None  # `statement dep-late --month 2026-05`, as printed
    stale_before: dict = field(default_factory=dict)  # stale_days before the price change
    price_change: Refresh | None = None  # stage 5
    granularity_change: Refresh | None = None  # stage 6
    volume_quotes: dict = field(default_factory=dict)  # stage -> June 10's volume quote line


def execute(engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


def refusal(engine, sql: str) -> IntegrityError | None:
    """The error a change of the terms raises, None when it is accepted (it is then undone:
    the statement runs in a transaction rolled back)."""
    with engine.connect() as connection:
        try:
            connection.execute(text(sql))
        except IntegrityError as error:
            return error
        finally:
            connection.rollback()
    return None


def records_per_kind(engine, first: date, last: date) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT resource_kind, count(*) FROM metering.usage_records "
                "WHERE period_start >= :f AND period_start < CAST(:t AS date) + 1 GROUP BY 1"
            ),
            {"f": first, "t": last},
        ).all()
    return dict(rows)


def quote_line(engine, deployment: str, day: date, kind: str) -> dict | None:
    with engine.connect() as connection:
        row = (
            connection.execute(
                text(
                    "SELECT usage, included, unit_price_usd, overage_usd "
                    "FROM metering.deployment_quote_lines "
                    "WHERE deployment_id = :d AND as_of_date = :day AND billing_kind = :k"
                ),
                {"d": deployment, "day": day, "k": kind},
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def stale(engine) -> dict[str, list[date]]:
    """Per daily step, its stale days (the steps with none left out)."""
    with engine.connect() as connection:
        found = stale_days(connection, DAILY_FLOW)
    return {asset: sorted(days) for asset, days in found.items() if days}


def restore_catalog(engine) -> None:
    """Data and statements emptied, the shipped catalog back (as the `engine` fixture does):
    a closed month left by another module would refuse the reset."""
    catalog = [table.fullname for table in CATALOG_TABLES]
    execute(engine, f"TRUNCATE {', '.join([*DATA_TABLES, *catalog])}")
    for table in CATALOG_TABLES:
        execute(engine, f"INSERT INTO {table.fullname} SELECT * FROM shipped.{table.name}")


def close_may(engine, instance, monkeypatch, story: Story) -> None:
    # A volume is a kind the source knows and May does not bill.
    execute(
        engine,
        "INSERT INTO metering.kind_map (inventory_kind, billing_kind, accrual, effective_from) "
        "VALUES ('volume', NULL, NULL, DATE '1970-01-01')",
    )
    add_deployment(engine, "dep-may", "starter")
    add_version(engine, "droplet:may", "dep-may", "droplet", APRIL)
    add_version(engine, "spaces:may", "dep-may", "spaces_bucket", APRIL, size_gb=60)
    add_version(engine, "volume:may", "dep-may", "volume", APRIL, size_gb=100)
    materialize_range(MAY, MAY_31, instance=instance)
    price_month(MAY, MAY_CLOSED, instance, monkeypatch)
    story.closed = statements(engine, MAY)
    story.may_kinds["closed"] = records_per_kind(engine, MAY, MAY_31)


def try_to_change_may(engine, story: Story) -> None:
    """Each way an operator could reach May's terms after its close."""
    attempts = {
        "update the 1970 base": (
            "UPDATE metering.plans SET base_usd = 25 WHERE plan_code = 'starter'",
        ),
        "insert a base from May": (
            "INSERT INTO metering.plans (plan_code, base_usd, effective_from) "
            "VALUES ('starter', 25, DATE '2026-05-01')",
        ),
        "move the 1970 price to June": (
            "UPDATE metering.overage_tiers SET unit_price_usd = 0.01, "
            "effective_from = DATE '2026-06-01' "
            "WHERE billing_kind = 'droplet_hours' AND up_to_qty IS NULL",
        ),
        "delete the 1970 inclusion": (
            "DELETE FROM metering.plan_items "
            "WHERE plan_code = 'starter' AND billing_kind = 'droplet_hours'",
        ),
        "map volume from May": (
            "INSERT INTO metering.kind_map (inventory_kind, billing_kind, accrual, "
            "effective_from) VALUES ('volume', 'volume_gb_month', 'size_month', "
            "DATE '2026-05-01')",
        ),
    }
    story.refusals = {name: refusal(engine, *sql) for name, sql in attempts.items()}


def change_the_kind_map_from_june(engine) -> None:
    for sql in (
        "INSERT INTO metering.kind_map (inventory_kind, billing_kind, accrual, effective_from) "
        "VALUES ('volume', 'volume_gb_month', 'size_month', DATE '2026-06-01'), "
        "('spaces_bucket', NULL, NULL, DATE '2026-06-01')",
        "INSERT INTO metering.metering_config (billing_kind, granularity, retention_days, "
        "effective_from) VALUES ('volume_gb_month', 'day', 400, DATE '2026-06-01')",
        "INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty, "
        "unit_price_usd, effective_from) SELECT DISTINCT plan_code, 'volume_gb_month', "
        "NULL::numeric, 0.10, DATE '2026-06-01' FROM metering.plans",
    ):
        execute(engine, sql)


def change_the_catalog_from_june(engine) -> None:
    for sql in (
        "INSERT INTO metering.plans (plan_code, base_usd, effective_from) "
        "VALUES ('starter', 25.00, DATE '2026-06-01')",
        "INSERT INTO metering.plan_items (plan_code, billing_kind, included_qty, effective_from) "
        "VALUES ('starter', 'droplet_hours', 500, DATE '2026-06-01')",
        "INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty, "
        "unit_price_usd, effective_from) SELECT DISTINCT plan_code, 'droplet_hours', "
        "NULL::numeric, 0.01, DATE '2026-06-01' FROM metering.plans",
    ):
        execute(engine, sql)


def change_june_again(engine) -> None:
    """June is open: its rows may be updated in place."""
    for sql in (
        "UPDATE metering.plans SET base_usd = 30.00 "
        "WHERE plan_code = 'starter' AND effective_from = DATE '2026-06-01'",
        "UPDATE metering.overage_tiers SET unit_price_usd = 0.02 WHERE billing_kind = "
        "'droplet_hours' AND up_to_qty IS NULL AND effective_from = DATE '2026-06-01'",
        "UPDATE metering.overage_tiers SET unit_price_usd = 0.20 WHERE billing_kind = "
        "'volume_gb_month' AND up_to_qty IS NULL AND effective_from = DATE '2026-06-01'",
    ):
        execute(engine, sql)


def statement_printed(deployment: str, month: str) -> dict | None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli_main(["statement", deployment, "--month", month])
    return json.loads(out.getvalue()) if code == 0 else None


def catch_up(engine, database_url, instance, change: str) -> Refresh:
    """A change of June's terms, then one evaluation of the catch-up sensor (stale days
    only) and its runs, as the daemon launches them."""
    execute(engine, change)
    stale_now = stale(engine)
    context = build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(database_url=database_url)}
    )
    requests = list(sensor("missed_days_sensor")(context) or [])
    asked = [
        (
            *requested_days(request),
            sorted(key.to_user_string() for key in request.asset_selection or ()),
        )
        for request in requests
    ]
    succeeded = bool(requests) and all(
        run_requested(request, instance).success for request in requests
    )
    return Refresh(stale_now, asked, succeeded, stale(engine))


def refresh_june(engine, database_url, instance, monkeypatch, story: Story) -> None:
    """June 1-10 metered, then June's volume price changes (stage 5) and its volume is
    metered by the hour (stage 6): the catch-up sensor refreshes the days metered before."""
    materialize_range(JUNE, JUNE_10, instance=instance)
    story.june_kinds = records_per_kind(engine, JUNE, JUNE_10)
    story.volume_quotes["before"] = quote_line(engine, "dep-may", JUNE_10, "volume_gb_month")
    story.stale_before = stale(engine)
    hold_clock(monkeypatch, datetime(2026, 6, 11, 12, tzinfo=UTC))
    monkeypatch.setattr(catchup, "days_due", lambda *_: [])  # only what is stale

    story.price_change = catch_up(
        engine,
        database_url,
        instance,
        "UPDATE metering.overage_tiers SET unit_price_usd = 0.30 WHERE billing_kind = "
        "'volume_gb_month' AND up_to_qty IS NULL AND effective_from = DATE '2026-06-01'",
    )
    story.volume_quotes["refreshed"] = quote_line(engine, "dep-may", JUNE_10, "volume_gb_month")

    story.granularity_change = catch_up(
        engine,
        database_url,
        instance,
        "UPDATE metering.metering_config SET granularity = 'hour' "
        "WHERE billing_kind = 'volume_gb_month' AND effective_from = DATE '2026-06-01'",
    )
    story.june_kinds_hourly = records_per_kind(engine, JUNE, JUNE_10)
    story.volume_quotes["hourly"] = quote_line(engine, "dep-may", JUNE_10, "volume_gb_month")


@pytest.fixture(scope="module")
def story(database_url) -> Story:
    engine = make_engine(database_url)
    restore_catalog(engine)
    instance, monkeypatch, state = DagsterInstance.ephemeral(), pytest.MonkeyPatch(), Story()
    try:
        close_may(engine, instance, monkeypatch, state)  # stage 1
        try_to_change_may(engine, state)

        change_the_kind_map_from_june(engine)  # stage 2
        materialize_range(MAY, MAY_31, instance=instance)
        state.may_kinds["kind map changed"] = records_per_kind(engine, MAY, MAY_31)
        price_month(MAY, utc(2026, 6, 10, 3), instance, monkeypatch)
        state.after_kind_map = adjustments(engine, MAY)

        change_the_catalog_from_june(engine)  # stage 3
        add_deployment(engine, "dep-late", "starter", utc(2026, 5, 1), recorded_at=utc(2026, 6, 9))
        add_version(engine, "droplet:late", "dep-late", "droplet", utc(2026, 5, 1),
                    recorded_at=utc(2026, 6, 9))  # fmt: skip
        materialize_range(MAY, MAY_31, instance=instance)
        price_month(MAY, utc(2026, 6, 11, 3), instance, monkeypatch)
        state.after_late = adjustments(engine, MAY)
        state.cli = statement_printed("dep-late", "2026-05")

        change_june_again(engine)  # stage 4
        price_month(MAY, utc(2026, 6, 11, 4), instance, monkeypatch)
        state.after_second_change = adjustments(engine, MAY)

        refresh_june(engine, database_url, instance, monkeypatch, state)  # stages 5, 6
        yield state
    finally:
        monkeypatch.undo()
        engine.dispose()


def kinds_and_amounts(rows: list[dict]) -> list[tuple]:
    return [(a["deployment_id"], a["billing_kind"], a["qty_delta"], a["amount_usd"]) for a in rows]


# ---- stage 1: May closes, and its terms are frozen ------------------------------------------


def test_may_closes_on_the_shipped_catalog(story):
    statement = story.closed["dep-may"]
    assert (statement["plan_code"], statement["status"]) == ("starter", "closed")
    assert statement["base_usd"] == D("20.00")
    droplet, spaces = statement["lines"]["droplet_hours"], statement["lines"]["spaces_gb_month"]
    assert (droplet["qty"], droplet["included_qty"], droplet["amount_usd"]) == (744, 744, 0)
    assert spaces["amount_usd"] == D("0.20")  # 60 GB all May, 50 included: 10 x 0.02
    # A line per kind starter includes, none for the volume.
    assert set(statement["lines"]) == STARTER_KINDS
    assert statement["total_usd"] == D("20.20")


@pytest.mark.parametrize(
    "attempt",
    [
        "update the 1970 base",
        "insert a base from May",
        "move the 1970 price to June",
        "delete the 1970 inclusion",
        "map volume from May",
    ],
)
def test_a_change_reaching_the_closed_month_is_refused_naming_it(story, attempt):
    error = story.refusals[attempt]
    assert error is not None, f"{attempt} was accepted"
    assert REFUSED in str(error.orig)


def test_the_refusals_name_the_table_and_the_month_the_row_is_in_effect_from(story):
    assert str(story.refusals["update the 1970 base"].orig).startswith(
        "metering.plans: a row in effect from 1970-01 would change"
    )
    assert str(story.refusals["insert a base from May"].orig).startswith(
        "metering.plans: a row in effect from 2026-05 would change"
    )
    # Moving a row to June still changes what May reads: its old month is the one named.
    assert str(story.refusals["move the 1970 price to June"].orig).startswith(
        "metering.overage_tiers: a row in effect from 1970-01 would change"
    )


# ---- stage 2: the kind map changes from June ------------------------------------------------


def test_a_kind_map_change_from_june_leaves_mays_records_as_they_were(story):
    # Still May's spaces records and no volume ones (31 daily records each, or none).
    assert story.may_kinds["closed"] == {"droplet_hours": 31, "spaces_gb_month": 31}
    assert story.may_kinds["kind map changed"] == story.may_kinds["closed"]


def test_a_kind_map_change_from_june_moves_no_money_in_may(story):
    # Wrong: volume_gb_month +10.00 (100 GB-months x 0.10) and spaces_gb_month -0.20.
    assert kinds_and_amounts(story.after_kind_map) == []


def test_june_days_are_metered_on_junes_kind_map(story):
    # A volume billed from June, a bucket no longer: daily records of two droplets, a volume.
    assert story.june_kinds == {"droplet_hours": 20, "volume_gb_month": 10}


# ---- stage 3: a deployment first billed after the close -------------------------------------


def test_a_deployment_back_dated_into_the_closed_month_is_priced_on_mays_terms(story):
    # Wrong (June's catalog): base +25.00, droplet (744 - 500) x 0.01 = +2.44.
    assert kinds_and_amounts(story.after_late) == [
        ("dep-late", "base", 1, D("20.00")),
        ("dep-late", "droplet_hours", 744, D("0.00")),
    ]


def test_a_catalog_change_of_an_open_month_re_prices_the_closed_month_to_nothing(story):
    # Wrong: base +5.00 and droplet +2.44 more, with qty_delta 0.
    assert kinds_and_amounts(story.after_second_change) == kinds_and_amounts(story.after_late)


def test_the_statement_of_a_deployment_billed_by_adjustments_alone(story):
    printed = story.cli
    assert printed is not None
    assert (printed["deployment_id"], printed["month"], printed["status"]) == (
        "dep-late",
        "2026-05",
        "closed",
    )
    assert printed["adjustments"] == [
        {
            "billing_kind": "base",
            "qty_delta": "1",
            "amount_usd": "20.00",
            "created_at": "2026-06-11T03:00:00+00:00",
        },
        {
            "billing_kind": "droplet_hours",
            "qty_delta": "744",
            "amount_usd": "0.00",
            "created_at": "2026-06-11T03:00:00+00:00",
        },
    ]
    assert printed["total_with_adjustments_usd"] == "20.00"
    # What it was billed on (the issue: plan_code null): starter all May, on May's terms.
    # It had no statement when May closed, so no lines: its adjustments are its lines.
    assert printed["plan_code"] == "starter"
    assert printed["plan_periods"] == [
        {
            "plan_code": "starter",
            "valid_from": "2026-05-01T00:00:00+00:00",
            "valid_to": "2026-06-01T00:00:00+00:00",
            "base_usd": "20.00",
        }
    ]
    assert (printed["lines"], printed["total_usd"]) == ([], "0.00")


# ---- stage 5: a terms change of the open month ----------------------------------------------


JUNE_1_TO_10 = [date(2026, 6, day) for day in range(1, 11)]


def test_a_price_change_of_the_open_month_makes_its_quotes_stale(story):
    assert story.stale_before == {}
    # Each step is judged by the terms it reads (flow.py): a price, the quotes and their
    # projections alone; May's days, before the month the change is in effect from, are not.
    assert story.price_change.stale == {
        "deployment_quotes": JUNE_1_TO_10,
        "projected_quotes": JUNE_1_TO_10,
    }


def test_the_catch_up_sensor_refreshes_the_stale_quotes_on_the_new_price(story):
    refresh = story.price_change
    assert refresh.requests == [
        ("2026-06-01", "2026-06-10", ["deployment_quotes", "projected_quotes"])
    ]
    assert refresh.succeeded
    assert refresh.stale_after == {}
    # 100 GB for 10 of June's 30 days: 33.33… GB-months, none included.
    before, after = story.volume_quotes["before"], story.volume_quotes["refreshed"]
    assert (before["unit_price_usd"], before["overage_usd"]) == (D("0.20"), D("6.67"))
    assert (after["unit_price_usd"], after["overage_usd"]) == (D("0.30"), D("10.00"))
    assert after["usage"] == before["usage"]


def test_a_granularity_change_of_the_open_month_re_meters_its_days_by_the_hour(story):
    refresh = story.granularity_change
    assert refresh.stale == {"usage_records": JUNE_1_TO_10}  # the step reading metering_config
    everything_after = [
        "deployment_quotes", "projected_quotes", "usage_period_aggregates", "usage_records",
    ]  # fmt: skip
    assert refresh.requests == [("2026-06-01", "2026-06-10", everything_after)]
    assert refresh.succeeded
    assert refresh.stale_after == {}
    # The volume's days in hours from now on; the droplets' still by the day.
    assert story.june_kinds_hourly == {"droplet_hours": 20, "volume_gb_month": 240}
    assert story.volume_quotes["hourly"] == story.volume_quotes["refreshed"]  # same GB-months
