"""The accrual model (docs/domain.md "Accrual model"): the pure reference `accrued_qty`, its
exactness properties, and its SQL twin `accrued_qty_sql` evaluated on a real PostgreSQL.

Everything downstream is SUM(qty), so these are the invariants billing rests on: whole
periods give round numbers (24 h, size GB-months, 1 zone), pieces of a period add up to the
period exactly (no drift, whatever the cut points), and the SQL computes the very same
Decimal as the reference.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import DateTime, Numeric, Text, literal, select, text

from arcadia_pipeline.catalog.kinds import STATUSES, Accrual
from arcadia_pipeline.metering.accrual import (
    QTY_SCALE,
    accrued_qty,
    accrued_qty_sql,
    seconds_in_month,
)
from arcadia_pipeline_tests.conftest import DATA_TABLES
from arcadia_pipeline_tests.shipped_catalog import DEFAULT_KIND_MAP
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    materialize_range,
    set_granularity,
    usage_rows,
    utc,
)

HOURS, SIZE, UNIT = Accrual.ACTIVE_HOURS, Accrual.SIZE_MONTH, Accrual.UNIT_MONTH
TSTZ = DateTime(timezone=True)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
ULP = Decimal(1).scaleb(-QTY_SCALE)  # one unit in the last place of a qty (1e-18)


def days_in_month(t: date) -> int:
    return calendar.monthrange(t.year, t.month)[1]


def cut(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at the UTC multiples of `step` (a day or an hour) it crosses."""
    epoch = utc(2000, 1, 1)
    boundary = epoch + ((start - epoch) // step) * step
    pieces = []
    while boundary < end:
        a, b = max(start, boundary), min(end, boundary + step)
        if a < b:
            pieces.append((a, b))
        boundary += step
    return pieces


def assert_well_formed(qty: Decimal) -> None:
    """A qty is exact, non-negative and fits numeric(38, 18)."""
    assert isinstance(qty, Decimal)
    assert qty >= 0
    assert qty.as_tuple().exponent >= -QTY_SCALE


# ---- 1. unit examples (the docs/domain.md sentences), also replayed against SQL below ---------


def case(case_id, accrual, size_gb, start, end, expected, status="active"):
    size = None if size_gb is None else Decimal(str(size_gb))
    return pytest.param(accrual, status, size, start, end, Decimal(str(expected)), id=case_id)


# (accrual, status, size_gb, start, end, expected qty)
UNIT_CASES = [
    case("droplet-whole-day", HOURS, None, utc(2025, 3, 10), utc(2025, 3, 11), 24),
    case("droplet-off", HOURS, None, utc(2025, 3, 10), utc(2025, 3, 11), 0, status="off"),
    case("droplet-created-18h", HOURS, None, utc(2025, 3, 10, 18), utc(2025, 3, 11), 6),
    case("droplet-off-09:30", HOURS, None, utc(2025, 3, 10), utc(2025, 3, 10, 9, 30), "9.5"),
    case("droplet-last-day", HOURS, None, utc(2025, 1, 31), utc(2025, 2, 1), 24),
    # size = days in month, so a whole day is exactly 1 GB-month
    case("storage-feb-2024-leap", SIZE, 29, utc(2024, 2, 10), utc(2024, 2, 11), 1),
    case("storage-feb-2025", SIZE, 28, utc(2025, 2, 10), utc(2025, 2, 11), 1),
    case("storage-apr", SIZE, 30, utc(2025, 4, 10), utc(2025, 4, 11), 1),
    case("storage-jan", SIZE, 31, utc(2025, 1, 10), utc(2025, 1, 11), 1),
    # 100/28 = 3.571428571428571428|57...: the 18th digit rounds up
    case(
        "storage-100gb-feb", SIZE, 100, utc(2025, 2, 10), utc(2025, 2, 11), "3.571428571428571429"
    ),
    case("storage-whole-month", SIZE, "2.5", utc(2025, 4, 1), utc(2025, 5, 1), "2.5"),
    # The accrual table has no status condition for storage: an 'off' droplet's backup costs.
    case("storage-off", SIZE, 30, utc(2025, 4, 10), utc(2025, 4, 11), 1, status="off"),
    case("dns-day-of-30", UNIT, None, utc(2025, 4, 10), utc(2025, 4, 11), "0.033333333333333333"),
    case("dns-leap-february", UNIT, None, utc(2024, 2, 1), utc(2024, 3, 1), 1),
    case("empty-interval", HOURS, None, utc(2025, 3, 10, 12), utc(2025, 3, 10, 12), 0),
]


@pytest.mark.parametrize(("accrual", "status", "size_gb", "start", "end", "expected"), UNIT_CASES)
def test_accrued_qty_examples(accrual, status, size_gb, start, end, expected):
    qty = accrued_qty(accrual, status, size_gb, start, end)
    assert qty == expected
    assert_well_formed(qty)


@pytest.mark.parametrize(
    ("first_day", "days"),
    [
        (date(2024, 2, 1), 29),
        (date(2025, 2, 1), 28),
        (date(2025, 4, 1), 30),
        (date(2025, 1, 1), 31),
    ],
)
def test_whole_day_is_size_over_days_in_month(first_day, days):
    # Exact fractions: size/days and 1/days are repeating decimals, rounded to 1e-18 half-up.
    d0 = utc(first_day.year, first_day.month, 15)
    size = Decimal("123.456")
    storage = accrued_qty(SIZE, "active", size, d0, d0 + DAY)
    zones = accrued_qty(UNIT, "active", None, d0, d0 + DAY)
    assert abs(Fraction(storage) - Fraction(size) / days) <= Fraction(ULP)
    assert abs(Fraction(zones) - Fraction(1, days)) <= Fraction(ULP)
    assert seconds_in_month(d0) == days * 86400


def test_interval_crossing_a_month_boundary_raises():
    with pytest.raises(ValueError, match="one UTC month"):
        accrued_qty(HOURS, "active", None, utc(2025, 1, 31, 12), utc(2025, 2, 1, 12))
    # Ending exactly at the next month's midnight is still inside the month.
    assert accrued_qty(HOURS, "active", None, utc(2025, 1, 31, 12), utc(2025, 2, 1)) == 12


def test_storage_without_size_raises():
    with pytest.raises(ValueError, match="size_gb"):
        accrued_qty(SIZE, "active", None, utc(2025, 1, 1), utc(2025, 1, 2))


def test_default_kind_map_is_the_design_table(engine):
    with engine.connect() as connection:
        shipped = connection.execute(
            text("SELECT inventory_kind, billing_kind, accrual FROM metering.kind_map")
        ).all()
    assert {(kind, billing_kind, Accrual(accrual)) for kind, billing_kind, accrual in shipped} == {
        ("droplet", "droplet_hours", HOURS),
        ("spaces_bucket", "spaces_gb_month", SIZE),
        ("snapshot", "snapshot_gb_month", SIZE),
        ("droplet_backup", "droplet_backup_gb_month", SIZE),
        ("dns_zone", "dns_zones", UNIT),
    }


# ---- 2. exactness properties of the pure reference ---------------------------------------


@st.composite
def month_starts(draw) -> datetime:
    return utc(draw(st.integers(2000, 2100)), draw(st.integers(1, 12)), 1)


# GB sizes as the source stores them: numeric with up to 3 decimals.
sizes = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
accruals = st.sampled_from(list(Accrual))
statuses = st.sampled_from(STATUSES)

# Februaries of a leap century year, a leap year and a non-leap century year.
LEAP_EDGES = [utc(2000, 2, 1), utc(2024, 2, 1), utc(2100, 2, 1)]


@given(m0=month_starts(), size=sizes)
@example(m0=LEAP_EDGES[0], size=Decimal("0.001")).via("leap century")
@example(m0=LEAP_EDGES[1], size=Decimal("999999.999")).via("leap year")
@example(m0=LEAP_EDGES[2], size=Decimal("7")).via("non-leap century")
def test_a_stable_resource_sums_to_exact_month_totals(m0, size):
    # Daily records of a resource that exists all month add up to round numbers, not to
    # days x rounded(size/days): this is what makes a monthly invoice match the plan.
    days = days_in_month(m0)
    day_pieces = cut(m0, m0 + timedelta(days=days), DAY)
    assert len(day_pieces) == days

    def month_total(accrual, status, size_gb):
        return sum(accrued_qty(accrual, status, size_gb, a, b) for a, b in day_pieces)

    assert month_total(SIZE, "active", size) == size
    assert month_total(UNIT, "active", None) == 1
    assert month_total(HOURS, "active", None) == 24 * days
    assert month_total(HOURS, "off", None) == 0


@given(
    m0=month_starts(),
    day_index=st.integers(0, 30),
    accrual=accruals,
    status=statuses,
    size=sizes,
    offsets=st.tuples(st.integers(0, 86400 * 10**6), st.integers(0, 86400 * 10**6)),
)
def test_hourly_pieces_sum_to_the_daily_piece(m0, day_index, accrual, status, size, offsets):
    # Flipping a kind to hourly granularity must not change what a day costs.
    d0 = m0 + timedelta(days=min(day_index, days_in_month(m0) - 1))
    whole_day = accrued_qty(accrual, status, size, d0, d0 + DAY)
    hours = cut(d0, d0 + DAY, HOUR)
    assert len(hours) == 24
    assert sum(accrued_qty(accrual, status, size, a, b) for a, b in hours) == whole_day
    # The same for a partial day (a version starting/ending at any microsecond).
    a, b = (d0 + timedelta(microseconds=us) for us in sorted(offsets))
    piece = accrued_qty(accrual, status, size, a, b)
    assert sum(accrued_qty(accrual, status, size, x, y) for x, y in cut(a, b, HOUR)) == piece


@st.composite
def version_histories(draw):
    """A resource's versions inside one month: random cut points (whole seconds or with
    microseconds, the month's first and last instant included), random status and size."""
    m0 = draw(month_starts())
    month_us = seconds_in_month(m0) * 10**6
    step = draw(st.sampled_from([10**6, 1]))  # whole seconds, or microsecond timestamps
    points = draw(st.lists(st.integers(0, month_us // step), min_size=2, max_size=8, unique=True))
    instants = [m0 + timedelta(microseconds=p * step) for p in sorted(points)]
    accrual = draw(accruals)
    versions = [
        (draw(statuses), draw(sizes), valid_from, valid_to)
        for valid_from, valid_to in pairwise(instants)
    ]
    return accrual, versions


@given(history=version_histories())
def test_version_histories_do_not_drift(history):
    accrual, versions = history
    total_by_days = total_by_hours = total_whole = Decimal(0)
    exact = Fraction(0)
    for status, size, valid_from, valid_to in versions:
        whole = accrued_qty(accrual, status, size, valid_from, valid_to)
        by_days = by_hours = Decimal(0)
        for a, b in cut(valid_from, valid_to, DAY):
            day_qty = accrued_qty(accrual, status, size, a, b)
            assert_well_formed(day_qty)
            by_days += day_qty
            for x, y in cut(a, b, HOUR):
                hour_qty = accrued_qty(accrual, status, size, x, y)
                assert_well_formed(hour_qty)
                by_hours += hour_qty
        # Telescoping: the per-day (and per-hour) records of a version add up to the version.
        assert by_days == whole
        assert by_hours == whole
        total_by_days += by_days
        total_by_hours += by_hours
        total_whole += whole
        w = 0 if accrual is HOURS and status == "off" else (size if accrual is SIZE else 1)
        unit = 3600 if accrual is HOURS else seconds_in_month(valid_from)
        exact += (
            Fraction(w)
            * Fraction((valid_to - valid_from) // timedelta(microseconds=1))
            / (unit * 10**6)
        )
    assert total_by_days == total_by_hours == total_whole
    # No drift: the error against the exact rational is one rounding per version, at most.
    assert abs(Fraction(total_whole) - exact) <= len(versions) * Fraction(ULP)


# ---- 3. the SQL twin equals the reference, on PostgreSQL ---------------------------------


def sql_quantities(engine, cases, month_known: bool = False) -> list[Decimal]:
    """accrued_qty_sql of every case, all in one SELECT (one column per case); month_known:
    with the month given as a constant, as a day's records are metered."""
    columns = [
        accrued_qty_sql(
            literal(accrual.value, Text),
            literal(status, Text),
            literal(size_gb, Numeric),
            literal(start, TSTZ),
            literal(end, TSTZ),
            month=start.date() if month_known else None,
        ).label(f"q{n}")
        for n, (accrual, status, size_gb, start, end) in enumerate(cases)
    ]
    with engine.connect() as connection:
        return list(connection.execute(select(*columns)).one())


def test_sessions_are_utc(engine):
    # accrued_qty_sql measures the month as `m0 + interval '1 month' - m0`, which PostgreSQL
    # computes in the session time zone: its correctness rests on the engine's UTC sessions.
    with engine.connect() as connection:
        assert connection.execute(text("SHOW timezone")).scalar_one() == "UTC"


@pytest.mark.parametrize(("accrual", "status", "size_gb", "start", "end", "expected"), UNIT_CASES)
def test_sql_examples(engine, accrual, status, size_gb, start, end, expected):
    [qty] = sql_quantities(engine, [(accrual, status, size_gb, start, end)])
    assert qty == expected
    assert qty.as_tuple().exponent == -QTY_SCALE  # numeric(38, 18), as usage_records.qty


@st.composite
def accrual_cases(draw):
    """(accrual, status, size_gb, start, end) with start <= end inside one UTC month."""
    m0 = draw(month_starts())
    month_us = seconds_in_month(m0) * 10**6
    step = draw(st.sampled_from([10**6, 1]))
    a, b = sorted(draw(st.lists(st.integers(0, month_us // step), min_size=2, max_size=2)))
    accrual = draw(accruals)
    size = draw(sizes if accrual is SIZE else st.none() | sizes)
    start, end = (m0 + timedelta(microseconds=x * step) for x in (a, b))
    return accrual, draw(statuses), size, start, end


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(accrual_cases(), min_size=1, max_size=25))
def test_sql_equals_reference(engine, cases):
    expected = [accrued_qty(*case) for case in cases]
    assert sql_quantities(engine, cases) == expected
    assert sql_quantities(engine, cases, month_known=True) == expected


# ---- end to end: usage_records == the reference over the source history -----------------

KINDS = {m.inventory_kind: m for m in DEFAULT_KIND_MAP}
DEPLOYMENTS = ("d1", "d2")


@st.composite
def source_scenarios(draw):
    """A window of 1-3 days (may cross a month end), each billing kind daily or hourly, and
    up to 4 resources whose version histories start before and run past the window, with
    gaps, re-attribution between deployments, unattributed versions and open ends."""
    first = draw(st.dates(date(2025, 1, 2), date(2026, 10, 1)))
    if draw(st.booleans()):  # often end a month, where the month length changes
        first = first.replace(day=days_in_month(first) - draw(st.integers(0, 1)))
    last = first + timedelta(days=draw(st.integers(0, 2)))
    granularity = {m.billing_kind: draw(st.sampled_from(["day", "hour"])) for m in DEFAULT_KIND_MAP}
    lo = utc(first.year, first.month, first.day) - DAY
    span_us = int((last - first).days + 4) * 86400 * 10**6
    resources = []
    for n in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(KINDS)))
        step = draw(st.sampled_from([10**6, 1]))
        points = draw(
            st.lists(st.integers(0, span_us // step), min_size=2, max_size=6, unique=True)
        )
        instants = [lo + timedelta(microseconds=p * step) for p in sorted(points)]
        versions = []
        for valid_from, valid_to in pairwise(instants):
            if versions and draw(st.booleans()) and draw(st.booleans()):
                continue  # a gap in the history: the resource did not exist then
            is_storage = KINDS[kind].accrual is SIZE
            versions.append(
                {
                    "deployment_id": draw(st.sampled_from([*DEPLOYMENTS, None])),
                    "status": draw(statuses),
                    "size_gb": draw(sizes if is_storage else st.none() | sizes),
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                }
            )
        if draw(st.booleans()):
            versions[-1]["valid_to"] = None  # still current
        resources.append((f"{kind}:{n}", kind, versions))
    return first, last, granularity, resources


def expected_records(first, last, granularity, resources) -> dict:
    """What usage_records must hold, from the pure reference: per (deployment, resource,
    kind, period, granularity) the sum of the versions clipped to the period."""
    records = defaultdict(Decimal)
    for resource_id, kind, versions in resources:
        mapping = KINDS[kind]
        grain = granularity[mapping.billing_kind]
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            d0 = utc(day.year, day.month, day.day)
            for v in versions:
                if v["deployment_id"] is None:
                    continue  # unattributed: never metered
                start = max(v["valid_from"], d0)
                end = min(v["valid_to"] or d0 + DAY, d0 + DAY)
                for a, b in cut(start, end, DAY if grain == "day" else HOUR):
                    period = d0 if grain == "day" else a.replace(minute=0, second=0, microsecond=0)
                    key = (v["deployment_id"], resource_id, mapping.billing_kind, period, grain)
                    records[key] += accrued_qty(mapping.accrual, v["status"], v["size_gb"], a, b)
    return dict(records)


# No shrinking: each example is a Dagster run, and shrinking a failure would take minutes.
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(scenario=source_scenarios())
def test_usage_records_equal_the_reference(engine, scenario):
    first, last, granularity, resources = scenario
    with engine.begin() as connection:  # the fixture cleans once per test, not per example
        connection.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)}"))
    for deployment_id in DEPLOYMENTS:
        add_deployment(engine, deployment_id)
    for billing_kind, grain in granularity.items():
        set_granularity(engine, billing_kind, grain)
    for resource_id, kind, versions in resources:
        for v in versions:
            add_version(
                engine,
                resource_id,
                v["deployment_id"],
                kind,
                v["valid_from"],
                v["valid_to"],
                status=v["status"],
                size_gb=v["size_gb"],
            )

    materialize_range(first, last, assets=("resource_inventory", "usage_records"))

    key = ("deployment_id", "resource_id", "resource_kind", "period_start", "granularity")
    actual = {tuple(row[k] for k in key): row["qty"] for row in usage_rows(engine)}
    # Same keys (so 0-qty records of off droplets exist, unattributed ones do not) and the
    # same exact Decimals.
    assert actual == expected_records(first, last, granularity, resources)
