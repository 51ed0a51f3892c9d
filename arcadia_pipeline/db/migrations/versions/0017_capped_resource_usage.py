"""capped_resource_usage: each resource's month to date of the capped kinds, per day (issue 19).

Revision ID: 0017
Revises: 0016

A cap counts a resource's whole billing month of a kind at most the cap, so the billable
quantity of a capped kind needs each resource's month to date. Summed from the month's
usage records every day, that cost grows with the day of the month (a month's last day read
31 days of records twice: the aggregates and their check). The aggregates step now keeps
one row per (as_of_date, deployment_id, billing_kind, resource_id) of the kinds capped in
the day's month, with the resource's quantity from the month's first day to `as_of_date`:
a day is the day before's rows plus its own records.

Days aggregated before this revision are filled from their month's records here, so that a
day after them builds on complete rows; a month retention removed records of is never
metered again and gets none. With no cap row at all (the shipped catalog) there is nothing
to fill. On a Citus cluster the table is sharded by deployment_id with the usage records.
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLE = """
CREATE TABLE metering.capped_resource_usage (
  as_of_date    date    NOT NULL,
  deployment_id text    NOT NULL,
  billing_kind  text    NOT NULL,
  resource_id   text    NOT NULL,
  qty           numeric NOT NULL,
  PRIMARY KEY (as_of_date, deployment_id, billing_kind, resource_id)
)"""

# Each aggregated day's month to date per resource, of the kinds capped in its month (a
# kind whose first cap row is effective by the month's first day).
FILL = """
INSERT INTO metering.capped_resource_usage
  (as_of_date, deployment_id, billing_kind, resource_id, qty)
SELECT d.as_of_date, r.deployment_id, r.resource_kind, r.resource_id, sum(r.qty)
FROM (
  SELECT DISTINCT as_of_date, date_trunc('month', as_of_date::timestamp)::date AS month
  FROM metering.usage_period_aggregates
) AS d
JOIN (
  SELECT billing_kind, min(effective_from) AS capped_from
  FROM metering.billing_caps GROUP BY billing_kind
) AS c
  ON c.capped_from <= d.month
JOIN metering.usage_records AS r
  ON r.resource_kind = c.billing_kind
 AND r.period_start >= d.month::timestamp AT TIME ZONE 'UTC'
 AND r.period_start < (d.as_of_date + 1)::timestamp AT TIME ZONE 'UTC'
WHERE d.month NOT IN (SELECT month FROM metering.retention_removals)
GROUP BY d.as_of_date, r.deployment_id, r.resource_kind, r.resource_id
"""


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
    op.execute(TABLE)
    if on_citus():
        op.execute(
            "SELECT create_distributed_table('metering.capped_resource_usage', 'deployment_id',"
            " colocate_with => 'metering.usage_records')"
        )
    capped = op.get_bind().exec_driver_sql("SELECT EXISTS (SELECT FROM metering.billing_caps)")
    if capped.scalar_one():
        op.execute(FILL)


def downgrade() -> None:
    op.execute("DROP TABLE metering.capped_resource_usage")
