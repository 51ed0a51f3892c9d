"""Each day's check verdicts are kept in the warehouse, and whether a month can close is one
query over them: every day written, every gating check passed after the last write, none
stale. The CLI prints the same answer."""

import json
from datetime import date

import pytest
from sqlalchemy import text

from arcadia_pipeline import cli
from arcadia_pipeline.days.locks import hold_day
from arcadia_pipeline.days.verdicts import close_status
from arcadia_pipeline.flow import DAILY_FLOW, USAGE_RECORDS
from arcadia_pipeline.utc import iter_days
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

FEBRUARY, LAST = date(2025, 2, 1), date(2025, 2, 28)
CHECKS = [check.name for step in DAILY_FLOW for check in step.checks]


@pytest.fixture
def metered(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=60)
    materialize_range(FEBRUARY, date(2025, 2, 16))
    materialize_range(date(2025, 2, 18), LAST)
    return engine


def status(engine):
    with engine.begin() as connection:
        return close_status(connection, DAILY_FLOW, FEBRUARY, LAST)


def test_every_check_records_its_verdict_on_every_day(metered):
    with metered.connect() as connection:
        verdicts = connection.execute(
            text("SELECT check_name, count(*), bool_and(passed), sum(problems) "
                 "FROM metering.day_checks GROUP BY check_name ORDER BY 1")
        ).all()  # fmt: skip
    assert verdicts == [(name, 27, True, 0) for name in sorted(CHECKS)]


def test_a_month_closes_only_once_every_day_is_written_checked_and_current(metered):
    missing = status(metered)
    assert (missing.missing_days, missing.failed_checks, missing.stale_days) == (
        [date(2025, 2, 17)],
        {},
        [],
    )
    assert not missing.can_close
    assert missing.reasons() == ["not metered by every daily asset: 2025-02-17"]

    materialize_range(date(2025, 2, 17), date(2025, 2, 17))
    stale = status(metered)
    later = list(iter_days(date(2025, 2, 18), LAST))
    assert (stale.missing_days, stale.failed_checks, stale.stale_days) == ([], {}, later)

    materialize_range(date(2025, 2, 18), LAST, assets=("usage_period_aggregates",
                                                        "deployment_quotes"))  # fmt: skip
    assert status(metered).can_close


def test_a_day_written_after_its_checks_or_failing_one_does_not_close(metered):
    materialize_range(date(2025, 2, 17), date(2025, 2, 17))
    materialize_range(date(2025, 2, 18), LAST, assets=("usage_period_aggregates",
                                                        "deployment_quotes"))  # fmt: skip
    with metered.begin() as connection:  # the 10th re-written, its checks not run since
        hold_day(connection, USAGE_RECORDS, date(2025, 2, 10), "rewrite")
    with metered.begin() as connection:  # the 20th's quote check failed
        connection.execute(
            text("UPDATE metering.day_checks SET passed = false, problems = 2 "
                 "WHERE check_name = 'quote_totals_add_up' AND day = '2025-02-20'")
        )  # fmt: skip
    found = status(metered)
    assert found.failed_checks == {
        "quote_totals_add_up": [date(2025, 2, 20)],
        "usage_records_complete": [date(2025, 2, 10)],
        "usage_records_month_closure": [date(2025, 2, 10)],
        "usage_records_within_bounds": [date(2025, 2, 10)],
    }
    # The month-to-date figures from the 10th on read the re-written day: stale.
    assert found.stale_days == list(iter_days(date(2025, 2, 10), LAST))
    assert found.reasons()[0] == "daily checks not passed: 2025-02-10, 2025-02-20"


def test_close_status_prints_the_answer_as_json(metered, capsys):
    assert cli.main(["close-status", "--month", "2025-02"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {
        "month": "2025-02",
        "can_close": False,
        "missing_days": ["2025-02-17"],
        "failed_checks": {},
        "stale_days": [],
    }


def test_close_status_refuses_a_bad_month_in_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["close-status", "--month", "2025-2"])
    assert exited.value.code == 2
    assert cli.main(["close-status", "--month", "2024-12"]) == 1
    err = capsys.readouterr().err
    assert "'2025-2' is not a month (YYYY-MM)" in err
    assert err.endswith("--month 2024-12 is before the first billing month 2025-01 "
                        "(ARCADIA_METERING_START_DATE)\n")  # fmt: skip


def test_a_day_whose_last_run_failed_does_not_close_until_a_run_writes_it(metered):
    """As a failed partition in Dagster did: a correction that failed on bad data leaves the
    day's old rows standing, but the month does not close on them."""
    materialize_range(date(2025, 2, 17), date(2025, 2, 17))
    materialize_range(date(2025, 2, 18), LAST, assets=("usage_period_aggregates",
                                                        "deployment_quotes"))  # fmt: skip
    assert status(metered).can_close
    add_version(metered, "droplet:1", "dep-a", "droplet", utc(2025, 2, 10, 12))  # overlaps
    failed = materialize_range(date(2025, 2, 10), date(2025, 2, 10), raise_on_error=False)
    assert not failed.success
    found = status(metered)
    assert (found.missing_days, found.failed_checks, found.stale_days) == (
        [date(2025, 2, 10)],
        {},
        [],
    )
    assert found.reasons() == ["not metered by every daily asset: 2025-02-10"]
    with metered.connect() as connection:
        stamped = connection.execute(
            text("SELECT asset, day, message FROM metering.day_failures")
        ).one()
    assert stamped[:2] == ("resource_inventory", date(2025, 2, 10))
    assert "overlaps the previous version of the same resource" in stamped.message

    with metered.begin() as connection:  # the source is fixed, the day metered again
        connection.execute(
            text("DELETE FROM arcadia.resource_versions WHERE valid_from = '2025-02-10T12:00Z'")
        )
    materialize_range(date(2025, 2, 10), date(2025, 2, 10))
    materialize_range(date(2025, 2, 11), LAST, assets=("usage_period_aggregates",
                                                        "deployment_quotes"))  # fmt: skip
    assert status(metered).can_close
