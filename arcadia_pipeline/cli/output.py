"""What every command shares: its one-line error, how it reads dates and months (and says so
in --help), and how it writes quantities (money: pricing.rules.money_text)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime

from arcadia_pipeline import utc
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import month_start

# The --help epilog of every command taking dates (and of the whole CLI).
DATES_NOTE = "Dates are UTC days written YYYY-MM-DD; a --from/--to range includes both days."


class CliError(Exception):
    """A one-line message for the user; the command exits non-zero."""


def iso_date(value: str) -> date:
    """YYYY-MM-DD (fromisoformat alone also takes 20250219 and 2025-W08-3)."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


# An instant to the second (optionally microsecond) with its zone: Z or ±HH:MM.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
# No source history reaches before this: an earlier instant is a typo, not a correction.
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)


def iso_instant(value: str) -> datetime:
    """YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or ±HH:MM, as UTC; from 2000 up to now (a
    correction records what already happened). NaN, a missing zone or an absurd date are
    refused by the argument parser, in one line."""
    try:
        if not _INSTANT.fullmatch(value):
            raise ValueError(value)
        instant = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an instant (YYYY-MM-DDTHH:MM:SSZ, or with ±HH:MM)"
        ) from None
    if not EARLIEST_INSTANT <= instant <= utc.now():
        raise argparse.ArgumentTypeError(
            f"{value!r} is out of range: from {EARLIEST_INSTANT:%Y-%m-%d} to now (UTC)"
        )
    return instant


def add_day_option(parser: argparse.ArgumentParser, option: str, what: str, **kwargs) -> None:
    """An option taking one UTC day, its help saying the format: `what` names the day."""
    parser.add_argument(
        option, type=iso_date, metavar="YYYY-MM-DD", help=f"{what} (YYYY-MM-DD, UTC)", **kwargs
    )


def add_day_range(parser: argparse.ArgumentParser) -> None:
    """--from and --to (args.start, args.end), both days included."""
    add_day_option(parser, "--from", "first day, included", dest="start", required=True)
    add_day_option(parser, "--to", "last day, included", dest="end", required=True)


def add_month_option(parser: argparse.ArgumentParser) -> None:
    """--month (args.month, its first day) taking YYYY-MM."""
    parser.add_argument(
        "--month", type=month_arg, required=True, metavar="YYYY-MM", help="billing month (UTC)"
    )


def month_arg(value: str) -> date:
    """YYYY-MM as the month's first day."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month (YYYY-MM)") from None


def not_after_today(option: str, day: date) -> None:
    """Nothing after today (UTC) can have been metered."""
    today = utc.now().date()
    if day > today:
        raise CliError(f"{option} {day} is after today ({today}, UTC): nothing is metered yet")


def check_month(month: date) -> None:
    """A month the statements can exist for: from the first metered month to this one."""
    first = month_start(settings().metering_start_date)
    if month < first:
        raise CliError(
            f"--month {month:%Y-%m} is before the first billing month {first:%Y-%m} "
            "(ARCADIA_METERING_START_DATE)"
        )
    this_month = month_start(utc.now().date())
    if month > this_month:
        raise CliError(f"--month {month:%Y-%m} is after this month ({this_month:%Y-%m}, UTC)")
