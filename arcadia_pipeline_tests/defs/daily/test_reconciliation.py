"""The reconciliation finds what no timestamp shows (issue 16): a hard delete, an update that
did not bump recorded_at, a correction months back into a closed month; the days it finds are
re-metered and a closed month gets its adjustment.

February 2025 (28 days), starter (docs/domain.md): 744 droplet hours and 50 Spaces GB-months
included; Spaces over the allowance at 0.02 per GB-month.
"""

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, date, datetime

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context
from sqlalchemy import text

from arcadia_pipeline.cli import main as cli_main
from arcadia_pipeline.defs.daily import missed_days as catchup
from arcadia_pipeline.defs.daily.reconciliation import ReconcileConfig, reconciliation_job
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline_tests.statements.support import (
    adjustments,
    price_month,
    sensor_requests,
)
from arcadia_pipeline_tests.statements.support import run_requested as run_month
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    hold_clock,
    materialize_range,
    requested_days,
    run_requested,
    sensor,
    usage_rows,
    utc,
)

FEBRUARY, FEB_28 = date(2025, 2, 1), date(2025, 2, 28)
CLOSED = datetime(2025, 3, 4, 3, tzinfo=UTC)
# 70 days after February's last day: long past every sensor's look-back.
SEVENTY_DAYS_ON = datetime(2025, 5, 9, 4, 40, tzinfo=UTC)


def reconcile_printed(first: str, last: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["reconcile", "--from", first, "--to", last]) == 0
    return json.loads(out.getvalue())


def delete_bucket(engine) -> None:
    """The bucket's row deleted outright from the source: no recorded_at says so."""
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM arcadia.resource_versions WHERE resource_id = 'spaces:big'")
        )


def findings(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM metering.source_findings")).scalar()


def run_reconciliation(database_url, instance, monkeypatch, now, sweep=True):
    hold_clock(monkeypatch, now)
    resources = {
        "warehouse": WarehouseResource(database_url=database_url),
        "arcadia_source": ArcadiaSourceResource(database_url=database_url),
    }
    config = {"ops": {"reconcile_source": {"config": ReconcileConfig(sweep=sweep).model_dump()}}}
    result = reconciliation_job.execute_in_process(
        run_config=config, resources=resources, instance=instance
    )
    assert result.success
    return result


def refresh(database_url, instance, monkeypatch) -> list:
    """One catch-up tick (stale days only) and its runs, as the daemon launches them."""
    monkeypatch.setattr(catchup, "days_due", lambda *_: [])
    context = build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(database_url=database_url)}
    )
    requests = sensor("missed_days_sensor")(context)
    requests = [] if isinstance(requests, SkipReason) else requests
    for request in requests:
        assert run_requested(request, instance).success
    return requests


@pytest.fixture
def february(engine):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    add_version(engine, "spaces:big", "dep-a", "spaces_bucket", utc(2025, 1, 1), size_gb=5000)
    instance = DagsterInstance.ephemeral()
    materialize_range(FEBRUARY, FEB_28, instance=instance)
    return instance


def test_a_clean_source_finds_nothing_and_writes_nothing(engine, database_url, february):
    assert reconcile_printed("2025-02-01", "2025-02-28") == {
        "from": "2025-02-01", "to": "2025-02-28", "metered_days": 28, "differing": {},
    }  # fmt: skip
    assert findings(engine) == 0


@pytest.mark.citus
def test_a_hard_deleted_bucket_is_found_and_no_longer_billed(
    engine, database_url, february, monkeypatch
):
    """The 5,000 GB bucket's row is deleted outright: no recorded_at anywhere says so."""
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM arcadia.resource_versions WHERE resource_id = 'spaces:big'")
        )
    printed = reconcile_printed("2025-02-01", "2025-02-28")
    assert printed["differing"] == {f"2025-02-{d:02d}": ["dep-a"] for d in range(1, 29)}
    assert findings(engine) == 0  # the command only looks

    run_reconciliation(database_url, february, monkeypatch, datetime(2025, 3, 2, 4, 40, tzinfo=UTC))
    assert findings(engine) == 28
    (request,) = refresh(database_url, february, monkeypatch)
    assert requested_days(request) == ("2025-02-01", "2025-02-28")
    assert usage_rows(engine, "resource_id = 'spaces:big'") == []
    assert reconcile_printed("2025-02-01", "2025-02-28")["differing"] == {}
    assert refresh(database_url, february, monkeypatch) == []  # nothing stale any more


def test_an_update_that_did_not_bump_recorded_at_is_found(engine, february):
    with engine.begin() as connection:  # resized in place, recorded_at untouched
        connection.execute(
            text("UPDATE arcadia.resource_versions SET size_gb = 4000 "
                 "WHERE resource_id = 'spaces:big'")
        )  # fmt: skip
    differing = reconcile_printed("2025-02-10", "2025-02-12")["differing"]
    assert differing == {"2025-02-10": ["dep-a"], "2025-02-11": ["dep-a"], "2025-02-12": ["dep-a"]}


@pytest.mark.citus
def test_a_correction_seventy_days_back_into_a_closed_month_is_adjusted(
    engine, database_url, february, monkeypatch
):
    """February closed; in May the bucket is found never to have existed (deleted from the
    source, no timestamp): the weekly sweep finds it, the days are re-metered and February
    gets a credit of its overage: (5000 - 50) GB-months x 0.02 = 99.00."""
    price_month(FEBRUARY, CLOSED, february, monkeypatch)
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM arcadia.resource_versions WHERE resource_id = 'spaces:big'")
        )
    run_reconciliation(database_url, february, monkeypatch, SEVENTY_DAYS_ON)
    refresh(database_url, february, monkeypatch)
    (request,) = sensor_requests(february, monkeypatch, SEVENTY_DAYS_ON)
    assert request.tags["arcadia/trigger"] == "reprice"
    assert run_month(request, february).success
    spaces = [a for a in adjustments(engine, FEBRUARY) if a["billing_kind"] == "spaces_gb_month"]
    assert [(a["qty_delta"], a["amount_usd"]) for a in spaces] == [(-5000, -99)]
