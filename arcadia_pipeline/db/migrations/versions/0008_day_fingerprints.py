"""Reconciliation without timestamps: each metered day's fingerprint per deployment, and what
a reconciliation found different in the source.

Revision ID: 0008
Revises: 0007

- `day_fingerprints`: per metered day and deployment ('' for the unattributed resources),
  the count and an order-independent hash of the snapshot's clipped rows (resource and
  deployment versions), written with the day's snapshot (inventory/fingerprints.py). Days
  metered before this migration have none: a reconciliation reads their fingerprint from
  their snapshot rows.
- `source_findings`: per day and deployment, when a reconciliation found the source as it
  is now different from the day's snapshot; a day whose inventory was written before such a
  finding is stale (days/staleness.py) and metered again.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metering.day_fingerprints (
          day           date    NOT NULL,
          deployment_id text    NOT NULL,   -- '': the day's unattributed resources
          rows          bigint  NOT NULL,
          fingerprint   numeric NOT NULL,
          PRIMARY KEY (day, deployment_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE metering.source_findings (
          day           date        NOT NULL,
          deployment_id text        NOT NULL,
          found_at      timestamptz NOT NULL,
          run_id        text        NULL,
          PRIMARY KEY (day, deployment_id, found_at)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metering.source_findings")
    op.execute("DROP TABLE metering.day_fingerprints")
