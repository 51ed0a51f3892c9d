"""README "CLI" and "Dagster's `dg` CLI": their shell blocks, run as written on a demo.

A fresh warehouse database and Dagster instance stand for the demo's cluster: the lines that
point a shell at `.local/` (the cluster's URLs, `.local/demo.env`, `.local/dagster_home`) are
the only ones not run; the test's environment gives the same variables, the demo's first day
as `make demo` writes it. Then, as `make demo` does: `demo seed` of 75 days through today, and
the `dg` block as written, whose `dg launch` meters every day through yesterday; the last
complete month is priced (`monthly_statements_job`, what `statement_months_sensor` launches
on the demo). Then the CLI blocks, as written: each command is run by bash from the repo root
after the block's variable assignments, and must exit 0 and print what its comment says."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from arcadia_pipeline.db import source
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.utc import add_months, day_start, iter_days, month_end
from arcadia_pipeline_tests.e2e.conftest import REPO_ROOT, a_whole_utc_day
from arcadia_pipeline_tests.e2e.readme import (
    Ran,
    fresh_demo_environment,
    logical_lines,
    run_shell,
    section,
    shell_blocks,
    unique_name,
)

DEMO_DAYS = 75  # scripts/demo.sh
# The module's run (the demo's fixture, ~3 min under load) with room to spare.
MODULE_RUN = timedelta(minutes=15)


@dataclass(frozen=True)
class DemoDays:
    """The demo's dates, from the day the module runs on (UTC)."""

    today: date

    @property
    def last(self) -> date:  # yesterday: the last metered day
        return self.today - timedelta(days=1)

    @property
    def month(self) -> date:  # the last complete month
        return (self.today.replace(day=1) - timedelta(days=1)).replace(day=1)

    @property
    def first(self) -> date:  # the demo's first day
        return self.today - timedelta(days=DEMO_DAYS)


BILLING_KINDS = {
    "droplet_hours",
    "spaces_gb_month",
    "snapshot_gb_month",
    "droplet_backup_gb_month",
    "dns_zones",
}


def points_at_the_demo_cluster(line: str) -> bool:
    """A line that points the shell at the demo's own cluster and files under .local/."""
    return ".local/" in line


def commands(block: str) -> tuple[list[str], list[str], list[str]]:
    """The block's lines: variable assignments, the lines left out (they point at the demo
    cluster), and the commands, in order (comment-only lines dropped)."""
    assignments, left_out, run = [], [], []
    for line in logical_lines(block):
        if line.lstrip().startswith("#"):
            continue
        if points_at_the_demo_cluster(line):
            left_out.append(line)
        elif re.match(r"\w+=", line):
            assignments.append(line)
        else:
            run.append(line)
    return assignments, left_out, run


def run_block(block: str, env: dict) -> dict[str, Ran]:
    """Each command of the block, after its assignments; every one must exit 0."""
    assignments, _, run = commands(block)
    results = {}
    for command in run:
        result = run_shell("\n".join([*assignments, command]), env)
        result.command = command
        assert result.returncode == 0, result.failure()
        results[command] = result
    return results


def one(results: dict[str, Ran], prefix: str) -> Ran:
    [result] = [r for command, r in results.items() if command.startswith(prefix)]
    return result


def cli_blocks() -> tuple[str, str]:
    setup, examples = shell_blocks(section("CLI"))[:2]
    return setup, examples


def month_close_status_commands() -> list[str]:
    """The `$ ` lines of "Month close"'s first block (close-status on the demo)."""
    block = shell_blocks(section("Month close"))[0]
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def dg_block() -> str:
    [block] = shell_blocks(section("Dagster's `dg` CLI"))
    return block


@pytest.fixture(scope="module")
def days() -> DemoDays:
    return DemoDays(a_whole_utc_day(MODULE_RUN))


@pytest.fixture(scope="module")
def demo(server_url, admin_url, tmp_path_factory, days) -> dict:
    """The demo, metered by the README's `dg` block, then the CLI blocks run on it."""
    export = REPO_ROOT / f"{days.month:%Y-%m}.csv"  # the statements example's output
    if export.exists():
        pytest.fail(f"{export} exists already: the README's CLI block would overwrite it")
    home = tmp_path_factory.mktemp("readme_cli_home")
    with fresh_demo_environment(server_url, admin_url, unique_name("readme_cli"), home) as env:
        # What `export $(cat .local/demo.env)` gives: the demo's first day.
        env["ARCADIA_METERING_START_DATE"] = str(days.first)
        seeded = run_shell(f"arcadia-pipeline demo seed --days {DEMO_DAYS}", env)
        assert seeded.returncode == 0, seeded.failure()
        dg = run_block(dg_block(), env)
        priced = run_shell(f"dg launch --job monthly_statements_job --partition {days.month}", env)
        assert priced.returncode == 0, priced.failure()
        setup, examples = cli_blocks()
        try:
            results = {**run_block(setup, env), **run_block(examples, env)}
            [close_status] = month_close_status_commands()
            this_month = run_shell(close_status, env)
            exported = export.read_text()
        finally:
            export.unlink(missing_ok=True)
        with make_engine(env["ARCADIA_DATABASE_URL"]).connect() as connection:
            metered = connection.execute(
                text("SELECT min(day), max(day), count(*) FROM metering.inventory_snapshots")
            ).one()
            # The month's statements: one per deployment that existed in it (the seed's
            # sign-ups and churns fall on other days of the month as the date moves).
            versions = source.deployment_versions.c
            in_the_month = connection.execute(
                sa.select(sa.func.count(sa.distinct(versions.deployment_id))).where(
                    versions.valid_from < day_start(add_months(days.month, 1)),
                    sa.or_(versions.valid_to.is_(None), versions.valid_to > day_start(days.month)),
                )
            ).scalar_one()
    return {
        "dg": dg,
        "cli": results,
        "export": exported,
        "metered": tuple(metered),
        "deployments_in_the_month": in_the_month,
        "month_close": this_month,
    }


def test_only_the_lines_pointing_at_the_demo_cluster_are_left_out():
    setup, examples = cli_blocks()
    assert commands(setup)[1] == [
        'eval "$(scripts/pg-cluster.sh env .local/pg)"   # exports ARCADIA_DATABASE_URL',
        "export $(cat .local/demo.env)                   # the demo's first day (its first "
        "partition)",
    ]
    assert commands(examples)[1] == []
    assert [line.split("#")[0].strip() for line in commands(dg_block())[1]] == [
        'eval "$(scripts/pg-cluster.sh env .local/pg)"',
        "export $(cat .local/demo.env)",
        "export DAGSTER_HOME=$PWD/.local/dagster_home",
    ]
    # Every example names its dates through the block's variables: none is a fixed day.
    assert not re.search(r"\d{4}-\d{2}(-\d{2})?", examples.split("\n", 2)[2])


def test_the_dg_block_checks_lists_and_meters_every_day_through_yesterday(demo, days):
    assert "All definitions loaded successfully." in one(demo["dg"], "dg check defs").stdout
    listed = one(demo["dg"], "dg list defs").stdout
    for name in ("daily_metering_job", "monthly_usage_statements", "statement_months_sensor"):
        assert name in listed
    assert demo["metered"] == (days.first, days.last, DEMO_DAYS)


def test_the_setup_block_prints_yesterdays_quotes(demo):
    quotes = one(demo["cli"], ".venv/bin/arcadia-pipeline quotes").stdout
    assert "dep-0001" in quotes
    assert quotes == one(demo["cli"], "arcadia-pipeline quotes").stdout  # both of yesterday


def test_db_upgrade_and_demo_seed_say_what_they_did(demo, days):
    upgraded = one(demo["cli"], "arcadia-pipeline db upgrade").stdout
    assert upgraded == "metering schema is at the latest migration\n"
    seeded = one(demo["cli"], "arcadia-pipeline demo seed").stdout
    assert seeded.startswith("seeded 40 deployments (")
    assert seeded.endswith(f" from {days.first} to {days.today}\n")


def test_usage_prints_decimals_per_billing_kind_and_no_warning(demo):
    result = one(demo["cli"], "arcadia-pipeline usage dep-0001")
    usage = json.loads(result.stdout)
    assert set(usage) <= BILLING_KINDS and "droplet_hours" in usage
    assert all(Decimal(value) >= 0 for value in usage.values())
    assert result.stderr == ""  # every day of the range is metered


def test_quote_prints_the_month_to_date_quote_of_yesterday(demo, days):
    quote = json.loads(one(demo["cli"], "arcadia-pipeline quote dep-0001").stdout)
    assert (quote["deployment_id"], quote["as_of"]) == ("dep-0001", str(days.last))
    assert quote["period_start"] == str(days.last.replace(day=1))
    assert {"plan_code", "base_usd", "lines", "total_usd"} <= set(quote)


def test_quotes_prints_the_materialised_quotes_as_a_table(demo):
    table = one(demo["cli"], "arcadia-pipeline quotes").stdout
    assert "dep-0001" in table and "dep-0002" in table


def test_statement_prints_the_last_complete_months_statement(demo, days):
    statement = json.loads(one(demo["cli"], "arcadia-pipeline statement dep-0001").stdout)
    assert (statement["deployment_id"], statement["month"]) == ("dep-0001", f"{days.month:%Y-%m}")
    assert statement["status"] in {"draft", "closed"}  # closed after the grace days
    assert {"lines", "adjustments", "total_with_adjustments_usd"} <= set(statement)


def test_statements_writes_the_months_rows(demo, days):
    printed = one(demo["cli"], "arcadia-pipeline statements").stdout
    month = f"{days.month:%Y-%m}"
    count = demo["deployments_in_the_month"]
    assert re.fullmatch(
        rf"wrote \d+ rows \({count} deployments, 0 adjustments\) of {month} to {month}\.csv\n",
        printed,
    ), printed
    rows = int(printed.split()[1])
    assert demo["export"].startswith("row_type,month,deployment_id,")
    assert len(demo["export"].splitlines()) == rows + 1  # and its header


def test_close_status_prints_whether_the_month_can_close(demo, days):
    status = json.loads(one(demo["cli"], "arcadia-pipeline close-status").stdout)
    assert status == {
        "month": f"{days.month:%Y-%m}",
        "can_close": True,
        "missing_days": [],
        "failed_checks": {},
        "stale_days": [],
    }


def test_reconcile_finds_the_reseeded_source_unchanged(demo, days):
    found = json.loads(one(demo["cli"], "arcadia-pipeline reconcile").stdout)
    assert found == {
        "from": str(days.month),
        "to": str(days.last),
        "metered_days": (days.last - days.month).days + 1,
        "differing": {},
    }


def test_the_blocks_dates_are_yesterday_and_the_last_complete_month(days):
    """The block's shell arithmetic (GNU date, UTC) gives the days this test expects."""
    assignments, _, _ = commands(cli_blocks()[1])
    printed = run_shell("\n".join([*assignments, 'echo "$last $month"']), {"PATH": "/usr/bin:/bin"})
    assert printed.stdout == f"{days.last} {days.month:%Y-%m}\n"


def test_month_close_shows_this_months_close_status_as_the_demo_prints_it(demo, days):
    [command] = month_close_status_commands()
    result = demo["month_close"]
    assert result.returncode == 0, result.failure()
    assert json.loads(result.stdout) == {
        "month": f"{days.today:%Y-%m}",
        "can_close": False,
        # today is not over: it and the month's later days are not metered
        "missing_days": [str(day) for day in iter_days(days.today, month_end(days.today))],
        "failed_checks": {},
        "stale_days": [],
    }
    # The README shows that output, as of the day it was run.
    shown = json.loads(section("Month close").split(command, 1)[1].split("```", 1)[0])
    assert set(shown) == set(json.loads(result.stdout)) and shown["can_close"] is False
    assert [day[:7] for day in shown["missing_days"]] == [shown["month"]]
