"""Per-resource monthly caps read (issue 19): the billable quantity beside the raw one.

Revision ID: 0015
Revises: 0014

`usage_period_aggregates`, `deployment_quote_lines` and `monthly_statement_lines` gain
`billable_qty`: the raw quantity with each resource's month of a capped billing kind counted
at most its cap (`metering.billing_caps`, 0012). Lines are priced on it; the raw quantity
stays (`qty`, or `usage` on quote lines).

Rows written before were priced on their raw quantity (no cap was read), so they are filled
with it. The fill is a column rewrite (ALTER … TYPE … USING), not an UPDATE: the lines of a
closed statement never change (0004's trigger), and a rewrite fires no row trigger, while a
closed line's billed figures stay what they were.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Each table and the column holding its raw quantity.
RAW = {
    "usage_period_aggregates": "qty",
    "deployment_quote_lines": "usage",
    "monthly_statement_lines": "qty",
}


def upgrade() -> None:
    # One statement each: Citus propagates the ALTER of a distributed table statement by
    # statement, and refuses a string of several.
    for table, raw in RAW.items():
        op.execute(f"ALTER TABLE metering.{table} ADD COLUMN billable_qty numeric NULL")
        op.execute(
            f"ALTER TABLE metering.{table} ALTER COLUMN billable_qty TYPE numeric USING {raw}"
        )
        op.execute(f"ALTER TABLE metering.{table} ALTER COLUMN billable_qty SET NOT NULL")
        op.execute(
            f"ALTER TABLE metering.{table} ADD CONSTRAINT {table}_billable_within_raw"
            f" CHECK (billable_qty >= 0 AND billable_qty <= {raw})"
        )


def downgrade() -> None:
    # A capped quantity would lose the cap that priced it: refuse while any row holds one.
    # (`SELECT 1`: Citus refuses an empty select list on a distributed table.)
    capped = " OR ".join(
        f"EXISTS (SELECT 1 FROM metering.{table} WHERE billable_qty <> {raw})"
        for table, raw in RAW.items()
    )
    op.execute(
        f"""
        DO $$
        BEGIN
          IF {capped} THEN
            RAISE EXCEPTION 'downgrade below 0015 would lose capped billable quantities'
              USING ERRCODE = 'object_in_use';
          END IF;
        END $$
        """
    )
    for table in RAW:
        op.execute(f"ALTER TABLE metering.{table} DROP COLUMN billable_qty")
