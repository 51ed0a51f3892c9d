"""The operator's shell: the real `arcadia-pipeline` and `dagster` console scripts, as subprocesses.

One module-wide demo: `db upgrade`, `demo seed` of 3 deployments over 2025-02-19..28, then
`dagster asset materialize --partition-range` of all four assets, against the session's test
database. The look-up commands are checked against the library (`usage_for_period`), against
the materialised quotes, and against quotes worked out here from docs/domain.md's catalog.
The error cases come last (one of them could otherwise clobber the demo data if it misbehaved).
`db roles` itself is exercised in db/test_roles.py; here its arguments and its missing URL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.source import source_metadata
from arcadia_pipeline.pricing.usage import usage_for_period
from arcadia_pipeline_tests.billing.test_quotes import BASE_USD, KINDS, expected_lines
from arcadia_pipeline_tests.conftest import DATA_TABLES, create_database, drop_database
from arcadia_pipeline_tests.support import ASSETS

BIN = Path(sys.executable).parent
CLI = str(BIN / "arcadia-pipeline")
DAGSTER = str(BIN / "dagster")
REPO = Path(__file__).resolve().parents[1]

FIRST, LAST = date(2025, 2, 19), date(2025, 2, 28)  # the 10 seeded days before 2025-03-01
DEPLOYMENTS = ("dep-0001", "dep-0002", "dep-0003")
MONEY = re.compile(r"\d+\.\d\d")  # dollars and cents, as a string
PLAIN_DECIMAL = re.compile(r"\d+(\.\d+)?")  # no exponent, no sign


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
    assert demo["seeded"].startswith("seeded 3 deployments")
    with demo["engine"].connect() as connection:
        deployments = connection.execute(
            text("SELECT deployment_id FROM arcadia.deployments ORDER BY 1")
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


@pytest.mark.parametrize("deployment_id", DEPLOYMENTS)
def test_quote_prints_the_month_to_date_quote_as_json(demo, deployment_id):
    printed = json.loads(ok(cli("quote", deployment_id, "--as-of", str(LAST), url=demo["url"])))
    with demo["engine"].connect() as connection:
        plan = connection.execute(
            text("SELECT plan_code FROM arcadia.deployments WHERE deployment_id = :d"),
            {"d": deployment_id},
        ).scalar_one()
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
        *("base_usd", "lines", "total_usd"),
    }
    assert printed["deployment_id"] == deployment_id
    assert printed["plan_code"] == plan
    assert (printed["period_start"], printed["as_of"]) == ("2025-02-01", "2025-02-28")
    assert printed["base_usd"] == str(BASE_USD[plan])

    # Worked out here from the catalog: a line per kind the plan includes.
    lines = expected_lines(plan, usage)
    assert sorted(line["billing_kind"] for line in printed["lines"]) == sorted(KINDS)
    for line in printed["lines"]:
        assert set(line) == {"billing_kind", "usage", "included", "overage_qty", "overage_usd"}
        want = lines[line["billing_kind"]]
        for key in ("usage", "included", "overage_qty"):
            assert PLAIN_DECIMAL.fullmatch(line[key]), line
            assert Decimal(line[key]) == want[key], (line["billing_kind"], key)
        assert MONEY.fullmatch(line["overage_usd"]), line
        assert Decimal(line["overage_usd"]) == want["overage_usd"], line["billing_kind"]

    total = BASE_USD[plan] + sum(line["overage_usd"] for line in lines.values())
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


def test_quotes_for_a_day_without_materialised_quotes_says_so(demo):
    printed = ok(cli("quotes", "--as-of", "2025-01-15", url=demo["url"]))
    assert "no materialised quotes" in printed


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
        (["usage", "dep-9999", "--from", "2025-02-19", "--to", "2025-02-28"], ["dep-9999"]),
        (["quote", "dep-9999", "--as-of", "2025-02-28"], ["dep-9999"]),
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


def test_a_plan_missing_from_the_catalog_fails_with_one_line(demo):
    with demo["engine"].begin() as connection:
        connection.execute(
            text("INSERT INTO arcadia.deployments VALUES ('dep-odd', 'Odd', 'platinum')")
        )
    try:
        result = cli("quote", "dep-odd", "--as-of", str(LAST), url=demo["url"])
    finally:
        with demo["engine"].begin() as connection:
            connection.execute(
                text("DELETE FROM arcadia.deployments WHERE deployment_id = 'dep-odd'")
            )
    assert_one_line_error(result, "platinum")


def test_errors_left_the_demo_data_alone(demo):
    # The failed `demo seed` calls above must not have truncated the seeded source.
    with demo["engine"].connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM arcadia.deployments")).scalar_one()
    assert count == 3


def test_demo_seed_refuses_a_source_it_did_not_create(server_url, admin_url):
    """A database whose arcadia tables someone else made: one line, and their rows stay."""
    name = f"arcadia_foreign_{os.getpid()}"
    create_database(admin_url, name, make_url(server_url).username)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE SCHEMA arcadia"))
            source_metadata.create_all(connection)  # unmarked: not create_source_tables
            connection.execute(
                text("INSERT INTO arcadia.deployments VALUES ('theirs', 'Theirs', 'agency')")
            )
        result = cli("demo", "seed", "--deployments", "3", "--days", "10", url=url)
        assert_one_line_error(result, "refusing", "arcadia.deployments", "did not create")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT deployment_id FROM arcadia.deployments"))
            assert rows.scalars().all() == ["theirs"]
    finally:
        engine.dispose()
        drop_database(admin_url, name)
