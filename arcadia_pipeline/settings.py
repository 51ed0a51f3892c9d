"""Every ARCADIA_* environment variable the package reads, validated in one place.

The two database URLs reach the Dagster resources as `EnvVar`s named here (Dagster reads
them when a run starts and shows their names, never their values, in the UI). The rest is
read by `settings()` when the definitions are built, never at import: a bad value stops the
code location from loading (or a CLI command from running) with one message that names every
bad variable.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

WAREHOUSE_URL_VAR = "ARCADIA_DATABASE_URL"
SOURCE_URL_VAR = "ARCADIA_SOURCE_DATABASE_URL"

DEFAULT_METERING_START_DATE = "2025-01-01"
DEFAULT_CATCHUP_LOOKBACK_DAYS = 7
DEFAULT_CORRECTIONS_LOOKBACK_DAYS = 35
# ARCADIA_LATE_COMMIT_WINDOW_MINUTES: a version committed up to this long after its
# recorded_at (a long app transaction, a clock behind) is still seen by the corrections
# sensor; at most a day.
DEFAULT_LATE_COMMIT_WINDOW_MINUTES = 60
MAX_LATE_COMMIT_WINDOW_MINUTES = 1440
# A look-back longer than a year would compare (or re-run) more than retention keeps.
MAX_LOOKBACK_DAYS = 366
DEFAULT_CLOSE_GRACE_DAYS = 3
# Within the next month: a month closes before the one after it has ended.
MAX_CLOSE_GRACE_DAYS = 28
# ARCADIA_MAX_DAYS_PER_RUN: at most a (leap) year of days per run; unset, a range is one run.
MAX_DAYS_PER_RUN = 366
# ARCADIA_PG_WORK_MEM: PostgreSQL's work_mem for the pipeline's sessions. 128MB lets a
# 1M-resource day's GROUP BY hash in memory (hash_mem_multiplier 2) instead of spilling.
DEFAULT_PG_WORK_MEM = "128MB"


class SettingsError(Exception):
    """One or more ARCADIA_* variables are missing or malformed."""


@dataclass(frozen=True)
class Settings:
    metering_start_date: date  # ARCADIA_METERING_START_DATE: the first daily partition
    catchup_lookback_days: int  # ARCADIA_CATCHUP_LOOKBACK_DAYS
    corrections_lookback_days: int  # ARCADIA_CORRECTIONS_LOOKBACK_DAYS
    late_commit_window_minutes: int  # ARCADIA_LATE_COMMIT_WINDOW_MINUTES
    automation_running: bool  # ARCADIA_AUTOMATION: running | stopped
    close_grace_days: int  # ARCADIA_CLOSE_GRACE_DAYS: days after a month's end until it closes
    # ARCADIA_MAX_DAYS_PER_RUN: a backfill of the daily assets is split into runs of at most
    # this many days (BackfillPolicy.multi_run); None (unset): a range is one run.
    max_days_per_run: int | None
    pg_work_mem: str  # ARCADIA_PG_WORK_MEM: e.g. 128MB (kB, MB or GB)
    # ARCADIA_ALERT_URLS: the Apprise URLs every alert goes to; empty: no alert is sent.
    # They hold passwords and tokens: never in a message or a log (alert_url_name).
    alert_urls: tuple[str, ...] = ()


def _iso_date(name: str, value: str, errors: list[str]) -> date:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors.append(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    return date.fromisoformat(DEFAULT_METERING_START_DATE)


def _days(name: str, value: str, errors: list[str], maximum: int = MAX_LOOKBACK_DAYS) -> int:
    if re.fullmatch(r"[0-9]{1,9}", value) and 1 <= int(value) <= maximum:
        return int(value)
    errors.append(f"{name} must be a whole number of days from 1 to {maximum}, got {value!r}")
    return 1


def _minutes(name: str, value: str, errors: list[str]) -> int:
    if re.fullmatch(r"[0-9]{1,9}", value) and 1 <= int(value) <= MAX_LATE_COMMIT_WINDOW_MINUTES:
        return int(value)
    errors.append(f"{name} must be a whole number of minutes from 1 to "
                  f"{MAX_LATE_COMMIT_WINDOW_MINUTES}, got {value!r}")  # fmt: skip
    return DEFAULT_LATE_COMMIT_WINDOW_MINUTES


def _optional_days(name: str, value: str | None, maximum: int, errors: list[str]) -> int | None:
    """None when the variable is unset or empty, else a whole number of days 1..maximum."""
    if not value:
        return None
    return _days(name, value.strip(), errors, maximum)


def _grace_days(name: str, value: str, errors: list[str]) -> int:
    if re.fullmatch(r"[0-9]{1,9}", value) and int(value) <= MAX_CLOSE_GRACE_DAYS:
        return int(value)
    errors.append(f"{name} must be a whole number of days from 0 to {MAX_CLOSE_GRACE_DAYS}, "
                  f"got {value!r}")  # fmt: skip
    return DEFAULT_CLOSE_GRACE_DAYS


def _memory(name: str, value: str, errors: list[str]) -> str:
    match = re.fullmatch(r"([0-9]{1,7})(kB|MB|GB)", value)
    kilobytes = int(match[1]) * {"kB": 1, "MB": 1024, "GB": 1024**2}[match[2]] if match else 0
    if 64 <= kilobytes <= 2 * 1024**2:  # PostgreSQL's work_mem runs from 64kB to 2GB
        return value
    errors.append(f"{name} must be a size from 64kB to 2GB such as 128MB, got {value!r}")
    return DEFAULT_PG_WORK_MEM


# ARCADIA_ALERT_URLS: URLs separated by whitespace, or by a comma before the next scheme (a
# comma inside a URL, as in Apprise's `?to=a@example.com,b@example.com`, stays in it).
_ALERT_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def alert_url_name(position: int, url: str) -> str:
    """How a message names an alert URL: its position (1-based) and scheme, never the URL
    (it holds a password or a token)."""
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*(?=://)", url)
    return f"URL {position} ({scheme[0].lower() + '://' if scheme else 'no scheme'})"


@functools.cache
def _apprise_loads(url: str) -> bool:
    """Whether Apprise can load `url` (once per URL and process: Apprise loads its plugins
    on first use, about a second)."""
    import apprise  # only when alerts are configured

    # Apprise logs what it cannot parse, URL and all: not here.
    logger = apprise.logger
    disabled, logger.disabled = logger.disabled, True
    try:
        return apprise.Apprise.instantiate(url) is not None
    finally:
        logger.disabled = disabled


def _alert_urls(name: str, value: str, errors: list[str]) -> tuple[str, ...]:
    """The Apprise URLs of `value`; each one Apprise cannot load (an unknown scheme, a
    token missing) is an error naming its position and scheme only."""
    urls = tuple(url for part in _ALERT_URL_SEPARATOR.split(value) if (url := part.strip(",")))
    bad = [alert_url_name(n, url) for n, url in enumerate(urls, 1) if not _apprise_loads(url)]
    if bad:
        errors.append(f"{name} holds {', '.join(bad)} that Apprise cannot load (see "
                      "https://appriseit.com/services/ for each service's URL)")  # fmt: skip
    return urls


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
        late_commit_window_minutes=_minutes(
            "ARCADIA_LATE_COMMIT_WINDOW_MINUTES",
            get("ARCADIA_LATE_COMMIT_WINDOW_MINUTES", DEFAULT_LATE_COMMIT_WINDOW_MINUTES),
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
        max_days_per_run=_optional_days(
            "ARCADIA_MAX_DAYS_PER_RUN", environ.get("ARCADIA_MAX_DAYS_PER_RUN"), MAX_DAYS_PER_RUN,
            errors,
        ),
        pg_work_mem=_memory(
            "ARCADIA_PG_WORK_MEM", get("ARCADIA_PG_WORK_MEM", DEFAULT_PG_WORK_MEM), errors
        ),
        alert_urls=_alert_urls("ARCADIA_ALERT_URLS", get("ARCADIA_ALERT_URLS", ""), errors),
    )  # fmt: skip
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    return loaded


def settings() -> Settings:
    """The settings the environment holds now: read when the definitions are built (a bad
    value stops the code location) and when a command or a sensor tick needs one."""
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
