"""The operator's shell: the real `arcadia-pipeline` and `dagster` console scripts, as subprocesses.

One module-wide demo: `db upgrade`, `demo seed` of 3 deployments over 2025-02-19..28, then
`dagster asset materialize --partition-range` of all five assets, against the session's test
database. The seed's tour gives those three deployments a history: dep-0001 renamed, dep-0002
changing plan, dep-0003 signing up and churning within the range. The look-up commands are
checked against the library (`usage_for_period`), against the materialised quotes, and against
quotes worked out here from docs/domain.md's catalog, prorated by the deployments' versions.
The error cases come last (one of them could otherwise clobber the demo data if it misbehaved).
`db roles` itself is exercised in db/test_roles.py; here its arguments and its missing URL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.catalog.plans import Plan
from arcadia_pipeline.cli.main import build_parser
from arcadia_pipeline.cli.output import iso_date, month_arg
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import STATEMENT_TABLES
from arcadia_pipeline.pricing.proration import PlanPeriod, period_bases, prorated_plan
from arcadia_pipeline.pricing.usage import usage_for_period
from arcadia_pipeline_tests.billing.test_quotes import BASE_USD, INCLUDED, KINDS, UNIT_PRICE
from arcadia_pipeline_tests.conftest import DATA_TABLES
from arcadia_pipeline_tests.statements.support import FEBRUARY, price_month
from arcadia_pipeline_tests.support import ASSETS

BIN = Path(sys.executable).parent
CLI = str(BIN / "arcadia-pipeline")
DAGSTER = str(BIN / "dagster")
REPO = Path(__file__).resolve().parents[1]

FIRST, LAST = date(2025, 2, 19), date(2025, 2, 28)  # the 10 seeded days before 2025-03-01
DEPLOYMENTS = ("dep-0001", "dep-0002", "dep-0003")
MONEY = re.compile(r"\d+\.\d\d")  # dollars and cents, as a string
PLAIN_DECIMAL = re.compile(r"\d+(\.\d+)?")  # no exponent, no sign
MONTH_BEGINS, MONTH_ENDS = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
MONTH_SECONDS = 28 * 86400
# A quote line's keys, in order: those of a statement line.
STATEMENT_LINE_KEYS = (
    "billing_kind", "qty", "billable_qty", "included_qty", "overage_qty", "unit_price_usd",
    "amount_usd", "tiers",
)  # fmt: skip


def run(args: list[str], database_url: str | None, **extra_env: str) -> subprocess.CompletedProcess:
    """Run a console script with ARCADIA_DATABASE_URL = database_url (None: unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCADIA_")}
    if database_url is not None:
        env["ARCADIA_DATABASE_URL"] = database_url
    env.update(extra_env)
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def cli(*args: str, url: str | None) -> subprocess.CompletedProcess:
    return run([CLI, *args], url)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo(database_url, tmp_path_factory):
    """The demo as an operator runs it, entirely through console scripts."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)}"))
    ok(cli("db", "upgrade", url=database_url))
    seeded = ok(
        cli(
            "demo",
            *("seed", "--deployments", "3", "--days", "10", "--seed", "1"),
            *("--end-date", "2025-03-01"),
            url=database_url,
        )
    )
    dagster_home = tmp_path_factory.mktemp("dagster_home")
    materialised = run(
        [DAGSTER, "asset", "materialize", "-m", "arcadia_pipeline.definitions"]
        + ["--select", ",".join(ASSETS), "--partition-range", f"{FIRST}...{LAST}"],
        database_url,
        DAGSTER_HOME=str(dagster_home),
    )
    assert materialised.returncode == 0, materialised.stderr[-5000:]
    return {"engine": engine, "url": database_url, "seeded": seeded, "home": dagster_home}


# ---- February's terms worked out here from the source (docs/domain.md "proration") ---------


def source_periods(engine, deployment_id: str) -> list[dict]:
    """The deployment's plans in February 2025 from the source, in time order: consecutive
    versions on one plan (a rename) are one period; an open version counts to the month's
    end (every version of the demo starts before the last metered day, 2025-02-28). Each
    with its seconds and its part of the base fee by the reference rule (period_bases)."""
    with engine.connect() as connection:
        versions = connection.execute(
            text(
                "SELECT plan_code, valid_from, valid_to FROM arcadia.deployment_versions "
                "WHERE deployment_id = :d ORDER BY valid_from"
            ),
            {"d": deployment_id},
        ).all()
    periods: list[dict] = []
    for plan, valid_from, valid_to in versions:
        start, end = max(valid_from, MONTH_BEGINS), min(valid_to or MONTH_ENDS, MONTH_ENDS)
        if end <= start:
            continue
        if periods and periods[-1]["plan_code"] == plan and periods[-1]["valid_to"] == start:
            periods[-1]["valid_to"] = end
        else:
            periods.append({"plan_code": plan, "valid_from": start, "valid_to": end})
    bases = period_bases(as_plan_periods(periods), MONTH_SECONDS)
    return [{**period, "base_usd": base} for period, base in zip(periods, bases, strict=True)]


def as_plan_periods(periods: list[dict]) -> list[PlanPeriod]:
    return [
        PlanPeriod(
            Plan(p["plan_code"], BASE_USD[p["plan_code"]], INCLUDED[p["plan_code"]]),
            Decimal(int((p["valid_to"] - p["valid_from"]).total_seconds())),
        )
        for p in periods
    ]


def prorated_terms(engine, deployment_id: str) -> tuple[str, Decimal, dict[str, Decimal]]:
    """(last plan, base_usd, included per billing kind) of February by the reference rule
    (prorated_plan): each plan's base fee and inclusions weighted by its share of the month."""
    periods = source_periods(engine, deployment_id)
    assert periods, f"{deployment_id} existed in February"
    terms = prorated_plan(as_plan_periods(periods), MONTH_SECONDS)
    return terms.plan_code, terms.base_usd, terms.included


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_lines(included: dict[str, Decimal], usage: dict[str, Decimal]) -> dict[str, dict]:
    """docs/domain.md's rule per kind: round_half_up(max(0, usage - included) * price, 0.01)."""
    lines = {}
    for kind in KINDS:
        used = usage.get(kind, Decimal(0))
        over = max(Decimal(0), used - included[kind])
        lines[kind] = {
            "qty": used,
            "included_qty": included[kind],
            "overage_qty": over,
            "unit_price_usd": UNIT_PRICE[kind],
            "amount_usd": cents(over * UNIT_PRICE[kind]),
        }
    return lines


def test_db_upgrade_is_idempotent(database_url):
    def version():
        with make_engine(database_url).connect() as connection:
            return connection.execute(
                text("SELECT version_num FROM metering.alembic_version")
            ).all()

    before = version()
    for _ in range(2):  # the session database is already at head: nothing to do, no error
        assert "latest migration" in ok(cli("db", "upgrade", url=database_url))
    assert version() == before and len(before) == 1


def test_demo_seed_then_dagster_cli_materialises_the_range_in_one_run(demo):
    assert demo["seeded"].startswith("seeded 3 deployments (5 versions: 1 signed up, 1 churned")
    with demo["engine"].connect() as connection:
        deployments = connection.execute(
            text("SELECT DISTINCT deployment_id FROM arcadia.deployment_versions ORDER BY 1")
        ).scalars()
        assert tuple(deployments) == DEPLOYMENTS
        quoted_days = connection.execute(
            text("SELECT DISTINCT as_of_date FROM metering.deployment_quotes ORDER BY 1")
        ).scalars()
        assert list(quoted_days) == [date(2025, 2, day) for day in range(19, 29)]
    # Single-run backfill policy: the whole 10-day range was one run, and it succeeded.
    with DagsterInstance.from_config(str(demo["home"])) as instance:
        runs = instance.get_runs()
    assert len(runs) == 1
    assert runs[0].status == DagsterRunStatus.SUCCESS
    assert runs[0].tags["dagster/asset_partition_range_start"] == FIRST.isoformat()
    assert runs[0].tags["dagster/asset_partition_range_end"] == LAST.isoformat()


# Every deployment over the seeded range, and a single day (each call is a fresh process).
@pytest.mark.parametrize(
    ("deployment_id", "first", "last"),
    [(dep, FIRST, LAST) for dep in DEPLOYMENTS]
    + [("dep-0001", date(2025, 2, 23), date(2025, 2, 23))],
)
def test_usage_prints_usage_for_period_exactly(demo, deployment_id, first, last):
    printed = json.loads(
        ok(cli("usage", deployment_id, "--from", str(first), "--to", str(last), url=demo["url"]))
    )
    with demo["engine"].connect() as connection:
        expected = usage_for_period(connection, deployment_id, first, last)
    assert expected, "the demo gives every deployment some usage"
    assert set(printed) == set(expected)
    for kind, value in printed.items():
        assert isinstance(value, str) and PLAIN_DECIMAL.fullmatch(value), value
        assert Decimal(value) == expected[kind], kind


def test_usage_over_days_never_metered_says_so_beside_the_figures(demo):
    result = cli("usage", "dep-0001", "--from", "2025-02-15", "--to", str(LAST), url=demo["url"])
    printed = json.loads(ok(result))
    with demo["engine"].connect() as connection:
        expected = usage_for_period(connection, "dep-0001", FIRST, LAST)
    assert {kind: Decimal(value) for kind, value in printed.items()} == expected
    assert result.stderr.splitlines() == [
        "arcadia-pipeline: warning: 4 day(s) of the range are not metered "
        "(2025-02-15 to 2025-02-18); the usage leaves them out"
    ]


def test_usage_names_the_days_not_metered_as_ranges(demo):
    # Metered: 2025-02-19..28. Missing: four days before them and one after.
    result = cli("usage", "dep-0001", "--from", "2025-02-15", "--to", "2025-03-01", url=demo["url"])
    assert json.loads(ok(result))
    assert result.stderr.splitlines() == [
        "arcadia-pipeline: warning: 5 day(s) of the range are not metered "
        "(2025-02-15 to 2025-02-18, 2025-03-01); the usage leaves them out"
    ]


@pytest.mark.parametrize("deployment_id", DEPLOYMENTS)
def test_quote_prints_the_month_to_date_quote_as_json(demo, deployment_id):
    printed = json.loads(ok(cli("quote", deployment_id, "--as-of", str(LAST), url=demo["url"])))
    plan, base, included = prorated_terms(demo["engine"], deployment_id)
    with demo["engine"].connect() as connection:
        usage = usage_for_period(connection, deployment_id, date(2025, 2, 1), LAST)
        stored_total = connection.execute(
            text(
                "SELECT total_usd FROM metering.deployment_quotes "
                "WHERE deployment_id = :d AND as_of_date = :a"
            ),
            {"d": deployment_id, "a": LAST},
        ).scalar_one()

    assert set(printed) == {
        *("deployment_id", "plan_code", "period_start", "as_of"),
        *("base_usd", "lines", "minimum_usd", "minimum_true_up_usd", "total_usd", "projected"),
    }
    assert printed["projected"] is False  # priced live on the month to date
    # No plan of the shipped catalog has a minimum commitment: nothing to true up.
    assert (printed["minimum_usd"], printed["minimum_true_up_usd"]) == (None, "0.00")
    assert printed["deployment_id"] == deployment_id
    assert printed["plan_code"] == plan  # the last plan of the month
    assert (printed["period_start"], printed["as_of"]) == ("2025-02-01", "2025-02-28")
    # The seed's history starts on 2025-02-19: at most 10 of February's 28 days are billed.
    assert MONEY.fullmatch(printed["base_usd"])
    assert Decimal(printed["base_usd"]) == base < BASE_USD[plan]

    # Worked out here from the catalog and the versions: a line per kind the plans include,
    # in the statement's vocabulary (compared with the statement itself further down).
    lines = expected_lines(included, usage)
    assert sorted(line["billing_kind"] for line in printed["lines"]) == sorted(KINDS)
    for line in printed["lines"]:
        assert list(line) == list(STATEMENT_LINE_KEYS)
        want = lines[line["billing_kind"]]
        for key in ("qty", "included_qty", "overage_qty", "unit_price_usd"):
            assert PLAIN_DECIMAL.fullmatch(line[key]), line
            assert Decimal(line[key]) == want[key], (line["billing_kind"], key)
        assert line["billable_qty"] == line["qty"]  # the shipped catalog caps nothing
        assert MONEY.fullmatch(line["amount_usd"]), line
        assert Decimal(line["amount_usd"]) == want["amount_usd"], line["billing_kind"]
        # Checkable by hand from the printed figures alone.
        qty, included_qty, over, price = (
            Decimal(line[key]) for key in ("qty", "included_qty", "overage_qty", "unit_price_usd")
        )
        assert over == max(Decimal(0), qty - included_qty)
        assert Decimal(line["amount_usd"]) == cents(over * price)
        # The shipped catalog's one open tier per kind: all the overage in it, or no tier.
        tier = {"from_qty": "0", "up_to_qty": None, "qty": line["overage_qty"],
                "unit_price_usd": line["unit_price_usd"]}  # fmt: skip
        assert [{k: v for k, v in t.items() if k != "amount_usd"} for t in line["tiers"]] == (
            [tier] if over else []
        )
        assert sum(Decimal(t["amount_usd"]) for t in line["tiers"]) == over * price

    total = base + sum(line["amount_usd"] for line in lines.values())
    assert MONEY.fullmatch(printed["total_usd"])
    assert Decimal(printed["total_usd"]) == total
    # The live quote agrees with the materialised one.
    assert Decimal(printed["total_usd"]) == stored_total


def test_quotes_prints_the_materialised_quotes_as_a_table(demo):
    printed = ok(cli("quotes", "--as-of", str(LAST), url=demo["url"]))
    with demo["engine"].connect() as connection:
        rows = connection.execute(
            text(
                "SELECT deployment_id, plan_code, base_usd, overage_usd, total_usd "
                "FROM metering.deployment_quotes WHERE as_of_date = :a ORDER BY 1"
            ),
            {"a": LAST},
        ).all()
    assert [row.deployment_id for row in rows] == list(DEPLOYMENTS)
    lines = printed.splitlines()
    assert "2025-02-28" in lines[0]
    # One row per quote, with its plan and amounts as stored, in deployment order.
    table = [line.split() for line in lines if line.startswith("dep-")]
    assert table == [
        [r.deployment_id, r.plan_code, str(r.base_usd), str(r.overage_usd), str(r.total_usd)]
        for r in rows
    ]
    grand_total = sum(row.total_usd for row in rows)
    assert lines[-1].split() == ["total", str(grand_total)]


@pytest.mark.parametrize("command", [["quote", "dep-0001"], ["quotes"]], ids=lambda c: c[0])
def test_quote_and_quotes_refuse_a_day_not_metered_alike(demo, command):
    result = cli(*command, "--as-of", "2025-01-15", url=demo["url"])
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "arcadia-pipeline: error: 2025-01-15 is not metered (no deployment_quotes as of that "
        "day): materialise it first\n"
    )


@pytest.mark.parametrize("command", [["quote", "dep-0001"], ["quotes"]], ids=lambda c: c[0])
def test_quote_and_quotes_of_today_say_it_is_not_over(demo, command):
    today = datetime.now(UTC).date()
    result = cli(*command, "--as-of", str(today), url=demo["url"])
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"arcadia-pipeline: error: {today} is not over yet (UTC): the last day that can be "
        f"metered is {today - timedelta(days=1)}\n"
    )


@pytest.fixture(scope="module")
def february_statements(demo):
    """February priced as a draft (on 2025-03-02, before its close), in process as the
    monthly_statements_job runs it; the tables emptied first (other modules price months)."""
    with demo["engine"].begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(t.fullname for t in STATEMENT_TABLES)}"))
    with pytest.MonkeyPatch.context() as monkeypatch, DagsterInstance.ephemeral() as instance:
        price_month(FEBRUARY, datetime(2025, 3, 2, 12, tzinfo=UTC), instance, monkeypatch)
    return demo


@pytest.mark.parametrize("deployment_id", DEPLOYMENTS)
def test_statement_prints_the_plan_periods_of_the_month(february_statements, deployment_id):
    demo = february_statements
    printed = json.loads(ok(cli("statement", deployment_id, "--month", "2025-02", url=demo["url"])))
    plan, base, _ = prorated_terms(demo["engine"], deployment_id)
    assert (printed["status"], printed["plan_code"]) == ("draft", plan)
    assert Decimal(printed["base_usd"]) == base
    # Each plan of the month with its dates and its own prorated base fee, in time order.
    periods = printed["plan_periods"]
    assert [set(p) for p in periods] == [{"plan_code", "valid_from", "valid_to", "base_usd"}] * len(
        periods
    )
    assert [
        {
            "plan_code": p["plan_code"],
            "valid_from": datetime.fromisoformat(p["valid_from"]),
            "valid_to": datetime.fromisoformat(p["valid_to"]),
            "base_usd": Decimal(p["base_usd"]),
        }
        for p in periods
    ] == source_periods(demo["engine"], deployment_id)
    assert all(MONEY.fullmatch(p["base_usd"]) for p in periods)


@pytest.mark.parametrize("deployment_id", DEPLOYMENTS)
def test_the_quote_through_the_months_last_day_reads_as_its_statement(
    february_statements, deployment_id
):
    # One vocabulary: the quote as of 2025-02-28 covers the whole month, so its lines, base
    # and total are the draft statement's, key for key and figure for figure.
    demo = february_statements
    quote = json.loads(ok(cli("quote", deployment_id, "--as-of", str(LAST), url=demo["url"])))
    statement = json.loads(
        ok(cli("statement", deployment_id, "--month", "2025-02", url=demo["url"]))
    )
    assert quote["lines"] == statement["lines"]
    assert [list(line) for line in statement["lines"]] == [list(STATEMENT_LINE_KEYS)] * len(KINDS)
    for key in ("plan_code", "base_usd", "total_usd"):
        assert quote[key] == statement[key], key


def test_statement_shows_a_plan_change_as_two_plan_periods(february_statements):
    # The tour: dep-0002 changes plan mid-range; dep-0001's rename keeps one period.
    demo = february_statements
    changed = json.loads(ok(cli("statement", "dep-0002", "--month", "2025-02", url=demo["url"])))
    first, second = changed["plan_periods"]
    assert first["plan_code"] != second["plan_code"] == changed["plan_code"]
    assert first["valid_to"] == second["valid_from"]
    assert first["valid_from"] == "2025-02-19T00:00:00+00:00"
    assert second["valid_to"] == "2025-03-01T00:00:00+00:00"  # open: to the month's end
    renamed = json.loads(ok(cli("statement", "dep-0001", "--month", "2025-02", url=demo["url"])))
    assert [p["plan_code"] for p in renamed["plan_periods"]] == ["starter"]


# ---- --help: every date says its format, every range that it includes both days ---------


def date_options() -> list[tuple[str, argparse.Action]]:
    """(command, option) of every option of every (sub)command that takes a day or a month."""
    found, parsers = [], [("arcadia-pipeline", build_parser())]
    while parsers:
        name, parser = parsers.pop()
        for action in parser._actions:  # argparse has no public walk of its options
            if isinstance(action, argparse._SubParsersAction):
                parsers += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
            elif action.type in (iso_date, month_arg):
                found.append((name, action))
    return found


def test_help_gives_every_date_its_format_and_every_range_its_ends():
    options = {(name, action.option_strings[0]): action for name, action in date_options()}
    assert sorted(options) == [
        ("arcadia-pipeline close-status", "--month"),
        ("arcadia-pipeline demo seed", "--end-date"),
        ("arcadia-pipeline quote", "--as-of"),
        ("arcadia-pipeline quotes", "--as-of"),
        ("arcadia-pipeline reconcile", "--from"),
        ("arcadia-pipeline reconcile", "--to"),
        ("arcadia-pipeline statement", "--month"),
        ("arcadia-pipeline statements", "--month"),
        ("arcadia-pipeline usage", "--from"),
        ("arcadia-pipeline usage", "--to"),
    ]
    for (name, option), action in options.items():
        if action.type is iso_date:
            assert action.metavar == "YYYY-MM-DD", name
            assert action.help.endswith(" (YYYY-MM-DD, UTC)"), (name, action.help)
        else:
            assert (action.metavar, action.help) == ("YYYY-MM", "billing month (UTC)"), name
        if option in ("--from", "--to"):
            assert action.help.split(" (")[0] in ("first day, included", "last day, included")


def test_usage_help_says_the_format_and_that_the_range_is_inclusive():
    result = run([CLI, "usage", "--help"], None, COLUMNS="100")
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "--from YYYY-MM-DD first day, included (YYYY-MM-DD, UTC)" in lines
    assert "--to YYYY-MM-DD last day, included (YYYY-MM-DD, UTC)" in lines
    assert lines[-1] == (
        "Dates are UTC days written YYYY-MM-DD; a --from/--to range includes both days."
    )


# ---- errors: non-zero exit, exactly one line on stderr that names the problem -------------


def assert_one_line_error(result: subprocess.CompletedProcess, *mentions: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for mention in mentions:
        assert mention in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (
            ["usage", "dep-9999", "--from", "2025-02-19", "--to", "2025-02-28"],
            ["dep-9999", "arcadia.deployment_versions"],
        ),
        (["quote", "dep-9999", "--as-of", "2025-02-28"], ["dep-9999", "deployment_versions"]),
        (["statement", "dep-9999", "--month", "2025-02"], ["dep-9999", "deployment_versions"]),
        (["usage", "dep-0001", "--from", "2025-02-30", "--to", "2025-03-01"], ["2025-02-30"]),
        (["quote", "dep-0001", "--as-of", "yesterday"], ["yesterday"]),
        (["usage", "dep-0001", "--from", "20250219", "--to", "2025-02-28"], ["20250219"]),
        (["quote", "dep-0001", "--as-of", "2025-W09-5"], ["2025-W09-5"]),
        (
            ["usage", "dep-0001", "--from", "2025-02-28", "--to", "2025-02-19"],
            ["2025-02-28", "2025-02-19"],
        ),
        (["quote", "dep-0001"], ["--as-of"]),
        (["usage", "dep-0001", "--from", "2025-02-19", "--to", "9999-12-31"], ["9999-12-31"]),
        (["quote", "dep-0001", "--as-of", "9999-12-31"], ["9999-12-31", "after today"]),
        (["quotes", "--as-of", "9999-12-31"], ["9999-12-31", "after today"]),
        (["quote", "dep-0001", "--as-of", "2025-01-15"], ["2025-01-15", "not metered"]),
        (["bill", "dep-0001"], ["bill"]),
        (["demo", "seed", "--deployments", "0"], ["deployments"]),
        (["db", "roles", "--pipeline-login"], ["--pipeline-login"]),
        (["db", "roles", "--owner", "x"], ["--owner"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_arguments_fail_with_one_line(demo, args, mentions):
    assert_one_line_error(cli(*args, url=demo["url"]), *mentions)


@pytest.mark.parametrize(
    "args",
    [
        ["db", "upgrade"],
        ["db", "roles", "--pipeline-login", "warehouse"],
        ["demo", "seed", "--deployments", "3", "--days", "10", "--end-date", "2025-03-01"],
        ["usage", "dep-0001", "--from", "2025-02-19", "--to", "2025-02-28"],
        ["quote", "dep-0001", "--as-of", "2025-02-28"],
        ["quotes", "--as-of", "2025-02-28"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_missing_database_url_fails_with_one_line_naming_it(demo, args):
    assert_one_line_error(cli(*args, url=None), "ARCADIA_DATABASE_URL")


def test_an_unreachable_database_fails_with_one_line(demo):
    missing = make_url(demo["url"]).set(database="arcadia_no_such_database")
    result = cli(
        *("usage", "dep-0001", "--from", "2025-02-19", "--to", "2025-02-28"),
        url=missing.render_as_string(hide_password=False),
    )
    assert_one_line_error(result, "arcadia_no_such_database")


@contextmanager
def row_for_one_test(engine, insert: str, table: str, deployment_id: str, **params):
    """One row inserted for the body of a test and deleted after it (the demo is shared)."""
    with engine.begin() as connection:
        connection.execute(text(insert), params)
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(
                text(f"DELETE FROM {table} WHERE deployment_id = :d"), {"d": deployment_id}
            )


def test_a_plan_missing_from_the_catalog_fails_with_one_line(demo):
    # The live quote prices the plans of the day's inventory snapshot: one that names a plan
    # the catalog does not have (validation keeps such a version out of a new snapshot).
    odd = (
        "INSERT INTO metering.inventory_deployments (day, deployment_id, starts_at, ends_at, "
        "name, plan_code, valid_from, valid_to, recorded_at) VALUES (:d, 'dep-odd', :d, :d + 1, "
        "'Odd', 'platinum', :d, NULL, :d)"
    )
    with row_for_one_test(demo["engine"], odd, "metering.inventory_deployments", "dep-odd", d=LAST):
        result = cli("quote", "dep-odd", "--as-of", str(LAST), url=demo["url"])
    assert_one_line_error(result, "platinum")


def test_quote_of_a_deployment_that_did_not_exist_that_month_fails_with_one_line(demo):
    # Known to the source (it signs up in March), but with no version in February.
    late = (
        "INSERT INTO arcadia.deployment_versions (deployment_id, name, plan_code, valid_from, "
        "recorded_at) VALUES ('dep-late', 'Late', 'studio', '2025-03-05 10:00+00', "
        "'2025-03-05 10:05+00')"
    )
    with row_for_one_test(demo["engine"], late, "arcadia.deployment_versions", "dep-late"):
        result = cli("quote", "dep-late", "--as-of", str(LAST), url=demo["url"])
    assert_one_line_error(result, "dep-late", "did not exist", "2025-02")


def test_errors_left_the_demo_data_alone(demo):
    # The failed `demo seed` calls above must not have truncated the seeded source.
    with demo["engine"].connect() as connection:
        count = connection.execute(
            text("SELECT count(DISTINCT deployment_id) FROM arcadia.deployment_versions")
        ).scalar_one()
    assert count == 3


def test_demo_seed_refuses_a_source_it_did_not_create(foreign_source_url):
    """A database whose arcadia tables someone else made: one line, and their rows stay."""
    url = foreign_source_url
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO arcadia.deployment_versions (deployment_id, name, plan_code, "
                "valid_from) VALUES ('theirs', 'Theirs', 'agency', '2024-01-01')"
            )
        )
    result = cli("demo", "seed", "--deployments", "3", "--days", "10", url=url)
    assert_one_line_error(result, "refusing", "arcadia.deployment_versions", "did not create")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT deployment_id FROM arcadia.deployment_versions"))
        assert rows.scalars().all() == ["theirs"]
    engine.dispose()
