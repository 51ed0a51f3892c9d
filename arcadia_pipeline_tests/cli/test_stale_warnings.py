"""A look-up that reads stale days says so on stderr (issue 16): after an earlier day of the
month is fixed and re-metered, the later days' aggregates and quotes are older than their
records until missed_days_sensor refreshes them; `quotes --as-of` such a day warns, naming
the days, while the JSON and the table on stdout stay clean."""

import json
from datetime import date

import pytest
from dagster import DagsterInstance
from sqlalchemy import text

from arcadia_pipeline import cli
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

WARNING = (
    "arcadia-pipeline: warning: the quotes reads 3 stale day(s) (2025-02-03 to 2025-02-05): "
    "a later correction, terms change or reconciliation finding is not metered into them "
    "yet; missed_days_sensor refreshes them, then the figures may change\n"
)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corrected(engine):
    """February 1-5 metered; then a snapshot of the 2nd turns up and only that day is
    re-metered, as the corrections sensor does."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    materialize_range(date(2025, 2, 1), date(2025, 2, 5), instance=instance)
    add_version(engine, "snapshot:1", "dep-a", "snapshot", utc(2025, 2, 2), utc(2025, 2, 3),
                size_gb=2800)  # fmt: skip
    materialize_range(date(2025, 2, 2), date(2025, 2, 2), instance=instance)
    return instance


def test_the_materialised_quotes_of_a_stale_day_warn(corrected, capsys):
    code, out, err = run_cli(capsys, "quotes", "--as-of", "2025-02-05")
    assert code == 0
    assert out.startswith("Month-to-date quotes as of 2025-02-05")
    assert err == WARNING


def test_the_live_quote_and_the_usage_read_fresh_records_and_do_not_warn(corrected, capsys):
    code, out, err = run_cli(capsys, "quote", "dep-a", "--as-of", "2025-02-05")
    assert (code, err) == (0, "")
    assert json.loads(out)["deployment_id"] == "dep-a"
    code, out, err = run_cli(capsys, "usage", "dep-a", "--from", "2025-02-01", "--to", "2025-02-05")
    assert (code, err) == (0, "")
    assert json.loads(out)["snapshot_gb_month"] == "100"  # 2800 GB for 1 day of 28


def test_a_stale_inventory_day_warns_every_reader(engine, corrected, capsys):
    """A reconciliation finding on the 4th: its inventory is stale, so the records, the live
    quote and the usage that read it are too."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO metering.source_findings (day, deployment_id, found_at) "
                 "VALUES ('2025-02-04', 'dep-a', clock_timestamp())")
        )  # fmt: skip
    code, out, err = run_cli(capsys, "usage", "dep-a", "--from", "2025-02-01", "--to", "2025-02-05")
    assert code == 0 and json.loads(out)
    assert err.startswith("arcadia-pipeline: warning: the usage reads 1 stale day(s) (2025-02-04)")
    code, out, err = run_cli(capsys, "quote", "dep-a", "--as-of", "2025-02-05")
    assert code == 0 and json.loads(out)
    assert "the quote reads 1 stale day(s) (2025-02-04)" in err
