"""Every ARCADIA_* environment variable the package reads, validated in one place.

The two database URLs reach the Dagster resources as `EnvVar`s named here (Dagster reads
them when a run starts and shows their names, never their values, in the UI). The rest is
read once per process by `settings()`: a bad value stops the code location from loading
(or the CLI from starting) with one message that names every bad variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache

WAREHOUSE_URL_VAR = "ARCADIA_DATABASE_URL"
SOURCE_URL_VAR = "ARCADIA_SOURCE_DATABASE_URL"

DEFAULT_METERING_START_DATE = "2025-01-01"
DEFAULT_CATCHUP_LOOKBACK_DAYS = 7
DEFAULT_CORRECTIONS_LOOKBACK_DAYS = 35
# A look-back longer than a year would compare (or re-run) more than retention keeps.
MAX_LOOKBACK_DAYS = 366
DEFAULT_CLOSE_GRACE_DAYS = 3
# Within the next month: a month closes before the one after it has ended.
MAX_CLOSE_GRACE_DAYS = 28


class SettingsError(Exception):
    """One or more ARCADIA_* variables are missing or malformed."""


@dataclass(frozen=True)
class Settings:
    metering_start_date: date  # ARCADIA_METERING_START_DATE: the first daily partition
    catchup_lookback_days: int  # ARCADIA_CATCHUP_LOOKBACK_DAYS
    corrections_lookback_days: int  # ARCADIA_CORRECTIONS_LOOKBACK_DAYS
    automation_running: bool  # ARCADIA_AUTOMATION: running | stopped
    close_grace_days: int  # ARCADIA_CLOSE_GRACE_DAYS: days after a month's end until it closes


def _iso_date(name: str, value: str, errors: list[str]) -> date:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors.append(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    return date.fromisoformat(DEFAULT_METERING_START_DATE)


def _days(name: str, value: str, errors: list[str]) -> int:
    if value.isdigit() and 1 <= int(value) <= MAX_LOOKBACK_DAYS:
        return int(value)
    errors.append(f"{name} must be a whole number of days from 1 to {MAX_LOOKBACK_DAYS}, "
                  f"got {value!r}")  # fmt: skip
    return 1


def _grace_days(name: str, value: str, errors: list[str]) -> int:
    if value.isdigit() and int(value) <= MAX_CLOSE_GRACE_DAYS:
        return int(value)
    errors.append(f"{name} must be a whole number of days from 0 to {MAX_CLOSE_GRACE_DAYS}, "
                  f"got {value!r}")  # fmt: skip
    return DEFAULT_CLOSE_GRACE_DAYS


def _choice(name: str, value: str, choices: tuple[str, ...], errors: list[str]) -> str:
    if value.lower() in choices:
        return value.lower()
    errors.append(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return choices[0]


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse every setting of `environ`, raising one SettingsError that lists each bad one."""
    errors: list[str] = []

    def get(name: str, default: object) -> str:
        return (environ.get(name) or str(default)).strip()

    loaded = Settings(
        metering_start_date=_iso_date(
            "ARCADIA_METERING_START_DATE",
            get("ARCADIA_METERING_START_DATE", DEFAULT_METERING_START_DATE),
            errors,
        ),
        catchup_lookback_days=_days(
            "ARCADIA_CATCHUP_LOOKBACK_DAYS",
            get("ARCADIA_CATCHUP_LOOKBACK_DAYS", DEFAULT_CATCHUP_LOOKBACK_DAYS),
            errors,
        ),
        corrections_lookback_days=_days(
            "ARCADIA_CORRECTIONS_LOOKBACK_DAYS",
            get("ARCADIA_CORRECTIONS_LOOKBACK_DAYS", DEFAULT_CORRECTIONS_LOOKBACK_DAYS),
            errors,
        ),
        automation_running=_choice(
            "ARCADIA_AUTOMATION", get("ARCADIA_AUTOMATION", "running"), ("running", "stopped"),
            errors,
        ) == "running",
        close_grace_days=_grace_days(
            "ARCADIA_CLOSE_GRACE_DAYS",
            get("ARCADIA_CLOSE_GRACE_DAYS", DEFAULT_CLOSE_GRACE_DAYS),
            errors,
        ),
    )  # fmt: skip
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    return loaded


@cache
def settings() -> Settings:
    """The process's settings, read from the environment once."""
    return load_settings(os.environ)


def warehouse_url() -> str:
    """The warehouse's SQLAlchemy URL (for code outside Dagster: the CLI, benchmarks)."""
    url = os.environ.get(WAREHOUSE_URL_VAR)
    if not url:
        raise SettingsError(
            f"{WAREHOUSE_URL_VAR} is not set (a SQLAlchemy URL of the warehouse database)"
        )
    return url


def source_url_var() -> str:
    """The variable holding the source's URL: the source defaults to the warehouse's own
    database when ARCADIA_SOURCE_DATABASE_URL is unset or empty."""
    return SOURCE_URL_VAR if os.environ.get(SOURCE_URL_VAR) else WAREHOUSE_URL_VAR


def source_url() -> str:
    return os.environ[SOURCE_URL_VAR] if source_url_var() == SOURCE_URL_VAR else warehouse_url()
