"""When each daily asset last wrote each day: month-to-date figures older than a correction
of an earlier day of their month become visible (and are refreshed).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metering.day_writes (
          asset      text        NOT NULL,
          day        date        NOT NULL,
          written_at timestamptz NOT NULL,
          run_id     text        NULL,
          PRIMARY KEY (asset, day)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metering.day_writes")
