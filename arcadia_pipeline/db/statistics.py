"""Fresh planner statistics for the days an asset has just written.

To the planner a day written after the table was last analysed holds about one row, so it
picks nested loops that re-aggregate the whole day for every row: quadratic, minutes at a
few thousand deployments (benchmarks/README.md). Autovacuum analyses too late for the
checks and downstream assets of the same run, so each asset analyses what it wrote as soon
as its days are committed.
"""

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import Connection, Table

from arcadia_pipeline.db.partitions import PARTITIONED_TABLES, partition_name


def relations_to_analyze(tables: Sequence[Table], days: Iterable[date]) -> list[str]:
    """Qualified names: the month partitions holding `days` of a partitioned table (its
    parent's statistics are not what a query pruned to one month uses), else the table."""
    months = sorted({day.replace(day=1) for day in days})
    names = []
    for table in tables:
        if table.name in PARTITIONED_TABLES:
            names += [f"{table.schema}.{partition_name(table.name, m)}" for m in months]
        else:
            names.append(f"{table.schema}.{table.name}")
    return names


# Read by their day (as_of_date) and keys alone, and not partitioned: a 3,000-row sample
# (statistics target 10) estimates a day's rows as well as the default 30,000, for a tenth
# of the cost, which otherwise grows with every day of history (benchmarks/README.md (f)).
SMALL_SAMPLE_TABLES = (
    "usage_period_aggregates",
    "capped_resource_usage",
    "deployment_quotes",
    "deployment_quote_lines",
    "day_checks",
)
SMALL_SAMPLE_TARGET = 10


def analyze_written(connection: Connection, tables: Sequence[Table], days: list[date]) -> None:
    """ANALYZE each relation in its own short transaction (its lock conflicts with another
    ANALYZE, VACUUM or DDL on the table, not with reads and writes; a role that does not
    own it gets a warning, not an error)."""
    for name in relations_to_analyze(tables, days):
        with connection.begin():
            if name.rpartition(".")[2] in SMALL_SAMPLE_TABLES:
                connection.exec_driver_sql(
                    f"SET LOCAL default_statistics_target = {SMALL_SAMPLE_TARGET}"
                )
            connection.exec_driver_sql(f"ANALYZE {name}")
