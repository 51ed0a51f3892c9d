"""Each day's check verdicts and failed attempts beside its write stamps: whether a month can
close is a query.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metering.day_checks (
          check_name text        NOT NULL,
          day        date        NOT NULL,
          asset      text        NOT NULL,
          passed     boolean     NOT NULL,
          problems   integer     NOT NULL CHECK (problems >= 0),
          checked_at timestamptz NOT NULL,
          run_id     text        NULL,
          PRIMARY KEY (check_name, day)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE metering.day_failures (
          asset     text        NOT NULL,
          day       date        NOT NULL,
          failed_at timestamptz NOT NULL,
          run_id    text        NULL,
          message   text        NOT NULL,
          PRIMARY KEY (asset, day)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metering.day_failures")
    op.execute("DROP TABLE metering.day_checks")
