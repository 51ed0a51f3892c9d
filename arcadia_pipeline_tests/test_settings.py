"""Every ARCADIA_* setting is read in one place, with one error naming each bad value."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from arcadia_pipeline.definitions import defs as load_definitions
from arcadia_pipeline.settings import (
    SettingsError,
    load_settings,
    source_url,
    source_url_var,
    warehouse_url,
)

PACKAGE = Path(__file__).resolve().parents[1] / "arcadia_pipeline"


def test_defaults():
    loaded = load_settings({})
    assert loaded.metering_start_date == date(2025, 1, 1)
    assert loaded.catchup_lookback_days == 7
    assert loaded.corrections_lookback_days == 35
    assert loaded.automation_running is True
    assert loaded.max_days_per_run is None  # a range is one run
    assert loaded.pg_work_mem == "128MB"


def test_values_are_parsed():
    loaded = load_settings(
        {
            "ARCADIA_METERING_START_DATE": "2024-02-29",
            "ARCADIA_CATCHUP_LOOKBACK_DAYS": "3",
            "ARCADIA_CORRECTIONS_LOOKBACK_DAYS": "60",
            "ARCADIA_AUTOMATION": "Stopped",
            "ARCADIA_MAX_DAYS_PER_RUN": "31",
        }
    )
    assert loaded.metering_start_date == date(2024, 2, 29)
    assert (loaded.catchup_lookback_days, loaded.corrections_lookback_days) == (3, 60)
    assert loaded.automation_running is False
    assert loaded.max_days_per_run == 31


def test_one_error_names_every_bad_variable():
    with pytest.raises(SettingsError) as raised:
        load_settings(
            {
                "ARCADIA_METERING_START_DATE": "20250101",
                "ARCADIA_CATCHUP_LOOKBACK_DAYS": "0",
                "ARCADIA_CORRECTIONS_LOOKBACK_DAYS": "1e9",
                "ARCADIA_AUTOMATION": "maybe",
                "ARCADIA_MAX_DAYS_PER_RUN": "a month",
            }
        )
    message = str(raised.value)
    assert "\n" not in message
    for name in (
        "ARCADIA_METERING_START_DATE",
        "ARCADIA_CATCHUP_LOOKBACK_DAYS",
        "ARCADIA_CORRECTIONS_LOOKBACK_DAYS",
        "ARCADIA_AUTOMATION",
        "ARCADIA_MAX_DAYS_PER_RUN",
    ):
        assert name in message


@pytest.mark.parametrize("value", ["2025-02-30", "2025-1-01", "yesterday", "-1", "367"])
def test_malformed_and_absurd_values_are_refused(value):
    with pytest.raises(SettingsError):
        load_settings(
            {"ARCADIA_METERING_START_DATE": value, "ARCADIA_CATCHUP_LOOKBACK_DAYS": value}
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("1", 1), ("7", 7), (" 30 ", 30), ("0031", 31), ("366", 366)],
)
def test_max_days_per_run_is_unset_or_a_whole_number_of_days_up_to_a_year(value, expected):
    environ = {} if value is None else {"ARCADIA_MAX_DAYS_PER_RUN": value}
    assert load_settings(environ).max_days_per_run == expected


@pytest.mark.parametrize(
    "value", ["0", "367", "-1", "1.5", "7d", "1e2", "seven", " ", "²", "٣", "9" * 5000]
)
def test_max_days_per_run_refuses_anything_else_naming_the_variable(value):
    with pytest.raises(SettingsError) as raised:
        load_settings({"ARCADIA_MAX_DAYS_PER_RUN": value})
    assert str(raised.value).startswith(
        "invalid settings: ARCADIA_MAX_DAYS_PER_RUN must be a whole number of days from 1 to 366"
    )


@pytest.mark.parametrize("value", ["64kB", "256MB", "2GB"])
def test_work_mem_is_a_postgresql_size(value):
    assert load_settings({"ARCADIA_PG_WORK_MEM": value}).pg_work_mem == value


@pytest.mark.parametrize("value", ["63kB", "3GB", "128", "128mb", "1.5GB", "-1MB", "lots"])
def test_work_mem_refuses_anything_else_naming_the_variable(value):
    with pytest.raises(SettingsError, match="ARCADIA_PG_WORK_MEM must be a size from 64kB to 2GB"):
        load_settings({"ARCADIA_PG_WORK_MEM": value})


@pytest.mark.parametrize("name", ["ARCADIA_CATCHUP_LOOKBACK_DAYS", "ARCADIA_CLOSE_GRACE_DAYS"])
def test_digits_other_than_ascii_are_refused_not_crashed_on(name):
    """'²'.isdigit() is true but int('²') raises: a SettingsError naming it, not a ValueError."""
    with pytest.raises(SettingsError, match=name):
        load_settings({name: "²"})


def test_the_source_defaults_to_the_warehouse(monkeypatch):
    monkeypatch.setenv("ARCADIA_DATABASE_URL", "postgresql+psycopg2://w@127.0.0.1/arcadia")
    monkeypatch.delenv("ARCADIA_SOURCE_DATABASE_URL", raising=False)
    assert source_url_var() == "ARCADIA_DATABASE_URL"
    assert source_url() == warehouse_url()
    monkeypatch.setenv("ARCADIA_SOURCE_DATABASE_URL", "postgresql+psycopg2://r@127.0.0.1/app")
    assert source_url_var() == "ARCADIA_SOURCE_DATABASE_URL"
    assert source_url() == "postgresql+psycopg2://r@127.0.0.1/app"
    monkeypatch.delenv("ARCADIA_DATABASE_URL")
    with pytest.raises(SettingsError, match="ARCADIA_DATABASE_URL is not set"):
        warehouse_url()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ARCADIA_CATCHUP_LOOKBACK_DAYS", "soon"),
        ("ARCADIA_MAX_DAYS_PER_RUN", "0"),
        ("ARCADIA_PG_WORK_MEM", "lots"),
    ],
)
def test_a_bad_setting_stops_the_code_location_from_loading_with_its_name(name, value, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_definitions()
    assert f"SettingsError: invalid settings: {name}" in f"SettingsError: {raised.value}"


def test_importing_the_package_reads_no_setting():
    """Settings are read when the definitions are built, never at import: a fresh
    interpreter with every setting bad imports every module of the package."""
    modules = [
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and path.name != "__init__.py"
    ]
    bad = {
        "ARCADIA_METERING_START_DATE": "someday",
        "ARCADIA_CATCHUP_LOOKBACK_DAYS": "soon",
        "ARCADIA_MAX_DAYS_PER_RUN": "0",
        "ARCADIA_PG_WORK_MEM": "lots",
        "ARCADIA_AUTOMATION": "maybe",
        "ARCADIA_CLOSE_GRACE_DAYS": "-1",
    }
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import importlib; [importlib.import_module(m) for m in {modules}]",
        ],
        env={**bad, "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
