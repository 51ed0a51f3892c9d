"""Copy rows of the Arcadia source into session temp tables of the warehouse.

The source may be the warehouse database itself (`source=None`: one INSERT … SELECT) or
another server (COPY out of it and into the warehouse, through a spooled file, so no row
passes through Python objects).
"""

import tempfile

from sqlalchemy import Column, Connection, Engine, Numeric, Text

from arcadia_pipeline.db.schema import TSTZ


def version_columns() -> list[Column]:
    """The columns of arcadia.resource_versions a stage holds (new objects for each table)."""
    return [
        Column("resource_id", Text),
        Column("deployment_id", Text),
        Column("inventory_kind", Text),
        Column("size_gb", Numeric),
        Column("status", Text),
        Column("valid_from", TSTZ),
        Column("valid_to", TSTZ),
    ]


def stage_query(
    warehouse: Connection, source: Engine | None, query: str, params: dict, table: str
) -> None:
    """Append the rows of `query` (psycopg2 %(name)s parameters) run on the source to
    `table` in the warehouse."""
    if source is None:
        warehouse.exec_driver_sql(f"INSERT INTO {table} {query}", params)
        return
    raw_source = source.raw_connection()
    try:
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buffer:
            with raw_source.cursor() as cursor:
                sql = cursor.mogrify(query, params).decode()
                cursor.copy_expert(f"COPY ({sql}) TO STDOUT", buffer)
            buffer.seek(0)
            with warehouse.connection.cursor() as cursor:
                cursor.copy_expert(f"COPY {table} FROM STDIN", buffer)
    finally:
        raw_source.close()
