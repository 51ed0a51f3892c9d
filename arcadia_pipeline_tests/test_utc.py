"""UTC days and billing months."""

from datetime import UTC, date, datetime

import pytest

from arcadia_pipeline.utc import (
    add_months,
    contiguous_ranges,
    day_bounds,
    days_between,
    days_in_month,
    iter_days,
    month_end,
    month_start,
)


def test_day_bounds_are_utc_midnights():
    assert day_bounds(date(2025, 3, 31)) == (
        datetime(2025, 3, 31, tzinfo=UTC),
        datetime(2025, 4, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 1)),
        (date(2025, 12, 15), 1, date(2026, 1, 1)),
        (date(2025, 1, 1), -1, date(2024, 12, 1)),
        (date(2025, 3, 31), -13, date(2024, 2, 1)),
        (date(2025, 3, 2), 0, date(2025, 3, 1)),
    ],
)
def test_add_months(day, n, expected):
    assert add_months(day, n) == expected


def test_month_ends_and_lengths():
    assert month_start(date(2024, 2, 17)) == date(2024, 2, 1)
    assert month_end(date(2024, 2, 17)) == date(2024, 2, 29)
    assert month_end(date(2025, 12, 1)) == date(2025, 12, 31)
    assert [days_in_month(date(2025, m, 1)) for m in (1, 2, 4)] == [31, 28, 30]


def test_days_of_a_window_and_ranges():
    window = (datetime(2025, 2, 27, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    assert days_between(*window) == [date(2025, 2, 27), date(2025, 2, 28), date(2025, 3, 1)]
    assert list(iter_days(date(2025, 1, 1), date(2024, 12, 31))) == []
    days = [date(2025, 1, d) for d in (5, 1, 2, 3, 7, 2)]
    assert contiguous_ranges(days) == [
        (date(2025, 1, 1), date(2025, 1, 3)),
        (date(2025, 1, 5), date(2025, 1, 5)),
        (date(2025, 1, 7), date(2025, 1, 7)),
    ]
