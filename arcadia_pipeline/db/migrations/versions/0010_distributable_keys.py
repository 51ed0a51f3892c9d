"""Keys a Citus cluster accepts: every per-deployment row has a deployment_id, every unique key
includes it.

Revision ID: 0010
Revises: 0009

Citus distributes the per-deployment tables by `deployment_id` (issue 18). On a single
PostgreSQL nothing changes in what the pipeline computes:

- `resource_inventory.deployment_id` is NOT NULL: a version attributed to no deployment (the
  source's NULL) is held under the sentinel `''`, as `day_fingerprints` already keys it (Citus
  refuses NULL in a distribution column). Validation refuses a blank deployment_id in the
  source, so no deployment is `''`.
- `statement_adjustments`' primary key is (deployment_id, adjustment_id): Citus wants the
  distribution column in every unique constraint. adjustment_id stays a bigserial: its
  sequence still numbers each adjustment once.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE metering.resource_inventory SET deployment_id = '' WHERE deployment_id IS NULL;
        ALTER TABLE metering.resource_inventory ALTER COLUMN deployment_id SET NOT NULL;
        ALTER TABLE metering.statement_adjustments
          DROP CONSTRAINT statement_adjustments_pkey,
          ADD PRIMARY KEY (deployment_id, adjustment_id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE metering.statement_adjustments
          DROP CONSTRAINT statement_adjustments_pkey,
          ADD PRIMARY KEY (adjustment_id);
        ALTER TABLE metering.resource_inventory ALTER COLUMN deployment_id DROP NOT NULL;
        UPDATE metering.resource_inventory SET deployment_id = NULL WHERE deployment_id = '';
        """
    )
