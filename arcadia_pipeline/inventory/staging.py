"""The source rows a run needs, copied into session temp tables of the warehouse: every
resource version and every deployment version that touches the run's window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, MetaData, and_, func, or_, select

from arcadia_pipeline.db.source import deployment_versions, resource_versions
from arcadia_pipeline.db.staging import recreate, stage_rows, temporary_copy

# Session-local copies of the source rows a run needs (temporary: they vanish with the
# connection, and each run has its own).
_staging = MetaData()
staged_versions = temporary_copy("staged_versions", resource_versions, _staging)
staged_deployments = temporary_copy("staged_deployments", deployment_versions, _staging)


def source_versions_query(window_start: datetime, window_end: datetime, versions=resource_versions):
    """What a run reads of a versioned source relation (resource or deployment versions):
    every version overlapping the window, and every version starting inside it even when it
    ends before it starts, or with no start at all (so validation names those rows instead
    of them silently falling out of the window)."""
    v = versions.c
    return select(versions).where(
        or_(
            v.valid_from.is_(None),
            and_(
                v.valid_from < window_end,
                or_(v.valid_to.is_(None), v.valid_to > window_start, v.valid_from >= window_start),
            ),
        )
    )


def stage_source(
    warehouse: Connection,
    source: Engine | None,
    window_start: datetime,
    window_end: datetime,
) -> tuple[int, datetime]:
    """Copy the source's resource and deployment versions overlapping the window into
    session temp tables.

    `source=None` means the source relations live in the warehouse database itself.
    Returns the number of staged versions and when the staging transaction started: every
    version recorded before then is in the stage (the snapshots' `taken_at`, which the
    corrections sensor compares recorded_at with).
    """
    recreate(warehouse, staged_versions, staged_deployments)
    stage_rows(warehouse, source, source_versions_query(window_start, window_end), staged_versions)
    deployments = source_versions_query(window_start, window_end, deployment_versions)
    stage_rows(warehouse, source, deployments, staged_deployments)
    for table in (staged_versions, staged_deployments):  # validation plans with these
        warehouse.exec_driver_sql(f"ANALYZE {table.name}")
    staged = warehouse.execute(select(func.count()).select_from(staged_versions)).scalar_one()
    return staged, warehouse.execute(select(func.now())).scalar_one()
