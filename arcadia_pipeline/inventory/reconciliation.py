"""The reconciliation: the source as it is now against each metered day's snapshot, by their
fingerprints (inventory/snapshot.py), trusting no timestamp.

The same function fingerprints the snapshot when it is written and the source when it is
reconciled: a hard delete, a late commit, a timestamp in the future or an update that did not
bump `recorded_at` all change a day's fingerprint, whatever their `recorded_at` says. A day
found different is recorded (`source_findings`), which makes its inventory stale, so
missed_days_sensor re-meters it (and a closed month's statements get their adjustments).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    func,
    insert,
    or_,
    select,
    union_all,
)

from arcadia_pipeline.db.schema import (
    day_fingerprints,
    source_findings,
)
from arcadia_pipeline.inventory.snapshot import (
    DEPLOYMENT_SNAPSHOT_COLUMNS,
    SNAPSHOT_COLUMNS,
    clipped_rows,
    fingerprints,
    metered_days,
    snapshot_rows,
)
from arcadia_pipeline.inventory.staging import stage_source, staged_deployments, staged_versions
from arcadia_pipeline.utc import days_bounds


def _source_rows(days):
    """The staged source versions clipped to each metered day, as the snapshot clips them."""
    return (
        clipped_rows(staged_versions, days, SNAPSHOT_COLUMNS).subquery("source_versions"),
        clipped_rows(staged_deployments, days, DEPLOYMENT_SNAPSHOT_COLUMNS).subquery(
            "source_deployments"
        ),
    )


def differing_days(
    warehouse: Connection, source: Engine | None, first: date, last: date
) -> dict[date, list[str]]:
    """The metered days of [first, last] whose source, as it is now, differs from their
    snapshot, each with the deployments that differ ('' for unattributed resources); writes
    nothing (caller holds the transaction: it stages the source in temp tables).
    `source=None`: the source relations are in the warehouse database.

    Days metered before fingerprints were kept are fingerprinted from their snapshot rows."""
    days = metered_days(first, last)
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
) -> None:
    """Record a reconciliation's findings, all found at one instant: each day's inventory
    written before them is stale, and re-metered (days/staleness.py)."""
    if not found:
        return
    found_at = connection.execute(select(func.clock_timestamp())).scalar_one()
    connection.execute(
        insert(source_findings),
        [
            {"day": day, "deployment_id": dep, "found_at": found_at, "run_id": run_id}
            for day, deployments in found.items()
            for dep in deployments
        ],
    )
