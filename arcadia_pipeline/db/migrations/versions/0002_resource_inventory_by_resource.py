"""Index the inventory snapshots by resource: the corrections sensor compares the changed
resources' snapshot rows over its look-back every few minutes, which by day alone would read
every resource of every day.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On the partitioned parent: PostgreSQL creates it on every month partition, present
    # and future.
    op.execute(
        "CREATE INDEX resource_inventory_resource_idx "
        "ON metering.resource_inventory (resource_id, day)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX metering.resource_inventory_resource_idx")
