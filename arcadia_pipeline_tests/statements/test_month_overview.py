"""Which months are closed, at a glance: the month in progress gets a draft from its first
metered days (statement_months_sensor), and every statements materialisation shows every
billing month's standing and every adjustment of its month, on real PostgreSQL through
Dagster."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from dagster import DagsterInstance, SkipReason

from arcadia_pipeline.defs.statements.tables import adjustments_text
from arcadia_pipeline_tests.statements.support import (
    run_requested,
    sensor_requests,
    statements,
)
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

FEBRUARY, MARCH = date(2025, 2, 1), date(2025, 3, 1)
# February is within its grace (it closes on 4 March), March is the month in progress.
NOW = datetime(2025, 3, 3, 12, tzinfo=UTC)
MONTHS_HEADER = (
    "| billing month | status | priced at (UTC) | closed at (UTC) | statements | total USD "
    "| adjustments | adjustments USD | total with adjustments USD |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|\n"
)


def metadata_of(result, month: date) -> dict:
    (event,) = result.get_asset_materialization_events()
    assert event.partition == month.isoformat()
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_the_month_in_progress_gets_a_draft_and_every_month_is_listed(engine, monkeypatch):
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 26), date(2025, 3, 2), instance=instance)

    # Metered, never priced, not due to close: a first draft of each month.
    requests = sensor_requests(instance, monkeypatch, NOW)
    assert [(r.partition_key, r.tags["arcadia/trigger"]) for r in requests] == [
        ("2025-02-01", "draft"),
        ("2025-03-01", "draft"),
    ]
    march = run_requested(requests[1], instance)
    statement = statements(engine, MARCH)["dep-a"]
    assert (statement["status"], statement["closed_at"]) == ("draft", None)
    assert statement["total_usd"] == Decimal("20.00")  # 48 droplet hours, within the 744

    metadata = metadata_of(march, MARCH)
    assert (metadata["status"], metadata["closed"]) == ("draft", 0)
    assert metadata["all_adjustments"] == "2025-03 has no adjustments."
    with engine.connect() as connection:
        (priced_at,) = connection.exec_driver_sql(
            "SELECT repriced_at FROM metering.statement_months WHERE month = '2025-03-01'"
        ).one()
    assert metadata["billing_months"] == MONTHS_HEADER + (
        f"| 2025-03 | draft | {priced_at:%Y-%m-%d %H:%M} | - | 1 | 20.00 | 0 | 0.00 | 20.00 |\n"
        "| 2025-02 | not priced | - | - | 0 | 0.00 | 0 | 0.00 | 0.00 |"
    )

    # The March draft stands until its days are written again; February is still asked for.
    again = sensor_requests(instance, monkeypatch, NOW)
    assert [(r.partition_key, r.tags["arcadia/trigger"]) for r in again] == [
        ("2025-02-01", "draft")
    ]


def test_a_month_due_to_close_is_left_to_the_close_schedule_until_its_deadline(engine, monkeypatch):
    """February never priced, on 4 March at noon: due (the 02:30 schedule closes it), not
    late; no draft is asked for, and a day later the sensor closes it."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 27), date(2025, 2, 28), instance=instance)
    due = sensor_requests(instance, monkeypatch, datetime(2025, 3, 4, 12, tzinfo=UTC))
    assert isinstance(due, SkipReason) and due.skip_message == "no month to price"
    late = sensor_requests(instance, monkeypatch, datetime(2025, 3, 5, 12, tzinfo=UTC))
    assert isinstance(late, SkipReason)  # asked to close, but its days are not all metered
    assert "not metered by every daily asset: 2025-02-01 to 2025-02-26" in late.skip_message


ROWS = [
    {"deployment_id": "dep-a", "billing_kind": "droplet_hours", "qty_delta": Decimal("-336"),
     "amount_usd": Decimal("-3.00"), "created_at": utc(2025, 3, 20, 12)},
    {"deployment_id": "dep-b", "billing_kind": "spaces_gb_month",
     "qty_delta": Decimal("-75.463548387096774194"), "amount_usd": Decimal("-1.5"),
     "created_at": utc(2025, 3, 21, 8, 5)},
]  # fmt: skip


def test_a_month_with_more_adjustments_than_listed_says_how_many_more_and_how_to_export():
    assert adjustments_text(FEBRUARY, ROWS, 1_234) == (
        "| deployment | billing kind | quantity | amount USD | booked (UTC) |\n"
        "|---|---|---:|---:|---|\n"
        "| dep-a | droplet_hours | -336 | -3.00 | 2025-03-20 12:00 |\n"
        "| dep-b | spaces_gb_month | -75.4635 | -1.50 | 2025-03-21 08:05 |\n"
        "\n"
        "… and 1232 more (1234 in all; the first 2 by deployment are listed). Every one: "
        "`arcadia-pipeline statements --month 2025-02 --format csv --output 2025-02.csv`"
    )
    assert adjustments_text(FEBRUARY, ROWS, 2).endswith("| -1.50 | 2025-03-21 08:05 |")
    assert adjustments_text(FEBRUARY, [], 0) == "2025-02 has no adjustments."
