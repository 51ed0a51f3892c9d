"""Alerts sent to operators, one row per incident: what makes an alert go out once.

Revision ID: 0009
Revises: 0008

- `alerts`: per incident (`run:<run_id>`, `check:…`, `future:…`, `reconcile:<run_id>`,
  `close:<YYYY-MM>`), its kind, the subject sent, when and whether every alert URL took it.
  An incident is recorded (INSERT … ON CONFLICT DO NOTHING) before it is sent, and sent only
  by the call that recorded it, so a retried sensor tick never sends it twice
  (alerts/notify.py).
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metering.alerts (
          incident  text        PRIMARY KEY,
          kind      text        NOT NULL,
          subject   text        NOT NULL,
          sent_at   timestamptz NOT NULL,
          delivered boolean     NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metering.alerts")
