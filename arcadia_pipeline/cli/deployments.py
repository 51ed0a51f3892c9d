"""Whether the CLI knows a deployment: the same answer for `usage`, `quote` and `statement`."""

from __future__ import annotations

from sqlalchemy import Connection, exists, or_, select

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import (
    inventory_deployments,
    monthly_statements,
    statement_adjustments,
)
from arcadia_pipeline.db.source import deployment_versions
from arcadia_pipeline.settings import source_url

UNKNOWN = "not in arcadia.deployment_versions, any inventory snapshot or any statement"


def known_deployment(warehouse: Connection, deployment_id: str) -> bool:
    """In a day's inventory snapshot, a statement or an adjustment of any month, or the
    source now: a deployment deleted from the source stays known by what was metered."""
    i, s, adj = inventory_deployments.c, monthly_statements.c, statement_adjustments.c
    metered = warehouse.execute(
        select(
            or_(
                exists().where(i.deployment_id == deployment_id),
                exists().where(s.deployment_id == deployment_id),
                exists().where(adj.deployment_id == deployment_id),
            )
        )
    ).scalar_one()
    if metered:
        return True
    v = deployment_versions.c
    with make_engine(source_url()).connect() as source:
        return source.execute(select(exists().where(v.deployment_id == deployment_id))).scalar()
