"""The reconciliation: the source as it is now against each metered day's snapshot, by their
fingerprints (inventory/snapshot.py), trusting no timestamp.

The same function fingerprints the snapshot when it is written and the source when it is
reconciled: a hard delete, a late commit, a timestamp in the future or an update that did not
bump `recorded_at` all change a day's fingerprint, whatever their `recorded_at` says. A day
found different is recorded (`source_findings`), which makes its inventory stale, so
missed_days_sensor re-meters it (and a closed month's statements get their adjustments).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import INTERVAL

from arcadia_pipeline.db.schema import (
    day_fingerprints,
    inventory_snapshots,
    source_findings,
)
from arcadia_pipeline.inventory.snapshot import (
    DEPLOYMENT_SNAPSHOT_COLUMNS,
    SNAPSHOT_COLUMNS,
    clipped_to_day,
    fingerprints,
    overlaps_day,
    snapshot_rows,
)
from arcadia_pipeline.inventory.staging import stage_source, staged_deployments, staged_versions
from arcadia_pipeline.utc import days_bounds


def _metered_days(first: date, last: date):
    s = inventory_snapshots.c
    d0 = func.timezone("UTC", cast(s.day, DateTime))
    return (
        select(s.day, d0.label("d0"), (d0 + cast(literal("24 hours"), INTERVAL)).label("d1"))
        .where(s.day.between(first, last))
        .subquery("days")
    )


def _source_rows(days):
    """The staged source versions clipped to each metered day, as the snapshot clips them."""
    clipped = []
    for versions, columns in (
        (staged_versions, SNAPSHOT_COLUMNS),
        (staged_deployments, DEPLOYMENT_SNAPSHOT_COLUMNS),
    ):
        starts_at, ends_at = clipped_to_day(versions, days.c.d0, days.c.d1)
        values = {"starts_at": starts_at, "ends_at": ends_at}
        clipped.append(
            select(
                days.c.day,
                *(values[name].label(name) if name in values else versions.c[name]
                  for name in columns),
            )
            .join_from(versions, days, overlaps_day(versions, days.c.d0, days.c.d1))
            .subquery(f"source_{versions.name}")
        )  # fmt: skip
    return clipped


def differing_days(
    warehouse: Connection, source: Engine | None, first: date, last: date
) -> dict[date, list[str]]:
    """The metered days of [first, last] whose source, as it is now, differs from their
    snapshot, each with the deployments that differ ('' for unattributed resources); writes
    nothing (caller holds the transaction: it stages the source in temp tables).
    `source=None`: the source relations are in the warehouse database.

    Days metered before fingerprints were kept are fingerprinted from their snapshot rows."""
    days = _metered_days(first, last)
    if warehouse.execute(select(func.count()).select_from(days)).scalar_one() == 0:
        return {}
    stage_source(warehouse, source, *days_bounds(first, last))
    now = fingerprints(*_source_rows(days)).subquery("now")
    f = day_fingerprints.c
    kept = select(f.day).where(f.day.between(first, last)).distinct()
    legacy = select(days.c.day).where(days.c.day.not_in(kept)).subquery("legacy")
    held = union_all(
        select(f.day, f.deployment_id, f.rows, f.fingerprint).where(f.day.between(first, last)),
        fingerprints(*snapshot_rows(legacy)),
    ).subquery("held")
    on = and_(now.c.day == held.c.day, now.c.deployment_id == held.c.deployment_id)
    differ = or_(
        now.c.rows.is_distinct_from(held.c.rows),
        now.c.fingerprint.is_distinct_from(held.c.fingerprint),
    )
    rows = warehouse.execute(
        select(
            func.coalesce(now.c.day, held.c.day),
            func.coalesce(now.c.deployment_id, held.c.deployment_id),
        )
        .select_from(now.join(held, on, full=True))
        .where(differ)
    ).all()
    found: dict[date, list[str]] = {}
    for day, deployment_id in sorted(rows):
        found.setdefault(day, []).append(deployment_id)
    return found


def record_findings(
    connection: Connection, found: dict[date, list[str]], run_id: str | None
) -> datetime | None:
    """Record a reconciliation's findings: each day's inventory written before them is
    stale, and re-metered (days/staleness.py). Returns when they were found."""
    if not found:
        return None
    found_at = connection.execute(select(func.clock_timestamp())).scalar_one()
    connection.execute(
        insert(source_findings),
        [
            {"day": day, "deployment_id": dep, "found_at": found_at, "run_id": run_id}
            for day, deployments in found.items()
            for dep in deployments
        ],
    )
    return found_at
