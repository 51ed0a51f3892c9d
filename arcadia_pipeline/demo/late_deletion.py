"""A back-dated deletion of a resource on the demo source, as the Arcadia app records one
when it learns late that a resource was deleted (the month-close walk-through's correction).

`delete_resource_at(connection, resource_id, at)`:

- `resource_id`: a `arcadia.resource_versions.resource_id` (text, e.g. `spaces:3132807`).
- `at`: the instant of the deletion, an aware datetime (any zone; compared as UTC), to the
  microsecond. The resource ceases to exist from `at` on: `[valid_from, valid_to)` stays
  half-open, so it still exists until just before `at`.
- Effect (docs/domain.md §1, §4: a resource's versions never overlap and never have an empty
  interval): its version open at `at` gets `valid_to = at`, and every version starting at or
  after `at` (a resize, power change or move the app recorded later) is deleted, since the
  resource no longer existed then. When the version open at `at` starts exactly at `at`, its
  predecessor, which ends at `at`, is the last version. The last version's `recorded_at` is
  set to the database's `now()`, which is what `late_corrections_sensor` follows to re-meter
  the days the deletion changes. Two set-based statements on the caller's connection (after
  reads that lock the resource's versions): the caller's transaction holds them (and
  commits).
- Returns a `LateDeletion` (`resource_id`, `at`, `ended_from` the `valid_from` of the version
  now last, `removed` the number of later versions deleted).
- Errors, raised before anything is written: `ForeignSource` (a ValueError) when the source
  relations exist without the demo's mark (`DEMO_MARK`: the Arcadia app's own data is never
  touched); `DeletionRefused` (a ValueError) when `arcadia.resource_versions` does not exist,
  the resource is unknown, or it did not exist at `at` and just before it. Each message is
  one line naming the resource.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from arcadia_pipeline.db.source import resource_versions
from arcadia_pipeline.demo.seed import refuse_foreign_source


class DeletionRefused(ValueError):
    """The deletion cannot be recorded (the resource unknown, or not existing then)."""


@dataclass(frozen=True)
class LateDeletion:
    resource_id: str
    at: datetime  # UTC: the instant from which the resource no longer exists
    ended_from: datetime  # valid_from of the version that now ends at `at` (UTC)
    removed: int  # versions starting at or after `at`, deleted


def instant_text(instant: datetime) -> str:
    """An instant as UTC ISO 8601 with Z (2026-10-15T00:00:00Z; microseconds when it has
    them), as messages and the CLI write it."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def delete_resource_at(connection: sa.Connection, resource_id: str, at: datetime) -> LateDeletion:
    """End `resource_id` at `at` in the demo's source (see the module docstring)."""
    if at.tzinfo is None:
        raise ValueError(f"the deletion instant {at} has no time zone")
    at = at.astimezone(UTC)
    refuse_foreign_source(connection, f"record the deletion of {resource_id} in")
    table = resource_versions.fullname
    if connection.execute(sa.select(sa.func.to_regclass(table))).scalar() is None:
        raise DeletionRefused(f"cannot delete {resource_id}: {table} does not exist (no demo)")

    versions = resource_versions.c
    # A concurrent correction of the resource waits for this one.
    connection.execute(
        sa.select(versions.resource_id).where(versions.resource_id == resource_id).with_for_update()
    )
    ends_at_or_after = sa.or_(versions.valid_to.is_(None), versions.valid_to >= at)
    found = connection.execute(
        sa.select(
            sa.func.count().label("versions"),
            sa.func.bool_or(
                sa.and_(
                    versions.valid_from <= at,
                    sa.or_(versions.valid_to.is_(None), versions.valid_to > at),
                )
            ).label("exists_at"),
            sa.func.max(versions.valid_from)
            .filter(sa.and_(versions.valid_from < at, ends_at_or_after))
            .label("ended_from"),
        ).where(versions.resource_id == resource_id)
    ).one()
    if not found.versions:
        raise DeletionRefused(f"unknown resource {resource_id}: no version in {table}")
    if not found.exists_at or found.ended_from is None:
        raise DeletionRefused(
            f"resource {resource_id} did not exist at {instant_text(at)} and just before it: "
            "nothing to delete then"
        )

    removed = connection.execute(
        sa.delete(resource_versions).where(
            versions.resource_id == resource_id, versions.valid_from >= at
        )
    ).rowcount
    connection.execute(
        sa.update(resource_versions)
        .where(versions.resource_id == resource_id, versions.valid_from < at, ends_at_or_after)
        .values(valid_to=at, recorded_at=sa.func.now())
    )
    return LateDeletion(resource_id, at, found.ended_from.astimezone(UTC), removed)
