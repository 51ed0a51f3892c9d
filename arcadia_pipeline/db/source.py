"""The source contract: the two relations the Arcadia app owns and the pipeline reads.

In production they may be views over the app's own tables (read-only to the pipeline);
the tests and the demo create them from these descriptions. docs/domain.md describes them.
"""

from sqlalchemy import (
    Column,
    Connection,
    Index,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    inspect,
    text,
)
from sqlalchemy.schema import CreateSchema

from arcadia_pipeline.db.types import TSTZ

SOURCE_SCHEMA = "arcadia"
source_metadata = MetaData(schema=SOURCE_SCHEMA)

# One row per state interval of a deployment: [valid_from, valid_to), valid_to NULL = current.
# A deployment exists while one of its versions covers the time; a plan change or a rename
# closes one version and opens the next; a churned deployment keeps its versions.
deployment_versions = Table(
    "deployment_versions",
    source_metadata,
    Column("deployment_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("plan_code", Text, nullable=False),
    Column("valid_from", TSTZ, nullable=False),
    Column("valid_to", TSTZ),
    Column("recorded_at", TSTZ, nullable=False, server_default=func.now()),
    Index("deployment_versions_valid_from_idx", "valid_from"),
    Index("deployment_versions_recorded_at_idx", "recorded_at"),
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


SOURCE_TABLES = (deployment_versions, resource_versions)
# The comment on each source table this package creates: `demo seed` replaces the rows of
# such a table, and refuses to touch one without it (the Arcadia app's own data).
DEMO_MARK = "created by arcadia-pipeline for the demo and tests; demo seed may replace its rows"


def create_source_tables(connection: Connection) -> None:
    """Create the `arcadia` source relations that are missing, marked as this package's
    (tests and the demo only); existing ones are left as they are."""
    # Only when missing: even CREATE SCHEMA IF NOT EXISTS needs CREATE on the database.
    schema = connection.execute(text("SELECT to_regnamespace(:s)"), {"s": SOURCE_SCHEMA})
    if schema.scalar() is None:
        connection.execute(CreateSchema(SOURCE_SCHEMA))
    for table in SOURCE_TABLES:
        if not inspect(connection).has_table(table.name, schema=SOURCE_SCHEMA):
            table.create(connection)
            # A literal (utility statements take no parameters); DEMO_MARK has no quote.
            connection.execute(text(f"COMMENT ON TABLE {table.fullname} IS '{DEMO_MARK}'"))


def unmarked_source_relations(connection: Connection) -> list[str]:
    """The source relations that exist here without DEMO_MARK: not created by this package."""
    # Any kind of relation counts (a view over the app's tables is the app's too).
    found = text(
        "SELECT to_regclass(:t) IS NOT NULL "
        "AND obj_description(to_regclass(:t), 'pg_class') IS DISTINCT FROM :mark"
    )
    return [
        table.fullname
        for table in SOURCE_TABLES
        if connection.execute(found, {"t": table.fullname, "mark": DEMO_MARK}).scalar_one()
    ]
