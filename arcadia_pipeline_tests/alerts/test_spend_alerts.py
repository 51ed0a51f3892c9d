"""Spend alerts through real Dagster runs and sensor ticks, to the local SMTP server and
webhook (issue 19): a threshold is recorded on the day the month-to-date quote, or its
projection to the month's end, first reaches it and told once; re-quoting that day, quoting
later days or ticking again tells nothing more.

Issue 19's deployment: starter (20.00, 744 droplet hours included), two droplets running all
May 2026 at the shipped 0.00893 per hour over: 48 h a day, so on the 27th 1296 h, 552 over,
4.93, total 24.93; on the 28th 1344 h, 600 over, 5.36, total 25.36. A 25.00 threshold is
reached on May 28; 100.00 never is. Projected from May 1 to the month's end, the two
droplets make 1488 h, 744 over, 6.64, total 26.64: 25.00 is projected to be reached on May 1.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from dagster import DagsterInstance, build_sensor_context
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError

from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline_tests.alerts.conftest import assert_one_alert, incidents
from arcadia_pipeline_tests.support import (
    ASSETS,
    add_deployment,
    add_version,
    materialize_range,
    sensor,
    utc,
)

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

D = Decimal
MAY_1, MAY_27, MAY_28, MAY_31 = (date(2026, 5, day) for day in (1, 27, 28, 31))
# The daily assets up to the month-to-date quotes, without their projection.
TO_THE_QUOTES = tuple(asset for asset in ASSETS if asset != "projected_quotes")


def spend_tick(instance, database_url) -> str:
    context = build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(database_url=database_url)}
    )
    return sensor("spend_alert_sensor")(context).skip_message


def events(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT deployment_id, threshold_usd, month, basis, as_of_date, total_usd,"
                " alerted_at IS NOT NULL FROM metering.spend_alert_events ORDER BY 1, 2, 3"
            )
        ).all()


@pytest.fixture
def dep_may(engine):
    add_deployment(engine, "dep-may", "starter")
    for n in (1, 2):
        add_version(engine, f"droplet:{n}", "dep-may", "droplet", utc(2026, 4, 1))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.spend_alerts (deployment_id, threshold_usd)"
                " VALUES ('dep-may', 25.00), ('dep-may', 100.00)"
            )
        )


def test_a_threshold_is_told_once_on_the_day_the_quote_first_reaches_it(
    engine, database_url, channels, dep_may
):
    instance = DagsterInstance.ephemeral()
    materialize_range(MAY_1, MAY_27, TO_THE_QUOTES, instance=instance)
    assert events(engine) == []
    assert spend_tick(instance, database_url) == "0 spend threshold(s) reached, 0 told now"
    assert channels.emails == [] and channels.posts == []

    materialize_range(MAY_28, MAY_28, TO_THE_QUOTES, instance=instance)
    assert events(engine) == [
        ("dep-may", D("25.00"), date(2026, 5, 1), "month_to_date", MAY_28, D("25.36"), False)
    ]
    assert spend_tick(instance, database_url) == "1 spend threshold(s) reached, 1 told now"
    mail, _ = assert_one_alert(
        channels, "dep-may reached 25.00 USD in 2026-05", "25.36 USD", "2026-05-28"
    )
    assert "month-to-date" in mail
    assert incidents(engine) == ["spend:dep-may:25.00:2026-05"]
    assert [event[-1] for event in events(engine)] == [True]  # told

    # May 28 quoted again and the month's later days: the event stands, nothing more is told.
    materialize_range(MAY_28, MAY_31, TO_THE_QUOTES, instance=instance)
    assert spend_tick(instance, database_url) == "0 spend threshold(s) reached, 0 told now"
    assert len(channels.emails) == 1 and len(channels.posts) == 1
    assert events(engine) == [
        ("dep-may", D("25.00"), date(2026, 5, 1), "month_to_date", MAY_28, D("25.36"), True)
    ]


def test_a_threshold_the_projection_reaches_first_is_told_once_as_projected(
    engine, database_url, channels, dep_may
):
    instance = DagsterInstance.ephemeral()
    materialize_range(MAY_1, MAY_1, instance=instance)
    projected = ("dep-may", D("25.00"), date(2026, 5, 1), "projected", MAY_1, D("26.64"))
    assert events(engine) == [(*projected, False)]
    assert spend_tick(instance, database_url) == "1 spend threshold(s) reached, 1 told now"
    mail, _ = assert_one_alert(
        channels, "dep-may is projected to reach 25.00 USD in 2026-05", "26.64 USD", "2026-05-01"
    )
    assert "projected" in mail
    # The month to date reaches it on May 28: the month's event stands, told once.
    materialize_range(date(2026, 5, 2), MAY_31, instance=instance)
    assert spend_tick(instance, database_url) == "0 spend threshold(s) reached, 0 told now"
    assert events(engine) == [(*projected, True)]
    assert incidents(engine) == ["spend:dep-may:25.00:2026-05"]


NOT_AN_AMOUNT = "spend_alerts_threshold_is_an_amount"


@pytest.mark.parametrize(
    ("threshold", "error", "says"),
    [
        ("0", IntegrityError, NOT_AN_AMOUNT),
        ("-5", IntegrityError, NOT_AN_AMOUNT),
        ("NaN", IntegrityError, NOT_AN_AMOUNT),
        ("1000000000", IntegrityError, NOT_AN_AMOUNT),
        ("Infinity", DataError, "cannot hold an infinite value"),
        ("1e12", DataError, "numeric field overflow"),
    ],
)
def test_a_threshold_that_is_not_an_amount_is_refused(engine, threshold, error, says):
    with pytest.raises(error, match=says), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.spend_alerts (deployment_id, threshold_usd)"
                " VALUES ('dep-may', CAST(:threshold AS numeric))"
            ),
            {"threshold": threshold},
        )
