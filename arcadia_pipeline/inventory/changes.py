"""Which metered days the source's recent changes alter: the corrections sensor's SQL.

A day is changed when the source as it is now, clipped to the day exactly as the snapshot was
(`overlaps_day`, `clipped_to_day`), no longer gives the rows the day's snapshot holds for
the resources that changed. The comparison reads only the changed resources on both sides.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    Text,
    cast,
    except_all,
    func,
    literal,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import INTERVAL

from arcadia_pipeline.db.schema import inventory_snapshots, resource_inventory
from arcadia_pipeline.db.source import resource_versions
from arcadia_pipeline.db.staging import recreate, stage_rows, temporary_copy
from arcadia_pipeline.inventory.snapshot import SNAPSHOT_COLUMNS, clipped_to_day, overlaps_day
from arcadia_pipeline.utc import days_bounds

_staging = MetaData()
changed_versions = temporary_copy("changed_versions", resource_versions, _staging)
changed_resources = Table(
    "changed_resources", _staging, Column("resource_id", Text), prefixes=["TEMPORARY"]
)


def snapshot_times(warehouse: Connection, first: date, last: date) -> dict[date, datetime]:
    """When each metered day of [first, last] was staged from the source."""
    s = inventory_snapshots.c
    rows = warehouse.execute(select(s.day, s.taken_at).where(s.day.between(first, last))).all()
    return {day: taken_at for day, taken_at in rows}


def newest_recorded(source: Connection, since: datetime) -> datetime | None:
    """The newest recorded_at in the source after `since` (None: nothing recorded since)."""
    v = resource_versions.c
    return source.execute(select(func.max(v.recorded_at)).where(v.recorded_at > since)).scalar()


def batch_end(source: Connection, after: datetime, versions: int) -> datetime | None:
    """The recorded_at of the `versions`-th version recorded after `after` (or the last)."""
    v = resource_versions.c
    batch = (
        select(v.recorded_at).where(v.recorded_at > after).order_by(v.recorded_at).limit(versions)
    ).subquery("batch")
    return source.execute(select(func.max(batch.c.recorded_at))).scalar()


def _changed_resource_ids(since: datetime, until: datetime):
    v = resource_versions.c
    return select(v.resource_id).distinct().where(v.recorded_at > since, v.recorded_at <= until)


def _changed_versions_query(since: datetime, until: datetime, first: date, last: date):
    """All versions of the changed resources that overlap the days [first, last]."""
    window_start, window_end = days_bounds(first, last)
    return select(resource_versions).where(
        resource_versions.c.resource_id.in_(_changed_resource_ids(since, until)),
        overlaps_day(resource_versions, window_start, window_end),
    )


def _changed_days_query(first: date, last: date):
    """Metered days of [first, last] where the changed resources, clipped to the day, differ
    from the day's snapshot of them (either way: added, removed or altered)."""
    s = inventory_snapshots.c
    d0 = func.timezone("UTC", cast(s.day, DateTime))
    days = (
        select(s.day, d0.label("d0"), (d0 + cast(literal("24 hours"), INTERVAL)).label("d1"))
        .where(s.day.between(first, last))
        .subquery("days")
    )
    # The two source reads are separate statements: compare exactly the same resources.
    changed = select(changed_resources.c.resource_id)
    v = changed_versions.c
    starts_at, ends_at = clipped_to_day(changed_versions, days.c.d0, days.c.d1)
    clipped = {"starts_at": starts_at, "ends_at": ends_at}
    columns = [clipped[n].label(n) if n in clipped else v[n] for n in SNAPSHOT_COLUMNS]
    source_now = (
        select(days.c.day, *columns)
        .join_from(changed_versions, days, overlaps_day(changed_versions, days.c.d0, days.c.d1))
        .where(v.resource_id.in_(changed))
    )
    i = resource_inventory.c
    snapshot = (
        select(i.day, *(i[name] for name in SNAPSHOT_COLUMNS))
        .join_from(resource_inventory, days, days.c.day == i.day)
        .where(i.resource_id.in_(changed))
    )
    added = except_all(source_now, snapshot).subquery("added")
    removed = except_all(snapshot, source_now).subquery("removed")
    return union(select(added.c.day), select(removed.c.day))


def changed_days(
    warehouse: Connection,
    source: Engine | None,
    snapshots: dict[date, datetime],
    since: datetime,
    until: datetime,
) -> set[date]:
    """Metered days (those of `snapshots`) whose inventory the versions recorded in
    (since, until] change (caller holds the transaction). `source=None`: the source
    relations are in the warehouse database."""
    if not snapshots:
        return set()
    first, last = min(snapshots), max(snapshots)
    recreate(warehouse, changed_resources, changed_versions)
    stage_rows(warehouse, source, _changed_resource_ids(since, until), changed_resources)
    stage_rows(
        warehouse, source, _changed_versions_query(since, until, first, last), changed_versions
    )
    warehouse.exec_driver_sql(f"ANALYZE {changed_resources.name}")
    return set(warehouse.execute(_changed_days_query(first, last)).scalars())
