"""Which metered days the source's recent changes alter: the corrections sensor's SQL.

A day is changed when the source as it is now, clipped to the day exactly as the snapshot was
(`overlaps_day`, `clipped_to_day`), no longer gives the rows the day's snapshot holds for
the resources, or the deployments, that changed. The comparison reads only the changed
resources and deployments on both sides. A deployment version's end beyond the day is not
compared: a day's month-to-date terms are those known on the day (pricing/proration.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    except_all,
    func,
    literal,
    select,
    union,
    union_all,
)

from arcadia_pipeline.db.schema import (
    inventory_deployments,
    inventory_snapshots,
    resource_inventory,
)
from arcadia_pipeline.db.source import deployment_versions, resource_versions
from arcadia_pipeline.db.staging import recreate, stage_rows, temporary_copy
from arcadia_pipeline.errors import MAX_LISTED
from arcadia_pipeline.inventory.snapshot import (
    DEPLOYMENT_SNAPSHOT_COLUMNS,
    SNAPSHOT_COLUMNS,
    clipped_rows,
    metered_days,
    overlaps_day,
)
from arcadia_pipeline.utc import days_bounds

_staging = MetaData()
changed_versions = temporary_copy("changed_versions", resource_versions, _staging)
changed_resources = Table(
    "changed_resources", _staging, Column("resource_id", Text), prefixes=["TEMPORARY"]
)
changed_deployment_versions = temporary_copy(
    "changed_deployment_versions", deployment_versions, _staging
)
changed_deployments = Table(
    "changed_deployments", _staging, Column("deployment_id", Text), prefixes=["TEMPORARY"]
)
# What the sensor follows: each versioned source relation by its id column.
_FOLLOWED = (
    (resource_versions, "resource_id", changed_resources, changed_versions),
    (deployment_versions, "deployment_id", changed_deployments, changed_deployment_versions),
)


def _recorded_after(after: datetime):
    """recorded_at of every version of either source relation recorded after `after`."""
    return union_all(
        *(select(table.c.recorded_at).where(table.c.recorded_at > after) for table, *_ in _FOLLOWED)
    ).subquery("recorded")


def snapshot_times(warehouse: Connection, first: date, last: date) -> dict[date, datetime]:
    """When each metered day of [first, last] was staged from the source."""
    s = inventory_snapshots.c
    rows = warehouse.execute(select(s.day, s.taken_at).where(s.day.between(first, last))).all()
    return {day: taken_at for day, taken_at in rows}


def newest_recorded(source: Connection, since: datetime) -> datetime | None:
    """The newest recorded_at of a resource or deployment version after `since` (None:
    nothing recorded since)."""
    recorded = _recorded_after(since)
    return source.execute(select(func.max(recorded.c.recorded_at))).scalar()


def future_versions(source: Connection, now: datetime) -> list[str]:
    """The versions (resource or deployment) whose recorded_at is after `now`, named with it
    (up to MAX_LISTED, oldest first): a clock ahead, never trusted as the sensor's cursor."""
    named = union_all(
        *(
            select(
                (literal(f"{id_column.split('_')[0]} ") + table.c[id_column]).label("subject"),
                table.c.valid_from,
                table.c.recorded_at,
            ).where(table.c.recorded_at > now)
            for table, id_column, *_ in _FOLLOWED
        )
    ).subquery("future")
    f = named.c
    rows = source.execute(
        select(f.subject, f.valid_from, f.recorded_at)
        .order_by(f.recorded_at, f.subject)
        .limit(MAX_LISTED)
    ).all()
    return [
        f"{subject} version valid_from {valid_from.isoformat()} recorded_at {recorded.isoformat()}"
        for subject, valid_from, recorded in rows
    ]


def batch_end(source: Connection, after: datetime, versions: int) -> datetime | None:
    """The recorded_at of the `versions`-th version (resource or deployment) recorded after
    `after` (or the last)."""
    recorded = _recorded_after(after)
    batch = (
        select(recorded.c.recorded_at).order_by(recorded.c.recorded_at).limit(versions)
    ).subquery("batch")
    return source.execute(select(func.max(batch.c.recorded_at))).scalar()


def _changed_ids(table, id_column: str, since: datetime, until: datetime):
    v = table.c
    return select(v[id_column]).distinct().where(v.recorded_at > since, v.recorded_at <= until)


def _changed_versions_query(
    table, id_column: str, since: datetime, until: datetime, first: date, last: date
):
    """All versions of the changed ids that overlap the days [first, last]."""
    window_start, window_end = days_bounds(first, last)
    return select(table).where(
        table.c[id_column].in_(_changed_ids(table, id_column, since, until)),
        overlaps_day(table, window_start, window_end),
    )


def _differing_days(days, versions, changed, id_column, snapshot, columns):
    """Days where the changed ids' versions, clipped to the day, and the day's snapshot of
    them differ either way (added, removed or altered)."""
    # The two source reads are separate statements: compare exactly the same ids.
    ids = select(changed.c[id_column])
    source_now = clipped_rows(versions, days, columns).where(versions.c[id_column].in_(ids))
    i = snapshot.c
    held = (
        select(i.day, *(i[name] for name in columns))
        .join_from(snapshot, days, days.c.day == i.day)
        .where(i[id_column].in_(ids))
    )
    added = except_all(source_now, held).subquery()
    removed = except_all(held, source_now).subquery()
    return select(added.c.day), select(removed.c.day)


def _changed_days_query(first: date, last: date):
    """Metered days of [first, last] where the changed resources or deployments, clipped to
    the day, differ from the day's snapshot of them."""
    days = metered_days(first, last)
    resources = _differing_days(
        days, changed_versions, changed_resources, "resource_id", resource_inventory,
        SNAPSHOT_COLUMNS,
    )  # fmt: skip
    deployments = _differing_days(
        days, changed_deployment_versions, changed_deployments, "deployment_id",
        inventory_deployments, DEPLOYMENT_SNAPSHOT_COLUMNS,
    )  # fmt: skip
    return union(*resources, *deployments)


def changed_days(
    warehouse: Connection,
    source: Engine | None,
    snapshots: dict[date, datetime],
    since: datetime,
    until: datetime,
) -> set[date]:
    """Metered days (those of `snapshots`) whose inventory the resource and deployment
    versions recorded in (since, until] change (caller holds the transaction).
    `source=None`: the source relations are in the warehouse database."""
    if not snapshots:
        return set()
    first, last = min(snapshots), max(snapshots)
    for table, id_column, changed, versions in _FOLLOWED:
        recreate(warehouse, changed, versions)
        stage_rows(warehouse, source, _changed_ids(table, id_column, since, until), changed)
        query = _changed_versions_query(table, id_column, since, until, first, last)
        stage_rows(warehouse, source, query, versions)
        warehouse.exec_driver_sql(f"ANALYZE {changed.name}")
    return set(warehouse.execute(_changed_days_query(first, last)).scalars())
