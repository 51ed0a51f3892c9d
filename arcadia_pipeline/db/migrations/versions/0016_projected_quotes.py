"""projected_quotes: each deployment's quote projected to its month's end (issue 19).

Revision ID: 0016
Revises: 0015

`projected_quotes` and `projected_quote_lines` have the shape of `deployment_quotes` and
`deployment_quote_lines` (columns, defaults, checks, keys: CREATE TABLE … LIKE), one row per
day and deployment (and billing kind): the quote the deployment will get on the month's last
day if nothing changes after `as_of_date`. On a Citus cluster both are sharded by
deployment_id with the quotes.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Each new table and the table whose shape it takes.
TABLES = {
    "projected_quotes": "deployment_quotes",
    "projected_quote_lines": "deployment_quote_lines",
}


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
    for table, like in TABLES.items():
        op.execute(
            f"CREATE TABLE metering.{table}"
            f" (LIKE metering.{like} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        )
    if on_citus():
        for table in TABLES:
            op.execute(
                f"SELECT create_distributed_table('metering.{table}', 'deployment_id',"
                " colocate_with => 'metering.usage_records')"
            )
    # After the distribution: Citus creates a foreign key between co-located tables shard by
    # shard.
    op.execute(
        "ALTER TABLE metering.projected_quote_lines"
        " ADD CONSTRAINT projected_quote_lines_quote_fkey FOREIGN KEY (as_of_date, deployment_id)"
        " REFERENCES metering.projected_quotes (as_of_date, deployment_id) ON DELETE CASCADE"
    )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE metering.{table}")
