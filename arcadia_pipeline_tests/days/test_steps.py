"""A flow refuses, when it is declared, what would otherwise surface at run time: a step read
before it is declared, a step or a check name twice, a read of an unknown span; and an asset
is built only for a step of the flow."""

from datetime import date

import pytest

from arcadia_pipeline.days.steps import DailyCheck, DailyFlow, DailyStep, FlowError, Problems, Read
from arcadia_pipeline.db import schema
from arcadia_pipeline.flow import DAILY_FLOW, DEPLOYMENT_QUOTES, USAGE_RECORDS
from arcadia_pipeline.orchestration.assets import daily_asset
from arcadia_pipeline.settings import load_settings


def nothing(connection, day):
    return Problems()


FIRST = DailyStep("first", (schema.usage_records,), checks=(DailyCheck("fine", nothing, ""),))
SECOND = DailyStep("second", (schema.deployment_quotes,), reads=(Read(FIRST, "month_to_date"),))


def test_a_flow_in_order_is_accepted_and_derives_what_comes_after_a_step():
    flow = DailyFlow((FIRST, SECOND))
    assert flow.assets == ("first", "second")
    assert flow.from_step(FIRST) == (FIRST, SECOND)
    assert Read(FIRST, "month_to_date").days(date(2025, 3, 3)) == [
        date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((SECOND, FIRST), "daily step second reads first, not before it"),
        ((FIRST, FIRST), "daily step first is declared twice"),
        (
            (FIRST, DailyStep("third", (), checks=(DailyCheck("fine", nothing, ""),))),
            "daily step third repeats a check name: ['fine']",
        ),
    ],
)
def test_a_flow_out_of_order_or_declared_twice_is_refused(steps, message):
    with pytest.raises(FlowError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DailyFlow(steps)


def test_a_read_of_an_unknown_span_is_refused():
    with pytest.raises(FlowError, match="spans 'month': day or month_to_date"):
        Read(FIRST, "month")


def test_only_the_flow_s_steps_become_daily_assets():
    assert USAGE_RECORDS in DAILY_FLOW.steps and DEPLOYMENT_QUOTES.gates_close
    with pytest.raises(FlowError, match="first is not a step of flow.DAILY_FLOW"):
        daily_asset(FIRST, load_settings({}), lambda context: None)
