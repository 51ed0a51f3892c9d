"""Retention has a history (issue 20): what it removed is recorded, and a month some of whose
records it removed is never priced or metered again, whatever retention_days say later; a
month that has not closed keeps its records until it has.

Once for the module, through Dagster on real PostgreSQL: May 2026 metered and closed (one
starter deployment, two droplets all month); droplet_hours retention lowered to 62 days from
June; June metered, its close never run; a correction into May re-metered (its re-pricing
not run either); the retention job on 2026-08-05 removes May's droplet records and waits for
June; retention raised back to 400 from August. Then the sensor is asked (June closes late,
as it asks), May is re-priced by hand, and a correction into May is attempted.

Catalog (docs/domain.md): starter 20.00 with 744 droplet hours and 50 Spaces GB-months;
droplet hours 0.00893, Spaces 0.02. May has 31 days, June 30.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from dagster import DagsterInstance, SkipReason
from sqlalchemy import text

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.defs.retention.retention_job import retention_job
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline_tests.conftest import CATALOG_TABLES, DATA_TABLES
from arcadia_pipeline_tests.statements.support import (
    adjustments,
    price_month,
    run_requested,
    sensor_requests,
    statements,
)
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    failure_messages,
    hold_clock,
    materialize_range,
    utc,
    written_rows,
)

D = Decimal
MAY, JUNE = date(2026, 5, 1), date(2026, 6, 1)
APRIL = utc(2026, 4, 1)
MAY_CLOSED = utc(2026, 6, 4, 3)  # after the 3-day grace period
CORRECTED = utc(2026, 7, 20, 12)  # a bucket back-dated into May, re-metered then
RETENTION_RAN = utc(2026, 8, 5, 3, 30)  # the retention schedule's tick
LATER = utc(2026, 8, 6, 12)  # retention raised back; May re-priced, the sensor asked
CORRECTION_RECORDED = utc(2026, 8, 7)
CORRECTION_CHECKED = utc(2026, 8, 8, 12)


@dataclass
class History:
    may_closed: dict = field(default_factory=dict)  # deployment -> statement with lines
    may_droplet_records: int = 0  # before retention ran
    june_droplet_records: int = 0  # before retention ran
    requests_before: list = field(default_factory=list)  # the sensor's before retention ran
    retention: object = None  # the retention job's run
    retention_logs: list = field(default_factory=list)
    removals: list = field(default_factory=list)
    records_after: dict = field(default_factory=dict)  # (month, kind) -> records left
    requests_after: list = field(default_factory=list)
    reprice: object = None
    may_after: dict = field(default_factory=dict)
    may_adjustments: list = field(default_factory=list)
    june_closed: dict = field(default_factory=dict)
    correction: object = None
    written_before_correction: dict = field(default_factory=dict)
    written_after_correction: dict = field(default_factory=dict)
    requests_after_correction: object = None


def droplet_records(engine, month: date) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM metering.usage_records WHERE resource_kind = "
                "'droplet_hours' AND date_trunc('month', period_start AT TIME ZONE 'UTC') = :m"
            ),
            {"m": month},
        ).scalar_one()


def records_by_month_and_kind(engine) -> dict[tuple[date, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT date_trunc('month', period_start AT TIME ZONE 'UTC')::date, "
                "resource_kind, count(*) FROM metering.usage_records GROUP BY 1, 2"
            )
        ).all()
    return {(month, kind): count for month, kind, count in rows}


def keep_droplet_hours(engine, days: int, effective_from: date) -> None:
    """A new metering_config row from an open month: a closed month's terms never change."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.metering_config (billing_kind, granularity, "
                "retention_days, effective_from) VALUES ('droplet_hours', 'day', :d, :f)"
            ),
            {"d": days, "f": effective_from},
        )


def reset(engine) -> None:
    """No test rows, and the shipped catalog (a test before may have changed it)."""
    with engine.begin() as connection:
        catalog = [table.fullname for table in CATALOG_TABLES]
        connection.execute(text(f"TRUNCATE {', '.join([*DATA_TABLES, *catalog])}"))
        for table in CATALOG_TABLES:
            connection.execute(
                text(f"INSERT INTO {table.fullname} SELECT * FROM shipped.{table.name}")
            )


def run_retention(database_url: str, instance: DagsterInstance, monkeypatch):
    hold_clock(monkeypatch, RETENTION_RAN)
    return retention_job.execute_in_process(
        resources={"warehouse": WarehouseResource(database_url=database_url)},
        instance=instance,
    )


def partitions(requests) -> list[str]:
    return [] if isinstance(requests, SkipReason) else [r.partition_key for r in requests]


@pytest.fixture(scope="module")
def history(database_url) -> History:
    engine = make_engine(database_url)
    reset(engine)
    add_deployment(engine, "dep-may", "starter")
    for n in (1, 2):
        add_version(engine, f"droplet:{n}", "dep-may", "droplet", APRIL)
    instance, monkeypatch, state = DagsterInstance.ephemeral(), pytest.MonkeyPatch(), History()
    try:
        materialize_range(MAY, date(2026, 5, 31), instance=instance)
        price_month(MAY, MAY_CLOSED, instance, monkeypatch)
        state.may_closed = statements(engine, MAY)

        # In June the operator keeps droplet hours 62 days (from June: May's terms are closed).
        keep_droplet_hours(engine, 62, JUNE)
        materialize_range(JUNE, date(2026, 6, 30), instance=instance)
        # A 1,000 GB bucket back-dated to May 30 re-meters May 30-31; the daemon is down:
        # neither May's re-pricing nor June's close is run.
        add_version(engine, "spaces:late", "dep-may", "spaces_bucket", utc(2026, 5, 30),
                    JUNE, size_gb=1000, recorded_at=CORRECTED)  # fmt: skip
        materialize_range(date(2026, 5, 30), date(2026, 5, 31), instance=instance)
        state.requests_before = partitions(sensor_requests(instance, monkeypatch, CORRECTED))
        state.may_droplet_records = droplet_records(engine, MAY)
        state.june_droplet_records = droplet_records(engine, JUNE)

        state.retention = run_retention(database_url, instance, monkeypatch)
        state.retention_logs = instance.all_logs(state.retention.run_id)
        with engine.connect() as connection:
            state.removals = connection.execute(
                text(
                    "SELECT month, billing_kind, first_day, last_day, records, run_id "
                    "FROM metering.retention_removals ORDER BY month, billing_kind"
                )
            ).all()
        state.records_after = records_by_month_and_kind(engine)

        # Retention raised back to 400 days, from the open month.
        keep_droplet_hours(engine, 400, date(2026, 8, 1))
        # The sensor asks for June's overdue close (run as the daemon runs it), not May.
        requests = sensor_requests(instance, monkeypatch, LATER)
        state.requests_after = partitions(requests)
        for request in [] if isinstance(requests, SkipReason) else requests:
            run_requested(request, instance, raise_on_error=False)
        state.june_closed = statements(engine, JUNE)
        state.reprice = price_month(MAY, LATER, instance, monkeypatch, raise_on_error=False)
        state.may_after = statements(engine, MAY)
        state.may_adjustments = adjustments(engine, MAY)

        # A correction into May: a third droplet back-dated to May 20, recorded in August.
        add_version(engine, "droplet:late", "dep-may", "droplet", utc(2026, 5, 20), JUNE,
                    recorded_at=CORRECTION_RECORDED)  # fmt: skip
        state.written_before_correction = written_rows(engine)
        state.correction = materialize_range(
            date(2026, 5, 20), date(2026, 5, 31), instance=instance, raise_on_error=False
        )
        state.written_after_correction = written_rows(engine)
        state.requests_after_correction = sensor_requests(instance, monkeypatch, CORRECTION_CHECKED)
        yield state
    finally:
        monkeypatch.undo()
        reset(engine)  # the catalog rows this module added reach no other module
        engine.dispose()


def test_may_closed_on_its_full_month(history):
    statement = history.may_closed["dep-may"]
    assert statement["status"] == "closed"
    droplet = statement["lines"]["droplet_hours"]
    assert (droplet["qty"], droplet["included_qty"], droplet["overage_qty"]) == (1488, 744, 744)
    assert droplet["amount_usd"] == D("6.64")  # 744 x 0.00893 = 6.64392
    assert statement["total_usd"] == D("26.64")
    assert history.may_droplet_records == 62  # one a day for each of the two droplets


def test_retention_removes_mays_droplet_records_and_records_it(history):
    assert history.retention.success
    assert history.removals == [
        (MAY, "droplet_hours", MAY, date(2026, 5, 31), 62, history.retention.run_id)
    ]
    # May's droplet records are gone; its Spaces records (400 days) and June's stay.
    assert (MAY, "droplet_hours") not in history.records_after
    assert history.records_after[MAY, "spaces_gb_month"] == 2
    assert history.records_after[JUNE, "droplet_hours"] == history.june_droplet_records == 60


def test_retention_waits_for_june_which_has_not_closed_and_says_so(history):
    # 62 days before 2026-08-05 is 2026-06-04: June 1-3 would go, but June never closed.
    observed = history.retention.asset_observations_for_node("remove_expired_usage_records")
    usage = next(o for o in observed if o.asset_key.to_user_string() == "usage_records")
    waiting = usage.metadata["waiting_for_close"].value
    assert waiting.startswith("droplet_hours: records from 2026-06-01 on kept until 2026-06")
    assert "2026-06-04" in waiting
    warnings = [e.user_message for e in history.retention_logs if e.level == logging.WARNING]
    assert warnings == [f"retention waits: {waiting}"]


def test_may_is_never_re_priced_from_what_is_left_whatever_retention_says_now(history):
    # Before retention ran the sensor asked for May's re-pricing (and June's close).
    assert history.requests_before == [MAY.isoformat(), JUNE.isoformat()]
    # Raised back to 400 days, retention brings nothing back: the statement run of May fails
    # naming what retention removed, and books nothing (not −6.64 and −1488 h for the
    # droplets gone, nor the late bucket's +0.29).
    assert not history.reprice.success
    message = failure_messages(history.reprice)
    assert "cannot price 2026-05: retention removed usage records of 2026-05" in message
    assert "droplet_hours 2026-05-01 to 2026-05-31 (62 records" in message
    assert history.may_adjustments == []
    assert history.may_after == history.may_closed


def test_the_sensor_asks_nothing_for_may_once_retention_removed_its_records(history):
    assert history.requests_after == [JUNE.isoformat()]  # June's overdue close alone
    assert partitions(history.requests_after_correction) == []


def test_a_correction_into_may_is_refused_naming_retention_and_writes_nothing(history):
    assert not history.correction.success
    message = failure_messages(history.correction)
    assert "retention removed usage records of 2026-05" in message
    assert "a correction into it is refused" in message
    assert "month_closure" not in message and "month sums to" not in message
    assert history.written_after_correction == history.written_before_correction


def test_june_kept_its_records_through_retention_and_closes_late_on_full_figures(history):
    statement = history.june_closed.get("dep-may")
    assert statement is not None, "June never priced"
    assert statement["status"] == "closed"
    droplet = statement["lines"]["droplet_hours"]
    assert (droplet["qty"], droplet["included_qty"], droplet["overage_qty"]) == (1440, 744, 696)
    assert droplet["amount_usd"] == D("6.22")  # 696 x 0.00893 = 6.21528
    assert statement["total_usd"] == D("26.22")
    # The May bucket ends on June 1: no other kind has anything in June.
    assert all(
        line["qty"] == 0 for kind, line in statement["lines"].items() if kind != "droplet_hours"
    )
