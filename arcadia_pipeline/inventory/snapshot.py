"""A day's inventory snapshot: the resource and deployment versions that existed during the
day, clipped to it, written from the staged source rows (the resource_inventory step).

`overlaps_day` and `clipped_to_day` are the one definition of "a version's part of a
day": the snapshot is written with them, and the corrections sensor compares the source
with the snapshots through them (inventory/changes.py).

A snapshot holds a version attributed to no deployment (the source's NULL deployment_id) under
UNATTRIBUTED (''), a key Citus can distribute by (db/schema.py): `held_deployment` is that
rule, and `clipped_rows` applies it to the source compared with the snapshots.

A day's fingerprint, per deployment (UNATTRIBUTED for the unattributed resources), is the count
and the sum of a 64-bit hash of each of its clipped rows (resource and deployment versions):
written with the snapshot, and what the reconciliation compares the source with, fingerprinted
the same way (inventory/reconciliation.py). A sum does not depend on the rows' order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Connection,
    DateTime,
    Text,
    and_,
    cast,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.sql.elements import ColumnElement

from arcadia_pipeline.db.schema import (
    UNATTRIBUTED,
    day_fingerprints,
    inventory_deployments,
    inventory_snapshots,
    kind_map,
    resource_inventory,
)
from arcadia_pipeline.db.terms import in_effect
from arcadia_pipeline.db.types import TSTZ
from arcadia_pipeline.inventory.staging import staged_deployments, staged_versions
from arcadia_pipeline.utc import day_bounds

# What a snapshot holds of a version besides its day and lineage: the columns the
# corrections sensor compares with the source.
SNAPSHOT_COLUMNS = (
    "resource_id",
    "deployment_id",
    "inventory_kind",
    "size_gb",
    "status",
    "starts_at",
    "ends_at",
)
# Likewise of a deployment version: its clipped part and what is billed from it.
DEPLOYMENT_SNAPSHOT_COLUMNS = ("deployment_id", "name", "plan_code", "starts_at", "ends_at")


def overlaps_day(versions, d0, d1) -> ColumnElement[bool]:
    """A version of `versions` (a table or subquery of source columns) exists during the
    day [d0, d1): timestamptz expressions or values."""
    v = versions.c
    return and_(v.valid_from < d1, or_(v.valid_to.is_(None), v.valid_to > d0))


def clipped_to_day(versions, d0, d1) -> tuple[ColumnElement, ColumnElement]:
    """(starts_at, ends_at): the part of an overlapping version inside [d0, d1)."""
    v = versions.c
    return func.greatest(v.valid_from, d0), func.least(func.coalesce(v.valid_to, d1), d1)


def metered_days(first: date, last: date):
    """The metered days of [first, last] (those with a snapshot) with their bounds: a
    subquery of (day, d0, d1)."""
    s = inventory_snapshots.c
    d0 = func.timezone("UTC", cast(s.day, DateTime))
    return (
        select(s.day, d0.label("d0"), (d0 + cast(literal("24 hours"), INTERVAL)).label("d1"))
        .where(s.day.between(first, last))
        .subquery("days")
    )


def held_deployment(versions) -> ColumnElement[str]:
    """The deployment_id a snapshot holds a version of `versions` under: UNATTRIBUTED for the
    source's NULL."""
    return func.coalesce(versions.c.deployment_id, UNATTRIBUTED)


def clipped_rows(versions, days, columns):
    """SELECT (day, *columns) of the source `versions` clipped to each of `days` they
    overlap (a subquery of day, d0, d1), as a snapshot holds them."""
    starts_at, ends_at = clipped_to_day(versions, days.c.d0, days.c.d1)
    clipped = {
        "starts_at": starts_at,
        "ends_at": ends_at,
        "deployment_id": held_deployment(versions),
    }
    v = versions.c
    return select(
        days.c.day, *(clipped[n].label(n) if n in clipped else v[n] for n in columns)
    ).join_from(versions, days, overlaps_day(versions, days.c.d0, days.c.d1))


def row_hash(kind: str, *values):
    """A 64-bit hash of one row's values, as JSON text (NULLs and types kept apart); `kind`
    tells rows of different tables apart."""
    return func.hashtextextended(
        cast(func.jsonb_build_array(cast(literal(kind), Text), *values), Text), 0
    )


def fingerprints(resources, deployments, resources_where=None, deployments_where=None):
    """SELECT (day, deployment_id, rows, fingerprint) of clipped rows as a snapshot holds
    them: `resources` with `day` and SNAPSHOT_COLUMNS, `deployments` with `day` and
    DEPLOYMENT_SNAPSHOT_COLUMNS, each filtered by its `*_where`. Given the snapshot tables
    themselves, the UNION's branches read them directly: Citus then runs it shard by shard
    (a branch over a subquery of a sharded table it pulls to the coordinator)."""
    r, d = resources.c, deployments.c
    # An unattributed row's deployment is hashed as NULL, what the snapshot held before
    # migration 0010: the fingerprints kept before it still match.
    hashed = {"deployment_id": func.nullif(r.deployment_id, UNATTRIBUTED)}
    parts = union_all(
        select(
            r.day,
            r.deployment_id,
            row_hash("r", *(hashed.get(name, r[name]) for name in SNAPSHOT_COLUMNS)).label("hash"),
        ).where(true() if resources_where is None else resources_where),
        select(
            d.day,
            d.deployment_id,
            row_hash("d", *(d[name] for name in DEPLOYMENT_SNAPSHOT_COLUMNS)).label("hash"),
        ).where(true() if deployments_where is None else deployments_where),
    ).subquery("parts")
    p = parts.c
    return select(
        p.day,
        p.deployment_id,
        func.count().label("rows"),
        func.sum(p.hash).label("fingerprint"),
    ).group_by(p.day, p.deployment_id)


def snapshot_rows(days):
    """The snapshot tables' rows of `days` (a subquery with `day`)."""
    i, d = resource_inventory, inventory_deployments
    resources = select(i).where(i.c.day.in_(select(days.c.day))).subquery("held_resources")
    deployments = select(d).where(d.c.day.in_(select(days.c.day))).subquery("held_deployments")
    return resources, deployments


def write_day_fingerprints(connection: Connection, day: date) -> None:
    """Replace the day's fingerprints with those of its snapshot (in the day's transaction,
    after its snapshot rows)."""
    connection.execute(delete(day_fingerprints).where(day_fingerprints.c.day == day))
    i, d = resource_inventory, inventory_deployments
    query = fingerprints(i, d, i.c.day == day, d.c.day == day)
    connection.execute(
        insert(day_fingerprints).from_select(["day", "deployment_id", "rows", "fingerprint"], query)
    )


@dataclass(frozen=True)
class InventorySnapshot:
    day: date
    snapshot_id: int
    versions: int
    resources: int
    unattributed_resources: int
    kept_newer: bool = False  # the day held a snapshot staged after this run's: kept


def _snapshot(row, kept_newer: bool = False) -> InventorySnapshot:
    return InventorySnapshot(
        day=row["day"],
        snapshot_id=row["snapshot_id"],
        versions=row["versions"],
        resources=row["resources"],
        unattributed_resources=row["unattributed_resources"],
        kept_newer=kept_newer,
    )


def replace_inventory_day(
    warehouse: Connection, day: date, run_id: str, taken_at: datetime
) -> InventorySnapshot:
    """Replace day's snapshot from the staged rows, staged at `taken_at` (the caller holds
    the day's transaction and lock).

    A snapshot staged after ours is kept: a correction run re-metered the day while this
    (long) run was on earlier days, and our older copy of the source would undo it.
    """
    existing = (
        warehouse.execute(select(inventory_snapshots).where(inventory_snapshots.c.day == day))
        .mappings()
        .one_or_none()
    )
    if existing is not None and existing["taken_at"] > taken_at:
        return _snapshot(existing, kept_newer=True)
    d0, d1 = day_bounds(day)
    v = staged_versions.c
    kinds = in_effect(kind_map, day)  # the day's month's kind map, whatever came after it
    k = kinds.c
    overlaps = overlaps_day(staged_versions, d0, d1)
    for table in (resource_inventory, inventory_deployments, inventory_snapshots):
        warehouse.execute(delete(table).where(table.c.day == day))

    billable = (
        select(k.inventory_kind)
        .where(k.inventory_kind == v.inventory_kind, k.billing_kind.is_not(None))
        .exists()
    )
    counts = select(
        literal(day).label("day"),
        literal(run_id).label("run_id"),
        literal(taken_at, TSTZ).label("taken_at"),
        func.max(v.recorded_at).label("source_recorded_through"),
        func.count().label("versions"),
        func.count(distinct(v.resource_id)).label("resources"),
        func.count(distinct(v.resource_id))
        .filter(and_(v.deployment_id.is_(None), billable))
        .label("unattributed_resources"),
    ).where(overlaps)
    snapshot_id = warehouse.execute(
        insert(inventory_snapshots)
        .from_select([c.name for c in counts.selected_columns], counts)
        .returning(inventory_snapshots.c.snapshot_id)
    ).scalar_one()

    starts_at, ends_at = clipped_to_day(staged_versions, d0, d1)
    rows = (
        select(
            literal(day).label("day"),
            literal(snapshot_id).label("snapshot_id"),
            v.resource_id,
            held_deployment(staged_versions).label("deployment_id"),
            v.inventory_kind,
            k.billing_kind,
            k.accrual,
            v.size_gb,
            v.status,
            v.valid_from,
            v.valid_to,
            starts_at.label("starts_at"),
            ends_at.label("ends_at"),
            v.recorded_at,
        )
        .join_from(staged_versions, kinds, k.inventory_kind == v.inventory_kind)
        .where(overlaps)
    )
    warehouse.execute(
        insert(resource_inventory).from_select([c.name for c in rows.selected_columns], rows)
    )
    sd = staged_deployments.c
    starts_at, ends_at = clipped_to_day(staged_deployments, d0, d1)
    deployments = select(
        literal(day).label("day"),
        sd.deployment_id,
        starts_at.label("starts_at"),
        ends_at.label("ends_at"),
        sd.name,
        sd.plan_code,
        sd.valid_from,
        sd.valid_to,
        sd.recorded_at,
    ).where(overlaps_day(staged_deployments, d0, d1))
    warehouse.execute(
        insert(inventory_deployments).from_select(
            [c.name for c in deployments.selected_columns], deployments
        )
    )
    write_day_fingerprints(warehouse, day)
    snap = (
        warehouse.execute(
            select(inventory_snapshots).where(inventory_snapshots.c.snapshot_id == snapshot_id)
        )
        .mappings()
        .one()
    )
    return _snapshot(snap)
