"""Deployments have a history: a day's inventory holds the deployment versions clipped to the
day, and a statement records the plan periods of its month.

Snapshots written before this change held each deployment's plan as the source had it when
the day was metered, for the whole day: each such row becomes one version covering the day
it is in, still open (valid_to NULL), so a month metered before the change prices exactly
as it did.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE metering.inventory_deployments
          ADD COLUMN starts_at   timestamptz NULL,
          ADD COLUMN ends_at     timestamptz NULL,
          ADD COLUMN valid_from  timestamptz NULL,
          ADD COLUMN valid_to    timestamptz NULL,
          ADD COLUMN recorded_at timestamptz NULL
        """
    )
    op.execute(
        """
        UPDATE metering.inventory_deployments
           SET starts_at  = day::timestamp AT TIME ZONE 'UTC',
               ends_at    = (day + 1)::timestamp AT TIME ZONE 'UTC',
               valid_from = day::timestamp AT TIME ZONE 'UTC'
        """
    )
    op.execute(
        """
        ALTER TABLE metering.inventory_deployments
          ALTER COLUMN starts_at SET NOT NULL,
          ALTER COLUMN ends_at SET NOT NULL,
          ALTER COLUMN valid_from SET NOT NULL,
          DROP CONSTRAINT inventory_deployments_pkey,
          ADD PRIMARY KEY (day, deployment_id, starts_at),
          ADD CHECK (ends_at > starts_at)
        """
    )
    op.execute(
        "CREATE INDEX inventory_deployments_deployment_idx "
        "ON metering.inventory_deployments (deployment_id, day)"
    )
    op.execute("ALTER TABLE metering.monthly_statements ADD COLUMN plan_periods jsonb NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE metering.monthly_statements DROP COLUMN plan_periods")
    op.execute("DROP INDEX metering.inventory_deployments_deployment_idx")
    op.execute(
        """
        DELETE FROM metering.inventory_deployments i
         WHERE EXISTS (SELECT 1 FROM metering.inventory_deployments later
                        WHERE later.day = i.day AND later.deployment_id = i.deployment_id
                          AND later.starts_at > i.starts_at)
        """
    )
    op.execute(
        """
        ALTER TABLE metering.inventory_deployments
          DROP CONSTRAINT inventory_deployments_pkey,
          DROP CONSTRAINT inventory_deployments_check,
          DROP COLUMN starts_at,
          DROP COLUMN ends_at,
          DROP COLUMN valid_from,
          DROP COLUMN valid_to,
          DROP COLUMN recorded_at,
          ADD PRIMARY KEY (day, deployment_id)
        """
    )
