"""Monthly range partitions of the tables that grow (usage_records, resource_inventory).

The pipeline creates the partitions of the months it writes, plus a few ahead, before it
writes; creation takes an advisory lock so two runs never race on the same DDL.
"""

from datetime import date

from sqlalchemy import Connection, FromClause, Table, column, func, select, text
from sqlalchemy import table as table_clause

from arcadia_pipeline.db.schema import SCHEMA
from arcadia_pipeline.utc import add_months

PARTITIONED_TABLES = ("usage_records", "resource_inventory")
MONTHS_AHEAD = 2
_PARTITION_DDL_LOCK = 0x4D45_5452  # arbitrary, fixed: "METR"


# Extended statistics each month's partition gets: a partitioned table's own statistics are
# never gathered (autovacuum skips it; ANALYZE of it samples every partition again), and a
# partition's single-column ones multiply into a guess of a tenth of the month's records for
# the groups per resource, so the planner sums them in one process (benchmarks/README.md).
PARTITION_STATISTICS = {"usage_records": ("resources", "deployment_id, resource_kind, resource_id")}


def partition_name(table: str, month: date) -> str:
    return f"{table}_{month:%Y_%m}"


def ensure_month_partitions(connection: Connection, first_day: date, last_day: date) -> None:
    """Create the monthly partitions covering [first_day, last_day] plus MONTHS_AHEAD."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PARTITION_DDL_LOCK})
    month = first_day.replace(day=1)
    last = add_months(last_day, MONTHS_AHEAD)
    while month <= last:
        upper = add_months(month, 1)
        for table in PARTITIONED_TABLES:
            connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{partition_name(table, month)} "
                    f"PARTITION OF {SCHEMA}.{table} "
                    f"FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')"
                )
            )
            if table in PARTITION_STATISTICS:
                _ensure_statistics(connection, table, month)
        month = upper


def _ensure_statistics(connection: Connection, table: str, month: date) -> None:
    """The partition's PARTITION_STATISTICS object, created only where missing: CREATE
    STATISTICS checks ownership before IF NOT EXISTS, and a partition another pipeline login
    made is that login's until `db roles` runs again (README, Least privilege)."""
    suffix, columns = PARTITION_STATISTICS[table]
    partition = partition_name(table, month)
    exists = connection.execute(
        text(
            "SELECT EXISTS (SELECT FROM pg_statistic_ext WHERE stxname = :name "
            "AND stxnamespace = to_regnamespace(:schema))"
        ),
        {"name": f"{partition}_{suffix}", "schema": SCHEMA},
    ).scalar_one()
    if not exists:
        connection.execute(
            text(
                f"CREATE STATISTICS {SCHEMA}.{partition}_{suffix} (ndistinct) "
                f"ON {columns} FROM {SCHEMA}.{partition}"
            )
        )


def month_partition(connection: Connection, parent: Table, month: date) -> FromClause:
    """The partition of `parent` holding the billing month of `month`, named as `parent` in
    the query (SELECT ... FROM metering.usage_records_2025_03 AS usage_records), or `parent`
    itself when that partition does not exist (a month never metered, or one retention
    dropped). A query of one month's rows reads it so that the planner estimates its groups
    from the partition's statistics (PARTITION_STATISTICS), not the parent's, which are none."""
    name = partition_name(parent.name, month.replace(day=1))
    qualified = f"{parent.schema}.{name}"
    if connection.execute(select(func.to_regclass(qualified))).scalar() is None:
        return parent
    columns = (column(c.name, c.type) for c in parent.columns)
    return table_clause(name, *columns, schema=parent.schema).alias(parent.name)
