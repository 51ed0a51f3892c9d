"""The source contract: the two relations the Arcadia app owns and the pipeline reads.

In production they may be views over the app's own tables; tests and the demo create
them with exactly the DDL of DESIGN.md.
"""

from sqlalchemy import Connection, text

SOURCE_SCHEMA = "arcadia"

SOURCE_DDL = """
CREATE SCHEMA IF NOT EXISTS arcadia;

CREATE TABLE IF NOT EXISTS arcadia.deployments (
  deployment_id text PRIMARY KEY,
  name          text NOT NULL,
  plan_code     text NOT NULL
);

CREATE TABLE IF NOT EXISTS arcadia.resource_versions (
  resource_id    text        NOT NULL,
  deployment_id  text        NULL,
  inventory_kind text        NOT NULL,
  size_gb        numeric     NULL,
  status         text        NOT NULL,
  valid_from     timestamptz NOT NULL,
  valid_to       timestamptz NULL,
  recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS resource_versions_valid_from_idx
  ON arcadia.resource_versions (valid_from);
CREATE INDEX IF NOT EXISTS resource_versions_recorded_at_idx
  ON arcadia.resource_versions (recorded_at);
"""


def create_source_tables(connection: Connection) -> None:
    """Create the `arcadia` source relations if they are missing (tests and the demo only)."""
    connection.execute(text(SOURCE_DDL))
