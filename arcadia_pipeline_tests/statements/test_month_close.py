"""The month-close cycle on real PostgreSQL through Dagster, once for the module: February 2025
metered, drafted, re-drafted after a change, closed, corrected in the source back-dated (a
droplet removed mid-month), re-metered, and adjusted by the run the sensor asks for.

The clock the statements read is held at each step's time; the daily metering is real.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, SkipReason
from sqlalchemy import text

from arcadia_pipeline import cli
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.pricing.reference import price_quote
from arcadia_pipeline.pricing.terms import load_plan, load_tiers
from arcadia_pipeline.pricing.usage import usage_for_period
from arcadia_pipeline.retention.expiry import apply_retention, remove_inventory_before
from arcadia_pipeline.statements.export import (
    COLUMNS,
    read_csv,
    read_parquet,
    read_statement_rows,
    statement_rows,
    write_statements,
)
from arcadia_pipeline.utc import month_end
from arcadia_pipeline_tests.conftest import DATA_TABLES
from arcadia_pipeline_tests.statements.support import (
    FEBRUARY,
    adjustments,
    check_results,
    closed_rows,
    price_month,
    run_requested,
    sensor_requests,
    statements,
)
from arcadia_pipeline_tests.support import (
    add_deployment,
    add_version,
    failure_messages,
    materialize_range,
    utc,
)

pytestmark = pytest.mark.citus  # also on the Citus cluster (scripts/test.sh)

DRAFTED = datetime(2025, 3, 2, 12, tzinfo=UTC)  # within the 3 days of grace
REDRAFTED = datetime(2025, 3, 3, 12, tzinfo=UTC)
CLOSED = datetime(2025, 3, 4, 2, 30, tzinfo=UTC)  # the schedule's tick: grace is over
CORRECTED = datetime(2025, 3, 20, 12, tzinfo=UTC)
CHECK = "statements_equal_the_month_priced_now"


@dataclass
class Cycle:
    engine: object
    instance: DagsterInstance
    draft: dict = field(default_factory=dict)
    redraft: dict = field(default_factory=dict)
    redraft_reference: dict = field(default_factory=dict)  # (total, usage) by the pure rule
    closed: dict = field(default_factory=dict)
    closed_rows: list = field(default_factory=list)
    checks: list = field(default_factory=list)  # each statements run's check results
    requests: list = field(default_factory=list)  # the sensor's after the correction
    adjusting_run: str = ""
    adjusting_metadata: dict = field(default_factory=dict)  # its materialisation's
    adjusting_priced_at: datetime | None = None  # when it priced the month from
    adjustments: list = field(default_factory=list)
    again_adjustments: list = field(default_factory=list)
    sensor_after: object = None
    rows_after: list = field(default_factory=list)


def priced_at(engine, month: date) -> datetime:
    """When the month's statements were last priced from (the database's clock)."""
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT repriced_at FROM metering.statement_months WHERE month = :m"),
            {"m": month},
        ).scalar_one()


def reference_total(connection, deployment_id: str, plan_code: str) -> Decimal:
    """The month priced by the pure quote rule from usage_for_period (billing/pricing.py)."""
    usage = usage_for_period(connection, deployment_id, FEBRUARY, month_end(FEBRUARY))
    quote = price_quote(
        deployment_id,
        load_plan(connection, plan_code, FEBRUARY),
        load_tiers(connection, plan_code, FEBRUARY),
        usage,
        FEBRUARY,
        month_end(FEBRUARY),
    )
    return quote.total_usd


@pytest.fixture(scope="module")
def cycle(database_url):
    engine = make_engine(database_url)
    with engine.begin() as connection:
        tables = DATA_TABLES
        connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
        connection.execute(
            text("UPDATE metering.metering_config SET granularity = 'day', retention_days = 400")
        )
    start = utc(2025, 1, 1)
    add_deployment(engine, "dep-a", "starter")
    add_deployment(engine, "dep-b", "studio")
    add_version(engine, "droplet:1", "dep-a", "droplet", start)
    add_version(engine, "droplet:2", "dep-a", "droplet", start)
    add_version(engine, "spaces:1", "dep-a", "spaces_bucket", start, size_gb=40)
    add_version(engine, "droplet:3", "dep-b", "droplet", start)
    add_version(engine, "dns:1", "dep-b", "dns_zone", start)
    instance = DagsterInstance.ephemeral()
    state = Cycle(engine, instance)
    monkeypatch = pytest.MonkeyPatch()
    try:
        materialize_range(FEBRUARY, month_end(FEBRUARY), instance=instance)
        state.checks.append(check_results(price_month(FEBRUARY, DRAFTED, instance, monkeypatch)))
        state.draft = statements(engine, FEBRUARY)

        # Before the close, a snapshot turns up from the 10th: the draft is replaced.
        add_version(engine, "snapshot:9", "dep-b", "snapshot", utc(2025, 2, 10), size_gb=200,
                    recorded_at=utc(2025, 3, 3))  # fmt: skip
        materialize_range(date(2025, 2, 10), month_end(FEBRUARY), instance=instance)
        state.checks.append(check_results(price_month(FEBRUARY, REDRAFTED, instance, monkeypatch)))
        state.redraft = statements(engine, FEBRUARY)
        with engine.connect() as connection:
            state.redraft_reference = {
                deployment: (
                    reference_total(connection, deployment, statement["plan_code"]),
                    usage_for_period(connection, deployment, FEBRUARY, month_end(FEBRUARY)),
                )
                for deployment, statement in state.redraft.items()
            }

        state.checks.append(check_results(price_month(FEBRUARY, CLOSED, instance, monkeypatch)))
        state.closed = statements(engine, FEBRUARY)
        state.closed_rows = closed_rows(engine, FEBRUARY)

        # On 20 March the app learns droplet:2 was destroyed on 15 February: a back-dated
        # correction, re-metered (as late_corrections_sensor asks) from the 15th on.
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE arcadia.resource_versions SET valid_to = :end, recorded_at = :now "
                    "WHERE resource_id = 'droplet:2'"
                ),
                {"end": utc(2025, 2, 15), "now": CORRECTED},
            )
        materialize_range(date(2025, 2, 15), month_end(FEBRUARY), instance=instance)
        state.requests = sensor_requests(instance, monkeypatch, CORRECTED)
        for request in state.requests:
            result = run_requested(request, instance)
            state.adjusting_run = result.run_id
            (event,) = result.get_asset_materialization_events()
            state.adjusting_metadata = {
                name: getattr(value, "value", getattr(value, "text", None))
                for name, value in event.materialization.metadata.items()
            }
            assert event.partition == "2025-02-01"
            state.adjusting_priced_at = priced_at(engine, FEBRUARY)
            state.checks.append(check_results(result))
        state.adjustments = adjustments(engine, FEBRUARY)

        # Priced again by hand: nothing changed, nothing added.
        state.checks.append(check_results(price_month(FEBRUARY, CORRECTED, instance, monkeypatch)))
        state.again_adjustments = adjustments(engine, FEBRUARY)
        state.sensor_after = sensor_requests(instance, monkeypatch, CORRECTED)
        state.rows_after = closed_rows(engine, FEBRUARY)
        yield state
    finally:
        monkeypatch.undo()


def test_a_draft_is_priced_from_the_whole_months_usage(cycle):
    a, b = cycle.draft["dep-a"], cycle.draft["dep-b"]
    assert (a["status"], a["closed_at"], a["plan_code"]) == ("draft", None, "starter")
    hours = a["lines"]["droplet_hours"]
    # Two droplets all of February: 2 x 672 h, 744 included, 600 over at 0.00893.
    assert (hours["qty"], hours["included_qty"], hours["overage_qty"]) == (1344, 744, 600)
    assert (hours["unit_price_usd"], hours["amount_usd"]) == (Decimal("0.00893"), Decimal("5.36"))
    assert a["lines"]["spaces_gb_month"]["qty"] == 40  # exactly 40 GB-months
    assert (a["base_usd"], a["total_usd"]) == (Decimal("20.00"), Decimal("25.36"))
    assert set(a["lines"]) == {
        "droplet_hours", "spaces_gb_month", "snapshot_gb_month", "droplet_backup_gb_month",
        "dns_zones",
    }  # fmt: skip
    assert (b["plan_code"], b["total_usd"]) == ("studio", Decimal("50.00"))
    assert b["lines"]["dns_zones"]["qty"] == 1


def test_a_draft_is_replaced_and_every_statement_equals_the_reference_rule(cycle):
    b = cycle.redraft["dep-b"]
    assert b["status"] == "draft"
    assert b["lines"]["snapshot_gb_month"]["qty"] > 100  # 200 GB for 19 of 28 days
    for deployment, statement in cycle.redraft.items():
        total, usage = cycle.redraft_reference[deployment]
        assert statement["total_usd"] == total
        used = {kind: line["qty"] for kind, line in statement["lines"].items() if line["qty"]}
        assert used == usage
    assert cycle.redraft["dep-b"]["total_usd"] != cycle.draft["dep-b"]["total_usd"]


def test_after_the_grace_period_the_month_closes(cycle):
    for statement in cycle.closed.values():
        assert statement["status"] == "closed"
        assert statement["closed_at"] == CLOSED
    assert {d: s["total_usd"] for d, s in cycle.closed.items()} == {
        d: s["total_usd"] for d, s in cycle.redraft.items()
    }


def test_a_correction_makes_the_sensor_re_price_the_closed_month(cycle):
    assert [(r.partition_key, r.tags["arcadia/trigger"]) for r in cycle.requests] == [
        ("2025-02-01", "reprice")
    ]
    assert isinstance(cycle.sensor_after, SkipReason)


def test_the_closed_rows_are_byte_identical_after_the_adjustment(cycle):
    assert cycle.closed_rows and cycle.rows_after == cycle.closed_rows


def test_the_adjustment_is_a_credit_of_exactly_the_removed_hours(cycle):
    # droplet:2 billed 672 h, used 336 (14 days): 1008 h, 264 over: 2.35752 -> 2.36, was 5.36.
    assert [
        (a["deployment_id"], a["billing_kind"], a["qty_delta"], a["amount_usd"], a["created_at"])
        for a in cycle.adjustments
    ] == [("dep-a", "droplet_hours", Decimal(-336), Decimal("-3.00"), CORRECTED)]
    assert cycle.adjustments[0]["run_id"] == cycle.adjusting_run


def test_a_second_adjustment_run_adds_nothing(cycle):
    assert cycle.again_adjustments == cycle.adjustments


def test_closed_plus_adjustments_equals_the_month_priced_now_to_the_cent(cycle):
    with cycle.engine.connect() as connection:
        for deployment, statement in cycle.closed.items():
            adjusted = sum(
                (a["amount_usd"] for a in cycle.adjustments if a["deployment_id"] == deployment),
                Decimal(0),
            )
            expected = reference_total(connection, deployment, statement["plan_code"])
            assert statement["total_usd"] + adjusted == expected
    assert cycle.checks and all(result == {CHECK: True} for result in cycle.checks)


def test_the_database_refuses_to_change_closed_rows(cycle):
    refused = [
        "UPDATE metering.monthly_statements SET total_usd = 0 WHERE deployment_id = 'dep-a'",
        "DELETE FROM metering.monthly_statements WHERE deployment_id = 'dep-a'",
        "UPDATE metering.monthly_statement_lines SET qty = 0 WHERE deployment_id = 'dep-a'",
        "DELETE FROM metering.monthly_statement_lines WHERE deployment_id = 'dep-b'",
        "INSERT INTO metering.monthly_statement_lines VALUES "
        "('2025-02-01', 'dep-a', 'gpu_hours', 1, 0, 1, 1, 1)",
        "UPDATE metering.statement_adjustments SET amount_usd = 0",
        "DELETE FROM metering.statement_adjustments",
        "UPDATE metering.statement_months SET closed_at = NULL",
        "DELETE FROM metering.statement_months",
    ]
    for statement in refused:
        with pytest.raises(Exception, match="never"), cycle.engine.begin() as connection:
            connection.execute(text(statement))
    assert closed_rows(cycle.engine, FEBRUARY) == cycle.closed_rows
    assert adjustments(cycle.engine, FEBRUARY) == cycle.adjustments


# The quote engine's and finance's view of the closed, adjusted month.


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """The two commands as `arcadia-pipeline` runs them (its parser and its one-line
    errors), in this process."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_statement_prints_the_closed_statement_with_its_adjustment(cycle, capsys):
    code, out, err = run_cli(capsys, "statement", "dep-a", "--month", "2025-02")
    assert (code, err) == (0, "")
    statement = json.loads(out)
    hours = next(line for line in statement["lines"] if line["billing_kind"] == "droplet_hours")
    assert {k: statement[k] for k in statement if k not in ("lines", "adjustments")} == {
        "deployment_id": "dep-a",
        "month": "2025-02",
        "plan_code": "starter",
        "plan_periods": [
            {
                "plan_code": "starter",
                "valid_from": "2025-02-01T00:00:00+00:00",
                "valid_to": "2025-03-01T00:00:00+00:00",
                "base_usd": "20.00",
            }
        ],
        "status": "closed",
        "closed_at": "2025-03-04T02:30:00+00:00",
        "base_usd": "20.00",
        "minimum_usd": None,
        "minimum_true_up_usd": "0.00",
        "total_usd": "25.36",
        "total_with_adjustments_usd": "22.36",
    }
    assert hours == {
        "billing_kind": "droplet_hours",
        "qty": "1344",
        "billable_qty": "1344",  # no cap
        "included_qty": "744",
        "overage_qty": "600",
        "unit_price_usd": "0.00893",
        "amount_usd": "5.36",
        "tiers": [
            {"from_qty": "0", "up_to_qty": None, "qty": "600", "unit_price_usd": "0.00893",
             "amount_usd": "5.358"}
        ],
    }  # fmt: skip
    assert len(statement["lines"]) == 5
    assert statement["adjustments"] == [
        {
            "billing_kind": "droplet_hours",
            "qty_delta": "-336",
            "amount_usd": "-3.00",
            "created_at": "2025-03-20T12:00:00+00:00",
        }
    ]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["statement", "dep-nope", "--month", "2025-02"], 1, "unknown deployment 'dep-nope'"),
        (["statement", "dep-a", "--month", "2025-13"], 2, "'2025-13' is not a month (YYYY-MM)"),
        (["statement", "dep-a", "--month", "2025-2"], 2, "is not a month"),
        (["statement", "dep-a", "--month", "2024-12"], 1, "before the first billing month"),
        (["statement", "dep-a", "--month", "2025-03"], 1, "2025-03 has no statements yet"),
        (["statement", "dep-a", "--month", "2999-01"], 1, "is after this month"),
    ],
)
def test_statement_refuses_bad_input_in_one_line(cycle, capsys, argv, code, message):
    got, out, err = run_cli(capsys, *argv)
    assert (got, out) == (code, "")
    assert message in err and err.count("\n") == 1


def test_statement_rows_hold_lines_base_fees_and_adjustments(cycle):
    with cycle.engine.connect() as connection:
        rows = statement_rows(connection, FEBRUARY)
    assert list(rows.columns) == list(COLUMNS)
    kinds = rows.groupby("deployment_id")["row_type"].value_counts().to_dict()
    assert kinds == {
        ("dep-a", "line"): 5, ("dep-a", "base"): 1, ("dep-a", "adjustment"): 1,
        ("dep-b", "line"): 5, ("dep-b", "base"): 1,
    }  # fmt: skip
    adjustment = rows[rows["row_type"] == "adjustment"].iloc[0]
    assert (adjustment["qty"], adjustment["amount_usd"]) == (Decimal(-336), Decimal("-3.00"))
    for deployment, statement in cycle.closed.items():
        mine = rows[rows["deployment_id"] == deployment]
        adjusted = sum(
            (a["amount_usd"] for a in cycle.adjustments if a["deployment_id"] == deployment),
            Decimal(0),
        )
        assert sum(mine["amount_usd"], Decimal(0)) == statement["total_usd"] + adjusted
        for line in mine[mine["row_type"] == "line"].itertuples():
            stored = statement["lines"][line.billing_kind]
            assert (line.qty, line.included_qty, line.overage_qty, line.unit_price_usd,
                    line.amount_usd) == (stored["qty"], stored["included_qty"],
                                         stored["overage_qty"], stored["unit_price_usd"],
                                         stored["amount_usd"])  # fmt: skip


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_exports_read_back_equal_to_the_statement_rows(cycle, capsys, tmp_path, file_format):
    output = tmp_path / f"statements.{file_format}"
    code, out, err = run_cli(
        capsys, "statements", "--month", "2025-02", "--format", file_format,
        "--output", str(output),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "wrote 13 rows (2 deployments, 1 adjustments)" in out
    read = read_csv(output) if file_format == "csv" else read_parquet(output)
    with cycle.engine.connect() as connection:
        expected = statement_rows(connection, FEBRUARY)
    pd.testing.assert_frame_equal(read, expected)
    assert list(tmp_path.iterdir()) == [output]  # no temporary file left


def test_the_parquet_export_types_money_and_quantities_as_decimals(cycle, tmp_path):
    with cycle.engine.connect() as connection:
        write_statements(statement_rows(connection, FEBRUARY), "parquet", tmp_path / "s.parquet")
    schema = pq.read_schema(tmp_path / "s.parquet")
    assert str(schema.field("qty").type) == "decimal128(38, 18)"
    assert str(schema.field("amount_usd").type) == "decimal128(14, 2)"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--month", "2024-12", "--format", "csv"], 1, "before the first billing month"),
        (["--month", "Feb-2025", "--format", "csv"], 2, "is not a month"),
        (["--month", "2025-02", "--format", "xlsx"], 2, "invalid choice: 'xlsx'"),
        (["--month", "2025-03", "--format", "parquet"], 1, "has no statements yet"),
    ],
)
def test_statements_refuse_bad_input_and_write_nothing(
    cycle, capsys, tmp_path, argv, code, message
):
    got, out, err = run_cli(capsys, "statements", *argv, "--output", str(tmp_path / "x"))
    assert (got, out) == (code, "")
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_statements_into_a_missing_folder_is_one_line(cycle, capsys, tmp_path):
    output = tmp_path / "no-such-folder" / "feb.csv"
    code, out, err = run_cli(
        capsys, "statements", "--month", "2025-02", "--format", "csv", "--output", str(output)
    )
    assert (code, out) == (1, "")
    assert f"cannot write {output}" in err and err.count("\n") == 1


def february_rows(cycle) -> pd.DataFrame:
    with cycle.engine.connect() as connection:
        return statement_rows(connection, FEBRUARY)


@pytest.mark.parametrize(("name", "magic"), [("feb.csv", b"row_"), ("feb.parquet", b"PAR1")])
def test_statements_take_the_format_from_the_output_name(cycle, capsys, tmp_path, name, magic):
    output = tmp_path / name
    code, out, err = run_cli(capsys, "statements", "--month", "2025-02", "--output", str(output))
    assert (code, err) == (0, "")
    assert out == f"wrote 13 rows (2 deployments, 1 adjustments) of 2025-02 to {output}\n"
    assert output.read_bytes()[:4] == magic
    pd.testing.assert_frame_equal(read_statement_rows(output), february_rows(cycle))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--format", "parquet", "--output", "oct.csv"],
            "--format parquet does not match --output {dir}/oct.csv (a .csv name): "
            "give --format csv or a .parquet name",
        ),
        (
            ["--format", "csv", "--output", "oct.parquet"],
            "--format csv does not match --output {dir}/oct.parquet (a .parquet name): "
            "give --format parquet or a .csv name",
        ),
        (
            ["--output", "oct.txt"],
            "cannot tell the format of --output {dir}/oct.txt from its name: give "
            "--format csv|parquet, or name it .csv or .parquet",
        ),
    ],
    ids=["parquet-into-csv", "csv-into-parquet", "no-format-said"],
)
def test_statements_refuse_a_format_the_name_contradicts(cycle, capsys, tmp_path, argv, message):
    argv = [f"{tmp_path}/{arg}" if arg.startswith("oct.") else arg for arg in argv]
    code, out, err = run_cli(capsys, "statements", "--month", "2025-02", *argv)
    assert (code, out) == (1, "")
    assert err == f"arcadia-pipeline: error: {message.format(dir=tmp_path)}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_read_statement_rows_tells_the_format_by_the_content(cycle, tmp_path, file_format):
    output = tmp_path / "february.export"  # a name that says neither
    write_statements(february_rows(cycle), file_format, output)
    read = read_statement_rows(output)
    pd.testing.assert_frame_equal(read, february_rows(cycle))
    adjustment = read[read["row_type"] == "adjustment"].iloc[0]
    assert (adjustment["qty"], adjustment["amount_usd"]) == (Decimal(-336), Decimal("-3.00"))
    assert adjustment["unit_price_usd"] is None


def test_the_readmes_pandas_reading_is_exact(cycle, tmp_path):
    """README, section CLI: pandas alone, without arcadia_pipeline, as written there."""
    expected = february_rows(cycle)
    write_statements(expected, "csv", tmp_path / "oct.csv")
    write_statements(expected, "parquet", tmp_path / "oct.parquet")
    plain = pd.read_csv(tmp_path / "oct.csv")
    assert plain["amount_usd"].dtype == "float64"  # why the README says how to read it

    exact = {
        column: lambda text: Decimal(text) if text else None
        for column in ("qty", "included_qty", "overage_qty", "unit_price_usd", "amount_usd")
    }
    from_csv = pd.read_csv(tmp_path / "oct.csv", converters=exact)
    from_parquet = pd.read_parquet(tmp_path / "oct.parquet")
    for rows in (from_csv, from_parquet):
        for column in exact:
            assert list(rows[column]) == list(expected[column]), column
            assert {type(v) for v in rows[column]} <= {Decimal, type(None)}, column
    assert sum(from_csv["amount_usd"], Decimal(0)) == sum(expected["amount_usd"], Decimal(0))


def test_the_months_metadata_plots_its_totals_and_adjustments(cycle):
    metadata = cycle.adjusting_metadata
    assert {k: metadata[k] for k in (
        "status", "closed", "statements", "base_usd", "total_usd", "adjustments",
        "adjustments_usd", "adjustments_added", "total_with_adjustments_usd",
    )} == {
        "status": "closed", "closed": 1, "statements": 2, "base_usd": 70.0,
        "total_usd": float(sum(s["total_usd"] for s in cycle.closed.values())),
        "adjustments": 1, "adjustments_usd": -3.0, "adjustments_added": 1,
        "total_with_adjustments_usd": float(
            sum(s["total_usd"] for s in cycle.closed.values()) - 3
        ),
    }  # fmt: skip
    table = metadata["largest_statements"].splitlines()
    assert table[0].startswith("| deployment | plan | status | total USD | adjustments USD")
    assert table[1] == "|---|---|---|---:|---:|---:|"  # money right-aligned
    assert table[2] == "| dep-b | studio | closed | 52.14 | 0.00 | 52.14 |"
    assert table[3] == "| dep-a | starter | closed | 25.36 | -3.00 | 22.36 |"


def test_the_months_materialisation_lists_every_adjustment(cycle):
    """Who got a credit: dep-a's 336 droplet hours, -3.00, booked on 20 March."""
    assert cycle.adjusting_metadata["all_adjustments"] == (
        "| deployment | billing kind | quantity | amount USD | booked (UTC) |\n"
        "|---|---|---:|---:|---|\n"
        "| dep-a | droplet_hours | -336 | -3.00 | 2025-03-20 12:00 |"
    )


def test_the_months_materialisation_shows_every_billing_month(cycle):
    """February closed on 4 March with its adjustment; no other month was metered."""
    assert cycle.adjusting_metadata["billing_months"] == (
        "| billing month | status | priced at (UTC) | closed at (UTC) | statements | total USD "
        "| adjustments | adjustments USD | total with adjustments USD |\n"
        "|---|---|---|---|---:|---:|---:|---:|---:|\n"
        f"| 2025-02 | closed | {cycle.adjusting_priced_at:%Y-%m-%d %H:%M} | 2025-03-04 02:30 "
        "| 2 | 77.50 | 1 | -3.00 | 74.50 |"
    )


def test_retention_removes_the_records_never_the_statements(cycle, capsys, monkeypatch):
    """Last: a year on, retention removes February's records and inventory; its closed
    statement and adjustment stand, are still printed, and are never re-priced."""
    a_year_on = date(2026, 6, 1)
    with cycle.engine.begin() as connection:
        removed = apply_retention(connection, a_year_on)
    with cycle.engine.begin() as connection:
        remove_inventory_before(connection, removed.inventory_kept_from)
    assert sum(removed.removed.values()) > 0
    assert closed_rows(cycle.engine, FEBRUARY) == cycle.closed_rows
    assert adjustments(cycle.engine, FEBRUARY) == cycle.adjustments
    code, out, _ = run_cli(capsys, "statement", "dep-a", "--month", "2025-02")
    assert (code, json.loads(out)["total_with_adjustments_usd"]) == (0, "22.36")
    later = datetime(2026, 6, 1, 3, tzinfo=UTC)
    assert isinstance(sensor_requests(cycle.instance, monkeypatch, later), SkipReason)
    failed = price_month(FEBRUARY, later, cycle.instance, monkeypatch, raise_on_error=False)
    assert "cannot price 2025-02: retention removed usage records of 2025-02" in (
        failure_messages(failed)
    )
    assert adjustments(cycle.engine, FEBRUARY) == cycle.adjustments
