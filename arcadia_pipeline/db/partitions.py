"""Monthly range partitions of the tables that grow (usage_records, resource_inventory).

The pipeline creates the partitions of the months it writes, plus a few ahead, before it
writes; creation takes an advisory lock so two runs never race on the same DDL.
"""

from datetime import date

from sqlalchemy import Connection, text

from arcadia_pipeline.db.schema import SCHEMA
from arcadia_pipeline.utc import add_months

PARTITIONED_TABLES = ("usage_records", "resource_inventory")
MONTHS_AHEAD = 2
_PARTITION_DDL_LOCK = 0x4D45_5452  # arbitrary, fixed: "METR"


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
        month = upper
