"""The source contract: the two relations the Arcadia app owns and the pipeline reads.

In production they may be views over the app's own tables (read-only to the pipeline);
the tests and the demo create them from these descriptions. docs/domain.md describes them.
"""

from sqlalchemy import Column, Connection, Index, MetaData, Numeric, Table, Text, func
from sqlalchemy.schema import CreateSchema

from arcadia_pipeline.db.types import TSTZ

SOURCE_SCHEMA = "arcadia"
source_metadata = MetaData(schema=SOURCE_SCHEMA)

deployments = Table(
    "deployments",
    source_metadata,
    Column("deployment_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("plan_code", Text, nullable=False),
)

# One row per state interval of a resource: [valid_from, valid_to), valid_to NULL = current.
resource_versions = Table(
    "resource_versions",
    source_metadata,
    Column("resource_id", Text, nullable=False),
    Column("deployment_id", Text),  # NULL: not attributed, never metered
    Column("inventory_kind", Text, nullable=False),
    Column("size_gb", Numeric),  # required for storage kinds
    Column("status", Text, nullable=False),  # 'active' | 'off'
    Column("valid_from", TSTZ, nullable=False),
    Column("valid_to", TSTZ),
    # When the app wrote or corrected the row: what the corrections sensor follows.
    Column("recorded_at", TSTZ, nullable=False, server_default=func.now()),
    Index("resource_versions_valid_from_idx", "valid_from"),
    Index("resource_versions_recorded_at_idx", "recorded_at"),
)


def create_source_tables(connection: Connection) -> None:
    """Create the `arcadia` source relations if they are missing (tests and the demo only)."""
    connection.execute(CreateSchema(SOURCE_SCHEMA, if_not_exists=True))
    source_metadata.create_all(connection, checkfirst=True)
