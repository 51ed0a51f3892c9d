"""usage_for_period, the period aggregates and the month-to-date quotes, end to end.

Every test builds a small inventory by hand, materialises all five assets for real (Dagster
in-process, single-run range like a UI backfill) against the real PostgreSQL database, and
compares with expectations worked out here with Decimal from docs/domain.md's plan catalog, never
with the product's own pricing functions.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import Engine, text

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.pricing.reference import month_to_date_quote
from arcadia_pipeline.pricing.usage import usage_for_period
from arcadia_pipeline_tests.conftest import DATA_TABLES
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    materialize_day,
    materialize_range,
    set_granularity,
    utc,
)

D = Decimal

# ---- docs/domain.md's plan catalog, restated as the expectation -------------------------------

KINDS = (
    "droplet_backup_gb_month",
    "droplet_hours",
    "dns_zones",
    "snapshot_gb_month",
    "spaces_gb_month",
)
BASE_USD = {"starter": D("20.00"), "studio": D("50.00"), "agency": D("150.00")}
INCLUDED = {
    "starter": {
        "droplet_hours": D(744),
        "spaces_gb_month": D(50),
        "snapshot_gb_month": D(25),
        "droplet_backup_gb_month": D(25),
        "dns_zones": D(3),
    },
    "studio": {
        "droplet_hours": D(2232),
        "spaces_gb_month": D(250),
        "snapshot_gb_month": D(100),
        "droplet_backup_gb_month": D(100),
        "dns_zones": D(10),
    },
    "agency": {
        "droplet_hours": D(7440),
        "spaces_gb_month": D(1000),
        "snapshot_gb_month": D(500),
        "droplet_backup_gb_month": D(500),
        "dns_zones": D(50),
    },
}
UNIT_PRICE = {
    "droplet_hours": D("0.00893"),
    "spaces_gb_month": D("0.02"),
    "snapshot_gb_month": D("0.06"),
    "droplet_backup_gb_month": D("0.05"),
    "dns_zones": D("0.50"),
}


def expected_line(plan: str, kind: str, usage: Decimal) -> dict:
    """docs/domain.md's rule: round_half_up(max(0, usage - included) * unit_price, 0.01)."""
    included = INCLUDED[plan][kind]
    over = max(D(0), usage - included)
    amount = (over * UNIT_PRICE[kind]).quantize(D("0.01"), rounding=ROUND_HALF_UP)
    return {
        "usage": usage,
        "included": included,
        "overage_qty": over,
        "unit_price_usd": UNIT_PRICE[kind],
        "overage_usd": amount,
    }


def expected_lines(plan: str, usage: dict[str, Decimal]) -> dict[str, dict]:
    """A line for every kind the plan includes (0 usage when unused)."""
    return {kind: expected_line(plan, kind, usage.get(kind, D(0))) for kind in KINDS}


# ---- reading the warehouse -----------------------------------------------------------------


def stored_quote(engine: Engine, deployment_id: str, as_of: date) -> tuple[dict, dict[str, dict]]:
    """The materialised quote row and its lines (by billing kind)."""
    with engine.connect() as connection:
        header = (
            connection.execute(
                text(
                    "SELECT plan_code, period_start, base_usd, overage_usd, total_usd "
                    "FROM metering.deployment_quotes WHERE deployment_id = :d AND as_of_date = :a"
                ),
                {"d": deployment_id, "a": as_of},
            )
            .mappings()
            .one()
        )
        lines = connection.execute(
            text(
                "SELECT billing_kind, usage, included, overage_qty, unit_price_usd, overage_usd "
                "FROM metering.deployment_quote_lines "
                "WHERE deployment_id = :d AND as_of_date = :a"
            ),
            {"d": deployment_id, "a": as_of},
        ).mappings()
        return dict(header), {line["billing_kind"]: _without_kind(line) for line in lines}


def _without_kind(row) -> dict:
    return {key: value for key, value in row.items() if key != "billing_kind"}


def live_quote(engine: Engine, deployment_id: str, as_of: date):
    with engine.connect() as connection:
        return month_to_date_quote(connection, deployment_id, as_of)


def live_lines(quote) -> dict[str, dict]:
    return {
        line.billing_kind: {
            "usage": line.usage,
            "included": line.included,
            "overage_qty": line.overage_qty,
            "unit_price_usd": line.unit_price_usd,
            "overage_usd": line.overage_usd,
        }
        for line in quote.lines
    }


def usage(engine: Engine, deployment_id: str, first: date, last: date) -> dict[str, Decimal]:
    with engine.connect() as connection:
        return usage_for_period(connection, deployment_id, first, last)


def aggregates(engine: Engine, as_of: date) -> dict[tuple[str, str], Decimal]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT deployment_id, billing_kind, qty FROM metering.usage_period_aggregates "
                "WHERE as_of_date = :a"
            ),
            {"a": as_of},
        ).all()
    return {(dep, kind): qty for dep, kind, qty in rows}


def month_to_date_record_sums(engine: Engine, as_of: date) -> dict[tuple[str, str], Decimal]:
    """Straight from usage_records: SUM(qty) from the 1st of as_of's month through as_of."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT deployment_id, resource_kind, sum(qty) FROM metering.usage_records "
                "WHERE period_start >= :first AND period_start < :end "
                "GROUP BY deployment_id, resource_kind"
            ),
            {"first": utc(as_of.year, as_of.month, 1), "end": _midnight(as_of + timedelta(1))},
        ).all()
    return {(dep, kind): qty for dep, kind, qty in rows}


def _midnight(day: date):
    return utc(day.year, day.month, day.day)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# ---- usage_for_period ----------------------------------------------------------------------


def test_usage_for_period_over_a_whole_month_is_exact(engine):
    # February 2025: 28 days, so a month of daily records sums to 672 hours, and storage
    # sums to exactly its size in GB-months (not 99.99999…).
    add_deployment(engine, "dep-feb")
    add_deployment(engine, "dep-off")
    add_deployment(engine, "dep-idle")
    feb, mar = utc(2025, 2, 1), utc(2025, 3, 1)
    add_version(engine, "droplet:1", "dep-feb", "droplet", feb, mar)
    add_version(engine, "spaces:1", "dep-feb", "spaces_bucket", feb, mar, size_gb=100)
    add_version(engine, "snapshot:1", "dep-feb", "snapshot", feb, mar, size_gb="7.5")
    add_version(engine, "backup:1", "dep-feb", "droplet_backup", feb, mar, size_gb="0.3")
    add_version(engine, "dns:1", "dep-feb", "dns_zone", feb, mar)
    # Powered off all month: accrues nothing, but still has (zero) records.
    add_version(engine, "droplet:2", "dep-off", "droplet", feb, mar, status="off")
    materialize_range(date(2025, 2, 1), date(2025, 2, 28))

    assert usage(engine, "dep-feb", date(2025, 2, 1), date(2025, 2, 28)) == {
        "droplet_hours": D(672),
        "spaces_gb_month": D(100),
        "snapshot_gb_month": D("7.5"),
        "droplet_backup_gb_month": D("0.3"),
        "dns_zones": D(1),
    }
    # A one-day range is that day's records only.
    assert usage(engine, "dep-feb", date(2025, 2, 10), date(2025, 2, 10))["droplet_hours"] == 24
    assert usage(engine, "dep-off", date(2025, 2, 1), date(2025, 2, 28)) == {"droplet_hours": 0}
    # A deployment without any resource has no usage at all (no zero-filled kinds).
    assert usage(engine, "dep-idle", date(2025, 2, 1), date(2025, 2, 28)) == {}
    # Values are Decimal, never float.
    for qty in usage(engine, "dep-feb", date(2025, 2, 1), date(2025, 2, 28)).values():
        assert isinstance(qty, Decimal)


def test_usage_for_period_of_half_a_thirty_day_month_and_partial_days(engine):
    # April 2025 has 30 days: a 100 GB bucket for 15 of them is exactly 50 GB-months.
    add_deployment(engine, "dep-apr")
    add_version(
        engine,
        "spaces:1",
        "dep-apr",
        "spaces_bucket",
        utc(2025, 4, 1),
        utc(2025, 4, 16),
        size_gb=100,
    )
    # Created at 18:00, deleted the next day at 09:30: 6 + 9.5 hours.
    add_version(
        engine, "droplet:1", "dep-apr", "droplet", utc(2025, 4, 10, 18), utc(2025, 4, 11, 9, 30)
    )
    materialize_range(date(2025, 4, 1), date(2025, 4, 30))

    whole_month = usage(engine, "dep-apr", date(2025, 4, 1), date(2025, 4, 30))
    assert whole_month == {"spaces_gb_month": D(50), "droplet_hours": D("15.5")}
    assert usage(engine, "dep-apr", date(2025, 4, 1), date(2025, 4, 15))["spaces_gb_month"] == 50
    # The droplet's second day: 00:00 to 09:30.
    assert usage(engine, "dep-apr", date(2025, 4, 11), date(2025, 4, 11))["droplet_hours"] == D(
        "9.5"
    )
    # After the bucket was deleted there is nothing left to meter.
    assert usage(engine, "dep-apr", date(2025, 4, 16), date(2025, 4, 30)) == {}


def test_usage_for_period_spanning_two_months(engine):
    # 868 GB is 28 GB-months a day in January (31 days) and 31 a day in February (28 days),
    # so every partial sum is an exact integer.
    add_deployment(engine, "dep-x")
    add_version(engine, "droplet:1", "dep-x", "droplet", utc(2025, 1, 1))
    add_version(engine, "spaces:1", "dep-x", "spaces_bucket", utc(2025, 1, 1), size_gb=868)
    # One single run over a range that crosses the month boundary.
    materialize_range(date(2025, 1, 15), date(2025, 2, 10))

    # Jan 15..31 is 17 days, Feb 1..10 is 10 days.
    assert usage(engine, "dep-x", date(2025, 1, 15), date(2025, 2, 10)) == {
        "droplet_hours": D(27 * 24),
        "spaces_gb_month": D(17 * 28 + 10 * 31),
    }
    assert usage(engine, "dep-x", date(2025, 1, 31), date(2025, 2, 1)) == {
        "droplet_hours": D(48),
        "spaces_gb_month": D(28 + 31),
    }


def test_usage_for_period_rejects_a_start_after_the_end(engine):
    with engine.connect() as connection, pytest.raises(ValueError):
        usage_for_period(connection, "dep-x", date(2025, 2, 2), date(2025, 2, 1))


# ---- quotes: one materialised January shared by the quote tests ---------------------------

JAN_FIRST, JAN_LAST = date(2025, 1, 1), date(2025, 1, 31)
JAN, FEB = utc(2025, 1, 1), utc(2025, 2, 1)
JANUARY_HOURS = 31 * 24  # 744

# deployment -> (plan, {billing kind: usage for the whole of January}, expected total USD)
JANUARY_QUOTES = {
    # 2 droplets all month: 1488 h, 744 over; 744 * 0.00893 = 6.64392 -> 6.64.
    "st-droplet": ("starter", {"droplet_hours": D(1488)}, D("26.64")),
    # 80 GB: 30 over * 0.02 = 0.60.
    "st-spaces": ("starter", {"spaces_gb_month": D(80)}, D("20.60")),
    # 40 GB: 15 over * 0.06 = 0.90.
    "st-snapshot": ("starter", {"snapshot_gb_month": D(40)}, D("20.90")),
    # 37 GB: 12 over * 0.05 = 0.60.
    "st-backup": ("starter", {"droplet_backup_gb_month": D(37)}, D("20.60")),
    # 5 zones: 2 over * 0.50 = 1.00.
    "st-dns": ("starter", {"dns_zones": D(5)}, D("21.00")),
    # Exactly half a cent on three lines, each rounded half-up (not to even) to 0.01:
    # 50.25 GB -> 0.25 * 0.02; 25.1 GB -> 0.1 * 0.05; 3.01 zones -> 0.01 * 0.50.
    "st-half-cent": (
        "starter",
        {
            "spaces_gb_month": D("50.25"),
            "droplet_backup_gb_month": D("25.1"),
            "dns_zones": D("3.01"),
        },
        D("20.03"),
    ),
    # Exactly the inclusion: no overage.
    "st-exact": ("starter", {"droplet_hours": D(744)}, D("20.00")),
    # Studio and agency well inside their inclusions: the base alone, not prorated.
    "studio-1": ("studio", {"droplet_hours": D(2232), "spaces_gb_month": D(250)}, D("50.00")),
    "agency-1": (
        "agency",
        {"droplet_hours": D(744), "spaces_gb_month": D(1000), "snapshot_gb_month": D(500)},
        D("150.00"),
    ),
}


def _whole_january(engine, resource_id, deployment_id, kind, **kwargs):
    add_version(engine, resource_id, deployment_id, kind, JAN, FEB, **kwargs)


def build_january(engine: Engine) -> None:
    for deployment_id, (plan, _, _) in JANUARY_QUOTES.items():
        add_deployment(engine, deployment_id, plan)
    # A starter deployment with no resources at all this month.
    add_deployment(engine, "st-idle", "starter")
    for n in range(2):
        _whole_january(engine, f"droplet:st-{n}", "st-droplet", "droplet")
    _whole_january(engine, "spaces:st", "st-spaces", "spaces_bucket", size_gb=80)
    _whole_january(engine, "snapshot:st", "st-snapshot", "snapshot", size_gb=40)
    _whole_january(engine, "backup:st", "st-backup", "droplet_backup", size_gb=37)
    for n in range(5):
        _whole_january(engine, f"dns:st-{n}", "st-dns", "dns_zone")
    _whole_january(engine, "spaces:half", "st-half-cent", "spaces_bucket", size_gb="50.25")
    _whole_january(engine, "backup:half", "st-half-cent", "droplet_backup", size_gb="25.1")
    for n in range(3):
        _whole_january(engine, f"dns:half-{n}", "st-half-cent", "dns_zone")
    # A fourth zone for 26784 s = 7:26:24, i.e. 0.01 of January's 2,678,400 seconds.
    add_version(engine, "dns:half-3", "st-half-cent", "dns_zone", JAN, utc(2025, 1, 1, 7, 26, 24))
    _whole_january(engine, "droplet:exact", "st-exact", "droplet")
    for n in range(3):
        _whole_january(engine, f"droplet:studio-{n}", "studio-1", "droplet")
    _whole_january(engine, "spaces:studio", "studio-1", "spaces_bucket", size_gb=250)
    _whole_january(engine, "droplet:agency", "agency-1", "droplet")
    _whole_january(engine, "spaces:agency", "agency-1", "spaces_bucket", size_gb=1000)
    _whole_january(engine, "snapshot:agency", "agency-1", "snapshot", size_gb=500)


@pytest.fixture(scope="module")
def january(database_url):
    """January 2025 built and materialised once (one single run over the month)."""
    engine = make_engine(database_url)
    with engine.begin() as connection:  # the same clean state as the `engine` fixture
        connection.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)}"))
        connection.execute(
            text("UPDATE metering.metering_config SET granularity = 'day', retention_days = 400")
        )
    build_january(engine)
    materialize_range(JAN_FIRST, JAN_LAST)
    return engine


@pytest.mark.parametrize("deployment_id", list(JANUARY_QUOTES))
def test_month_end_quote_materialised_and_live(january, deployment_id):
    plan, january_usage, total = JANUARY_QUOTES[deployment_id]
    lines = expected_lines(plan, january_usage)
    base = BASE_USD[plan]
    assert total == base + sum(line["overage_usd"] for line in lines.values())  # self-check

    # The usage the quote starts from.
    assert usage(january, deployment_id, JAN_FIRST, JAN_LAST) == january_usage

    header, stored_lines = stored_quote(january, deployment_id, JAN_LAST)
    assert header == {
        "plan_code": plan,
        "period_start": JAN_FIRST,
        "base_usd": base,
        "overage_usd": total - base,
        "total_usd": total,
    }
    assert stored_lines == lines

    quote = live_quote(january, deployment_id, JAN_LAST)
    assert (quote.deployment_id, quote.plan_code) == (deployment_id, plan)
    assert (quote.period_start, quote.as_of) == (JAN_FIRST, JAN_LAST)
    assert quote.base_usd == base
    assert live_lines(quote) == lines
    assert quote.total_usd == total
    # Money is to the cent.
    assert quote.total_usd.as_tuple().exponent == -2
    for line in quote.lines:
        assert line.overage_usd.as_tuple().exponent == -2


def test_each_kind_has_its_own_overage_line(january):
    # Hand-computed amounts, one line per billing kind over its starter inclusion.
    cases = {
        ("st-droplet", "droplet_hours"): (D(744), D("6.64")),
        ("st-spaces", "spaces_gb_month"): (D(30), D("0.60")),
        ("st-snapshot", "snapshot_gb_month"): (D(15), D("0.90")),
        ("st-backup", "droplet_backup_gb_month"): (D(12), D("0.60")),
        ("st-dns", "dns_zones"): (D(2), D("1.00")),
        # Half a cent exactly: half-up gives a cent where banker's rounding would give 0.00.
        ("st-half-cent", "spaces_gb_month"): (D("0.25"), D("0.01")),
        ("st-half-cent", "droplet_backup_gb_month"): (D("0.1"), D("0.01")),
        ("st-half-cent", "dns_zones"): (D("0.01"), D("0.01")),
    }
    for (deployment_id, kind), (over, amount) in cases.items():
        _, lines = stored_quote(january, deployment_id, JAN_LAST)
        assert (lines[kind]["overage_qty"], lines[kind]["overage_usd"]) == (over, amount), kind
        others = [line["overage_usd"] for k, line in lines.items() if k != kind]
        if deployment_id != "st-half-cent":
            assert others == [D("0.00")] * 4


def test_quote_is_month_to_date(january):
    # Two droplets: 720 h through the 15th (inside 744), 768 h through the 16th (24 over:
    # 24 * 0.00893 = 0.21432 -> 0.21).
    for as_of, hours, total in [
        (date(2025, 1, 15), D(720), D("20.00")),
        (date(2025, 1, 16), D(768), D("20.21")),
    ]:
        header, lines = stored_quote(january, "st-droplet", as_of)
        assert lines["droplet_hours"]["usage"] == hours
        assert header["total_usd"] == total
        assert live_quote(january, "st-droplet", as_of).total_usd == total


def test_a_deployment_without_usage_is_still_quoted_its_base(january):
    # The base is prorated by existence, not by usage: a starter deployment that existed all
    # January owes 20.00 for it even if it ran nothing. The live quote says so; the
    # materialised quotes (what finance reads) must too.
    quote = live_quote(january, "st-idle", JAN_LAST)
    assert quote.total_usd == D("20.00")
    assert live_lines(quote) == expected_lines("starter", {})
    with january.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT total_usd FROM metering.deployment_quotes "
                "WHERE deployment_id = 'st-idle' AND as_of_date = :a"
            ),
            {"a": JAN_LAST},
        ).scalar_one_or_none()
    assert stored == D("20.00")


def test_every_materialised_quote_is_its_base_plus_its_lines_and_matches_the_live_one(january):
    for as_of in days(JAN_FIRST, JAN_LAST):
        for deployment_id in JANUARY_QUOTES:
            header, lines = stored_quote(january, deployment_id, as_of)
            line_sum = sum((line["overage_usd"] for line in lines.values()), D(0))
            assert header["overage_usd"] == line_sum
            assert header["total_usd"] == header["base_usd"] + line_sum
            quote = live_quote(january, deployment_id, as_of)
            assert live_lines(quote) == lines, (deployment_id, as_of)
            assert quote.total_usd == header["total_usd"], (deployment_id, as_of)


# ---- usage_period_aggregates -----------------------------------------------------------------


def test_aggregates_are_month_to_date_sums_that_reset_on_the_first(engine):
    add_deployment(engine, "dep-a")
    add_deployment(engine, "dep-b", "studio")
    # dep-a: a droplet powered off from Jan 30 12:00 to Feb 2 00:00, and an 868 GB bucket
    # (28 GB-months a day in January, 31 a day in February).
    add_version(engine, "droplet:a", "dep-a", "droplet", JAN, utc(2025, 1, 30, 12))
    add_version(
        engine, "droplet:a", "dep-a", "droplet", utc(2025, 1, 30, 12), utc(2025, 2, 2), status="off"
    )
    add_version(engine, "droplet:a", "dep-a", "droplet", utc(2025, 2, 2))
    add_version(engine, "spaces:a", "dep-a", "spaces_bucket", JAN, size_gb=868)
    # dep-b: a zone created mid-month, so its aggregate starts later.
    add_version(engine, "dns:b", "dep-b", "dns_zone", utc(2025, 1, 20))
    # Two runs: the second's early-January aggregates must include the first run's records.
    materialize_range(date(2025, 1, 1), date(2025, 1, 20))
    materialize_range(date(2025, 1, 21), date(2025, 2, 3))

    for as_of in days(date(2025, 1, 1), date(2025, 2, 3)):
        assert aggregates(engine, as_of) == month_to_date_record_sums(engine, as_of), as_of

    a = {as_of: aggregates(engine, as_of) for as_of in days(date(2025, 1, 29), date(2025, 2, 3))}
    # Jan 31: 29 days and 12 hours of a running droplet; the bucket's full month.
    assert a[date(2025, 1, 31)][("dep-a", "droplet_hours")] == 29 * 24 + 12
    assert a[date(2025, 1, 31)][("dep-a", "spaces_gb_month")] == 868
    # Feb 1: a new billing period; the droplet is off (a zero, not a missing row).
    assert a[date(2025, 2, 1)][("dep-a", "droplet_hours")] == 0
    assert a[date(2025, 2, 1)][("dep-a", "spaces_gb_month")] == 31
    assert a[date(2025, 2, 3)][("dep-a", "droplet_hours")] == 48
    assert a[date(2025, 2, 3)][("dep-a", "spaces_gb_month")] == 93
    assert ("dep-b", "dns_zones") not in aggregates(engine, date(2025, 1, 19))
    # 12 of 31 days of a zone: not a finite decimal, but exact to well beyond 12 digits.
    assert abs(a[date(2025, 1, 31)][("dep-b", "dns_zones")] - D(12) / D(31)) < D("1e-12")
    # The rows carry their billing period.
    with engine.connect() as connection:
        periods = connection.execute(
            text(
                "SELECT DISTINCT as_of_date, period_start FROM metering.usage_period_aggregates "
                "WHERE as_of_date IN ('2025-01-31', '2025-02-01')"
            )
        ).all()
    assert sorted(periods) == [
        (date(2025, 1, 31), date(2025, 1, 1)),
        (date(2025, 2, 1), date(2025, 2, 1)),
    ]


def test_aggregates_and_quotes_follow_a_rerun_after_a_source_correction(engine):
    add_deployment(engine, "dep-c")
    add_version(engine, "droplet:c1", "dep-c", "droplet", JAN, FEB)
    add_version(engine, "droplet:c2", "dep-c", "droplet", JAN, FEB)
    materialize_range(JAN_FIRST, JAN_LAST)
    assert stored_quote(engine, "dep-c", JAN_LAST)[0]["total_usd"] == D("26.64")

    # Late-arriving fact: a third droplet ran all of Jan 31. Re-running that one day updates
    # its records, its aggregate (+24 h) and its quote (768 h over: 768 * 0.00893 = 6.85824).
    add_version(engine, "droplet:c3", "dep-c", "droplet", utc(2025, 1, 31), FEB)
    materialize_day(JAN_LAST)
    assert aggregates(engine, JAN_LAST) == {("dep-c", "droplet_hours"): D(1512)}
    assert stored_quote(engine, "dep-c", JAN_LAST)[0]["total_usd"] == D("26.86")
    assert live_quote(engine, "dep-c", JAN_LAST).total_usd == D("26.86")

    # Correction: droplet c2 was in fact deleted on Jan 20 at 00:00. Re-running the days it
    # touches (Jan 20..31) takes 12 days of 24 h out of every aggregate and quote from Jan 20.
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE arcadia.resource_versions SET valid_to = :t, recorded_at = now() "
                "WHERE resource_id = 'droplet:c2'"
            ),
            {"t": utc(2025, 1, 20)},
        )
    materialize_range(date(2025, 1, 20), JAN_LAST)

    # Jan 19 (not re-run, unaffected): 2 droplets * 19 days.
    assert aggregates(engine, date(2025, 1, 19)) == {("dep-c", "droplet_hours"): D(912)}
    # Jan 20: 912 + 24.
    assert aggregates(engine, date(2025, 1, 20)) == {("dep-c", "droplet_hours"): D(936)}
    # Jan 31: c1 744 + c2 19 days (456) + c3 24 = 1224 h: 480 over * 0.00893 = 4.2864 -> 4.29.
    assert aggregates(engine, JAN_LAST) == {("dep-c", "droplet_hours"): D(1224)}
    header, lines = stored_quote(engine, "dep-c", JAN_LAST)
    assert lines["droplet_hours"]["overage_qty"] == 480
    assert lines["droplet_hours"]["overage_usd"] == D("4.29")
    assert header["total_usd"] == D("24.29")
    assert live_quote(engine, "dep-c", JAN_LAST).total_usd == D("24.29")
    for as_of in days(JAN_FIRST, JAN_LAST):
        assert aggregates(engine, as_of) == month_to_date_record_sums(engine, as_of), as_of


def test_hourly_records_give_the_same_aggregates_and_quotes(engine):
    # Fine-grained (hourly) metering changes the records, not the money: 2 droplets and an
    # 80 GB bucket all of January cost the same as with daily records.
    set_granularity(engine, "droplet_hours", "hour")
    set_granularity(engine, "spaces_gb_month", "hour")
    add_deployment(engine, "dep-h")
    add_version(engine, "droplet:h1", "dep-h", "droplet", JAN, FEB)
    add_version(engine, "droplet:h2", "dep-h", "droplet", JAN, FEB)
    add_version(engine, "spaces:h", "dep-h", "spaces_bucket", JAN, FEB, size_gb=80)
    materialize_range(JAN_FIRST, JAN_LAST)

    assert aggregates(engine, JAN_LAST) == {
        ("dep-h", "droplet_hours"): D(1488),
        ("dep-h", "spaces_gb_month"): D(80),
    }
    assert aggregates(engine, date(2025, 1, 10)) == month_to_date_record_sums(
        engine, date(2025, 1, 10)
    )
    header, lines = stored_quote(engine, "dep-h", JAN_LAST)
    assert lines == expected_lines("starter", {"droplet_hours": D(1488), "spaces_gb_month": D(80)})
    # 6.64 for the droplets + 0.60 for the bucket.
    assert header["total_usd"] == D("27.24")
    assert live_quote(engine, "dep-h", JAN_LAST).total_usd == D("27.24")
