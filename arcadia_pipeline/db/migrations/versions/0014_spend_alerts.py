"""Spend alerts: thresholds per deployment and the crossings found (issue 19).

Revision ID: 0014
Revises: 0013

- `spend_alerts`: catalog data, one row per (deployment, threshold in USD). Shipped empty.
- `spend_alert_events`: each threshold a deployment's quote reached in a billing month, once
  (its primary key): the day and the quote total that reached it first, the basis
  (`month_to_date`: the day's quote; `projected`: its projection to the month's end), when it
  was recorded and when the operators were told (NULL: not yet; spend_alert_sensor).

A threshold must be a positive amount under 1e9 USD: the check refuses NaN and infinity (both
compare above any number in PostgreSQL). On a Citus cluster both tables are sharded by
deployment_id with the quotes, so finding a day's crossings is one statement per shard.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = ("spend_alerts", "spend_alert_events")


def on_citus() -> bool:
    bind = op.get_bind()
    return bool(
        bind.exec_driver_sql(
            "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
        ).scalar_one()
    ) and bool(
        bind.exec_driver_sql("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0").scalar_one()
    )


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metering.spend_alerts (
          deployment_id text          NOT NULL,
          threshold_usd numeric(14,2) NOT NULL
            CONSTRAINT spend_alerts_threshold_is_an_amount
            CHECK (threshold_usd > 0 AND threshold_usd < 1e9),
          PRIMARY KEY (deployment_id, threshold_usd)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE metering.spend_alert_events (
          deployment_id text          NOT NULL,
          threshold_usd numeric(14,2) NOT NULL,
          month         date          NOT NULL
            CONSTRAINT spend_alert_events_month_is_a_month
            CHECK (month = date_trunc('month', month)),
          basis         text          NOT NULL
            CONSTRAINT spend_alert_events_basis_is_known
            CHECK (basis IN ('month_to_date', 'projected')),
          as_of_date    date          NOT NULL,
          total_usd     numeric(14,2) NOT NULL,
          recorded_at   timestamptz   NOT NULL DEFAULT now(),
          alerted_at    timestamptz   NULL,
          PRIMARY KEY (deployment_id, threshold_usd, month)
        )
        """
    )
    if on_citus():
        for table in TABLES:
            op.execute(
                f"SELECT create_distributed_table('metering.{table}', 'deployment_id',"
                " colocate_with => 'metering.usage_records')"
            )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE metering.{table}")
