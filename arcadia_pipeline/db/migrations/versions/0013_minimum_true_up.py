"""The minimum commitment on quotes and statements (issue 19).

Revision ID: 0013
Revises: 0012

`deployment_quotes` and `monthly_statements` gain:
- `minimum_usd`: the deployment's minimum commitment prorated by existence like its base fee
  (`metering.plans.minimum_usd`, 0012), NULL when none of its plans has one;
- `minimum_true_up_usd`: what lifts `base_usd` + the lines to `minimum_usd` (0 when they
  reach it), part of `total_usd`.

Rows written before have no minimum and no true-up: their totals stand.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = ("deployment_quotes", "monthly_statements")


def upgrade() -> None:
    # One statement each: Citus propagates the ALTER of a distributed table statement by
    # statement, and refuses a string of several.
    for table in TABLES:
        op.execute(f"ALTER TABLE metering.{table} ADD COLUMN minimum_usd numeric(14, 2) NULL")
        op.execute(
            f"ALTER TABLE metering.{table} ADD COLUMN minimum_true_up_usd numeric(14, 2)"
            f" NOT NULL DEFAULT 0 CONSTRAINT {table}_true_up_is_not_negative"
            " CHECK (minimum_true_up_usd >= 0)"
        )


def downgrade() -> None:
    # A total that holds a true-up would lose the part of it no other column explains.
    # (`SELECT 1`: Citus refuses an empty select list on a distributed table.)
    op.execute(
        """
        DO $$
        BEGIN
          IF EXISTS (SELECT 1 FROM metering.deployment_quotes WHERE minimum_true_up_usd <> 0)
             OR EXISTS (SELECT 1 FROM metering.monthly_statements WHERE minimum_true_up_usd <> 0)
          THEN
            RAISE EXCEPTION 'downgrade below 0013 would lose minimum true-ups held in totals'
              USING ERRCODE = 'object_in_use';
          END IF;
        END $$
        """
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE metering.{table} DROP COLUMN minimum_true_up_usd")
        op.execute(f"ALTER TABLE metering.{table} DROP COLUMN minimum_usd")
