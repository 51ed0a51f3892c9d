"""The reconciliation's cost: inventory/reconciliation.differing_days over metered days (the
nightly job's work over a day, the weekly sweep's over two months), timed in this process on
the bench database, against what metering those days cost."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date


@dataclass
class Reconciled:
    first: date
    last: date
    metered_days: int
    differing_days: int
    seconds: float


def time_reconciliation(url: str, first: date, last: date) -> Reconciled:
    """Reconcile the metered days of [first, last] against the source (writing nothing)."""
    from sqlalchemy import func, select

    from arcadia_pipeline.db.engine import make_engine
    from arcadia_pipeline.db.schema import inventory_snapshots
    from arcadia_pipeline.inventory.reconciliation import differing_days

    engine = make_engine(url)
    with engine.connect() as connection:
        s = inventory_snapshots.c
        metered = connection.execute(
            select(func.count()).where(s.day.between(first, last))
        ).scalar_one()
        started = time.perf_counter()
        found = differing_days(connection, None, first, last)
        seconds = time.perf_counter() - started
        connection.rollback()
    engine.dispose()
    return Reconciled(first, last, metered, len(found), seconds)
