"""README "Month close": the walk-through of a back-dated correction, run as written.

The commands are read from README.md itself: the seed command and the `export` its text
names, then every `$ ` line of the walk-through's block, each run by bash from the repo root
against a fresh warehouse database and a fresh Dagster instance (the repo's dagster.yaml).
What the README shows is then checked against what they printed: each launch's outcome (the
comment after `#`), each output line it shows, and the figures of dep-0002's statement and
of the export (which the README shows too: a figure here that the README lacks fails)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pandas as pd
import pytest

from arcadia_pipeline_tests.e2e.conftest import REPO_ROOT
from arcadia_pipeline_tests.e2e.readme import (
    Ran,
    fresh_demo_environment,
    run_shell,
    section,
    shell_blocks,
    unique_name,
)

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

EXPORT = REPO_ROOT / "oct.csv"  # the walk-through's output file, written in the repo root


def walk_through() -> tuple[str, str, list[tuple[str, list[str]]]]:
    """The seed command and the export the text names, and the block's `$ ` commands, each
    with the lines the README shows after it (its output, abridged or not)."""
    text = section("Month close")
    seed = re.search(r"`(arcadia-pipeline demo seed [^`]*)`", text).group(1)
    export = re.search(r"`(export ARCADIA_METERING_START_DATE=[^`]*)`", text).group(1)
    [block] = [b for b in shell_blocks(text) if "$ arcadia-pipeline demo delete-resource" in b]
    commands: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            commands[-1][1].append(line)
    return seed, export, commands


def outcome(command: str) -> str | None:
    """What the README says a command logs: the comment after its `#`."""
    return command.split("#", 1)[1].strip() if "#" in command else None


@pytest.fixture(scope="module")
def ran(server_url, admin_url, tmp_path_factory) -> dict:
    """Every command of the walk-through, run in order (the first failure stops it), the
    export it wrote, and its last launch run once more."""
    if EXPORT.exists():
        pytest.fail(f"{EXPORT} exists already: the walk-through would overwrite it")
    seed, export, commands = walk_through()
    home = tmp_path_factory.mktemp("readme_month_close_home")
    with fresh_demo_environment(server_url, admin_url, unique_name("readme_close"), home) as env:
        name, value = export.removeprefix("export ").split("=", 1)
        env[name] = value  # `export` in the README's shell: here, the commands' environment
        results = []
        try:
            for command in [seed, *(command for command, _ in commands)]:
                result = run_shell(command, env)
                assert result.returncode == 0, result.failure()
                results.append(result)
            export_rows = pd.read_csv(EXPORT, dtype=str, keep_default_na=False)
            [*_, last_launch] = [c for c, _ in commands if c.startswith("dg launch")]
            again = run_shell(last_launch, env)
            assert again.returncode == 0, again.failure()
        finally:
            EXPORT.unlink(missing_ok=True)
    return {"results": results, "export": export_rows, "again": again}


def by_command(ran, fragment: str) -> list[Ran]:
    return [result for result in ran["results"] if fragment in result.command]


def test_the_walk_through_names_the_correction_command():
    seed, export, commands = walk_through()
    assert seed == "arcadia-pipeline demo seed --end-date 2026-11-30"
    assert export == "export ARCADIA_METERING_START_DATE=2026-09-16"
    assert any(c.startswith("arcadia-pipeline demo delete-resource ") for c, _ in commands)
    assert not any("…" in command for command, _ in commands)  # every command is real


def test_each_launch_logs_the_outcome_the_readme_shows(ran):
    first, second = by_command(ran, "--job monthly_statements_job")
    assert outcome(first.command) == "2026-10 closed, 0 adjustment(s) added"
    assert outcome(second.command) == "2026-10 closed, 1 adjustment(s) added"
    for launch in (first, second):
        logged = launch.stdout + launch.stderr
        assert f"monthly_usage_statements: {outcome(launch.command)}" in logged


def test_each_plain_output_line_the_readme_shows_is_printed(ran):
    _, _, commands = walk_through()
    shown = {command: lines for command, lines in commands}
    checked = 0
    for result in ran["results"][1:]:
        for line in shown[result.command]:
            if not line.startswith(("{", " ")):  # the statement's JSON, abridged: below
                assert line in result.stdout.splitlines(), (line, result.stdout)
                checked += 1
    assert checked == 2  # the deletion's line and the export's


def test_the_statement_of_dep_0002_has_the_figures_the_readme_shows(ran):
    [result] = by_command(ran, "arcadia-pipeline statement dep-0002")
    statement = json.loads(result.stdout)
    readme = section("Month close")
    periods = [(p["plan_code"], p["base_usd"]) for p in statement["plan_periods"]]
    assert periods == [("studio", "33.07"), ("starter", "6.77")]
    spaces = {line["billing_kind"]: line for line in statement["lines"]}["spaces_gb_month"]
    [adjustment] = statement["adjustments"]
    figures = {
        "status": (statement["status"], "closed"),
        "base_usd": (statement["base_usd"], "39.84"),
        "spaces amount_usd": (spaces["amount_usd"], "1.47"),
        "spaces qty": (spaces["qty"], "255.665386648745519714"),
        "spaces included_qty": (spaces["included_qty"], "182.289501194743130227"),
        "total_usd": (statement["total_usd"], "41.31"),
        "adjustment kind": (adjustment["billing_kind"], "spaces_gb_month"),
        "adjustment qty_delta": (adjustment["qty_delta"], "-75.463548387096774194"),
        "adjustment amount_usd": (adjustment["amount_usd"], "-1.47"),
        "total_with_adjustments_usd": (statement["total_with_adjustments_usd"], "39.84"),
    }
    assert {k: got for k, (got, _) in figures.items()} == {k: w for k, (_, w) in figures.items()}
    for key, (_, figure) in figures.items():
        assert f'"{figure}"' in readme, f"the README does not show {key} {figure}"


def test_the_export_bills_sign_up_and_churn_as_the_readme_says(ran):
    rows = ran["export"]
    bases = rows[rows.row_type == "base"].set_index("deployment_id")["amount_usd"]
    assert (bases["dep-0021"], bases["dep-0029"]) == ("13.88", "12.49")
    readme = " ".join(section("Month close").split())
    assert "`dep-0021` (starter, signed up 2026-10-10 11:48:12) has a base of 13.88" in readme
    assert "`dep-0029` (starter, churned 2026-10-20 08:26:53) 12.49" in readme
    assert len(rows) == 241 and rows.deployment_id.nunique() == 40
    assert (rows.row_type == "adjustment").sum() == 1
    adjustment = rows[rows.row_type == "adjustment"].iloc[0]
    assert (adjustment.deployment_id, Decimal(adjustment.amount_usd)) == (
        "dep-0002",
        Decimal("-1.47"),
    )


def test_launching_the_month_again_adds_nothing(ran):
    """'launching the month again adds nothing': the README's last launch, run once more."""
    assert "monthly_usage_statements: 2026-10 closed, 0 adjustment(s) added" in (
        ran["again"].stdout + ran["again"].stderr
    )
