"""What a source table holds now, as one data version: its row count and the sum of a 64-bit
hash of each whole row (every column, `recorded_at` included), so any insert, update or
delete changes it whatever the row's timestamps say. Dagster records it on each observation
of the source assets (defs/inventory/source_assets.py): the UI shows when the source
changed, and the inventory days read before it as stale against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Numeric, Table, cast, func, select

from arcadia_pipeline.inventory.snapshot import row_hash


@dataclass(frozen=True)
class SourceVersion:
    """One observation of a source table: its rows, their hash sum, the newest
    `recorded_at` (None when empty)."""

    rows: int
    hash_sum: int
    newest_recorded_at: datetime | None

    @property
    def data_version(self) -> str:
        """'<rows>:<hash sum>': equal for equal contents, whatever the rows' order."""
        return f"{self.rows}:{self.hash_sum}"


def source_version(connection: Connection, table: Table) -> SourceVersion:
    """The table's data version now: one scan of the table in the database (about a second
    per million rows)."""
    hashed = func.coalesce(func.sum(cast(row_hash(table.name, *table.c), Numeric)), 0)
    rows, hash_sum, newest = connection.execute(
        select(func.count(), hashed, func.max(table.c.recorded_at))
    ).one()
    return SourceVersion(rows=rows, hash_sum=int(hash_sum), newest_recorded_at=newest)
