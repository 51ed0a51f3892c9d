"""On the Citus cluster the day's and the month's statements over the sharded tables run on
the workers, shard by shard: none pulls their rows through the coordinator.

Every statement the pipeline sends while metering a month and closing it is recorded as sent
(SQLAlchemy's before_cursor_execute, its parameters too), then planned again with Citus's
EXPLAIN. A plan that moves a sharded table's rows says so: `INSERT/SELECT method: pull to
coordinator` or `repartition` (an INSERT … SELECT whose rows do not stay on their shard), or
a `Distributed Subplan` whose tasks return a shard's rows as they are (a subquery whose
result the coordinator collects and ships back). A subplan whose tasks aggregate first (a
month's totals per shard) or that reads a coordinator table moves a handful of rows and
passes.

Statements that read a temporary table, or create one as a query's rows (db/staging.staged),
cannot be planned again (the table went with its transaction, and an EXPLAIN inside the run's
own transaction upsets Citus's distributed transaction). They are the ones that meet the
coordinator: the inventory, which arrives from the source through the coordinator's staging
tables, and the pricing, which joins each deployment's prorated base fee and inclusions
(computed once per day or month into a transaction table) with its usage per billing kind.
The test names them, and requires every one that reads usage records to sum them per
deployment, which Citus does on the workers: a row per deployment and kind reaches the
coordinator, not a row per resource or period.
"""

import re
from datetime import date

import pytest
from dagster import DagsterInstance
from sqlalchemy import event, text

from arcadia_pipeline.demo.seed import seed_demo
from arcadia_pipeline_tests.statements.support import price_month
from arcadia_pipeline_tests.support import materialize_range, set_granularity, utc

pytestmark = pytest.mark.citus_only

FEBRUARY, LAST_DAY = date(2025, 2, 1), date(2025, 2, 28)
MOVES = ("INSERT/SELECT method: pull to coordinator", "INSERT/SELECT method: repartition")
AGGREGATES = ("Aggregate", "HashAggregate", "GroupAggregate", "Partial", "Finalize")


EXPLAINED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
TEMPORARY = re.compile(r"CREATE TEMP(?:ORARY)? TABLE (?:IF NOT EXISTS )?(\w+)", re.I)
CREATED_AS = re.compile(r"CREATE TEMP(?:ORARY)? TABLE \w+ \([^)]*\) ON COMMIT DROP AS ", re.I)
# A month's or a day's usage summed per deployment: Citus sums each shard on its worker. A
# month's usage may be read from its partition under the parent's name
# (db/partitions.month_partition).
USAGE_BY_DEPLOYMENT = re.compile(
    r"FROM metering\.usage_records(?:_\d{4}_\d{2} AS usage_records)?\s.*?"
    r"GROUP BY (?:metering\.)?usage_records\.deployment_id",
    re.S,
)
MONTH_PARTITION = re.compile(r"_\d{4}_\d{2}$")


@pytest.fixture
def sent(engine):
    """(statement, parameters) of every statement sent on the warehouse's engine."""
    statements = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if not executemany:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def sharded_tables(engine) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                text("SELECT logicalrelid::text FROM pg_dist_partition WHERE partmethod = 'h'")
            ).scalars()
        )


def plan(engine, statement: str, parameters) -> str:
    """Citus's plan of the statement (not run)."""
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (COSTS OFF) {statement}", parameters)
            return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.rollback()
        connection.close()


def rows_pulled(explained: str) -> list[str]:
    """What in the plan moves a shard's rows as they are: the INSERT … SELECT method, or the
    first node of each Distributed Subplan's task when it is not an aggregate."""
    lines = explained.splitlines()
    pulled = [line.strip() for line in lines if line.strip() in MOVES]
    for n, line in enumerate(lines):
        if "Distributed Subplan" not in line:
            continue
        depth = len(line) - len(line.lstrip())
        block = []
        for inner in lines[n + 1 :]:
            if len(inner) - len(inner.lstrip()) <= depth:
                break
            block.append(inner.strip())
        tasks = [i for i, inner in enumerate(block) if inner == "->  Task"]
        if not tasks:  # a table on the coordinator
            continue
        first_node = next(
            (inner for inner in block[tasks[0] + 1 :] if inner.startswith("->  ")), ""
        )
        if first_node and not first_node[4:].startswith(AGGREGATES):
            pulled.append(f"{line.strip()}: {first_node}")
    return pulled


def test_metering_and_closing_a_month_pull_no_sharded_rows_to_the_coordinator(
    engine, sent, monkeypatch
):
    with engine.begin() as connection:
        seed_demo(connection, deployments=8, days=28, seed=5, end_date=date(2025, 3, 1))
    set_granularity(engine, "droplet_hours", "hour")  # the hourly periods too
    sent.clear()
    materialize_range(FEBRUARY, LAST_DAY)
    price_month(FEBRUARY, utc(2025, 3, 9), DagsterInstance.ephemeral(), monkeypatch)

    sharded = sharded_tables(engine)
    assert "metering.usage_records" in sharded
    temporary = {m.group(1) for s, _ in sent if (m := TEMPORARY.search(s))}
    written, staged, offenders = set(), set(), {}
    for statement, parameters in sent:
        words = statement.split(None, 1)
        created_as = bool(CREATED_AS.match(statement))  # a transaction table staged
        if not created_as and (not words or words[0].upper() not in EXPLAINED):
            continue
        # A month's partition (sharded as its own table) counts as its parent.
        touched = {MONTH_PARTITION.sub("", table) for table in sharded if table in statement}
        if not touched:
            continue
        if target := re.search(r"\bINSERT INTO (\S+)", statement):
            written.add(target.group(1))
        if any(re.search(rf"\b{name}\b", statement) for name in temporary):
            staged |= touched
            if "metering.usage_records" in touched and not USAGE_BY_DEPLOYMENT.search(statement):
                offenders.setdefault(statement.strip(), "(reads a temporary table)")
            continue
        explained = plan(engine, statement, parameters)
        if rows_pulled(explained):
            offenders.setdefault(statement.strip(), explained)  # one plan per statement
    # What meets the coordinator: the inventory's way in and the per-deployment pricing.
    assert staged == {
        "metering.resource_inventory",
        "metering.inventory_deployments",
        "metering.usage_records",
        "metering.usage_period_aggregates",
        "metering.deployment_quotes",
        "metering.deployment_quote_lines",
        "metering.projected_quotes",
        "metering.projected_quote_lines",
        "metering.monthly_statements",
        "metering.monthly_statement_lines",
        "metering.statement_adjustments",
    }, staged
    # The day's and the month's writes were all among them.
    assert written >= {
        "metering.resource_inventory",
        "metering.usage_records",
        "metering.usage_period_aggregates",
        "metering.deployment_quotes",
        "metering.day_fingerprints",
        "metering.monthly_statements",
        "metering.monthly_statement_lines",
    }, written
    assert not offenders, f"{len(offenders)} statement(s) pull rows:\n\n" + "\n\n".join(
        f"{statement}\n--- plan ---\n{explained}" for statement, explained in offenders.items()
    )
