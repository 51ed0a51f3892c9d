"""Every term a bill depends on has a history, and retention keeps a record of what it removed.

Revision ID: 0007
Revises: 0006

- The kind map, the metering config and the plan catalog (plans, plan items, overage
  prices) gain `effective_from`, the first billing month a row applies to: a month is priced
  and metered on, per key, the row with the latest `effective_from` on or before it. The rows
  shipped so far apply since always (1970-01).
- A trigger refuses any change (insert, update, delete) to a row in effect from a month on or
  before the last closed one: a closed month's terms never move. Every other change is
  recorded in `terms_changes`, so the days of the months it reaches that were metered before
  it are stale and metered again (days/staleness.py).
- `retention_removals` records, per billing month and kind, the days whose usage records
  retention removed: a month with such a row is never priced again from what is left.

Plan items no longer reference plans: a plan code has one row per version.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Each terms table and the columns naming one term (its key without effective_from).
TERMS = {
    "kind_map": ("inventory_kind",),
    "metering_config": ("billing_kind",),
    "plans": ("plan_code",),
    "plan_items": ("plan_code", "billing_kind"),
    "overage_prices": ("billing_kind",),
}
SINCE_ALWAYS = "1970-01-01"

DDL = """
CREATE TABLE metering.terms_changes (
  change_id      bigserial   PRIMARY KEY,
  terms          text        NOT NULL,   -- the table changed
  effective_from date        NOT NULL,   -- the first billing month whose terms it changed
  changed_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION metering.guard_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_closed date;
  first_month date;
BEGIN
  IF TG_OP = 'INSERT' THEN
    first_month := NEW.effective_from;
  ELSIF TG_OP = 'DELETE' THEN
    first_month := OLD.effective_from;
  ELSE
    first_month := least(OLD.effective_from, NEW.effective_from);
  END IF;
  IF first_month IS NULL THEN
    RAISE EXCEPTION 'metering.%: effective_from, the billing month the row applies from, '
      'is missing', TG_TABLE_NAME USING ERRCODE = 'not_null_violation';
  END IF;
  -- Wait for the day and month transactions reading the terms (days/locks.py TERMS_LOCK),
  -- and keep new ones out until this change commits: a day is stamped before it or reads
  -- it, and a month closing now is closed before it is judged, or after it commits.
  PERFORM pg_advisory_xact_lock(hashtext('metering.terms'), 719163);  -- 1970-01-01
  last_closed := (SELECT max(month) FROM metering.statement_months WHERE closed_at IS NOT NULL);
  IF first_month <= last_closed THEN
    RAISE EXCEPTION 'metering.%: a row in effect from % would change the terms of closed '
      'months (closed through %): a change names a billing month from % on',
      TG_TABLE_NAME, to_char(first_month, 'YYYY-MM'), to_char(last_closed, 'YYYY-MM'),
      to_char(last_closed + interval '1 month', 'YYYY-MM')
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  INSERT INTO metering.terms_changes (terms, effective_from) VALUES (TG_TABLE_NAME, first_month);
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TABLE metering.retention_removals (
  month        date        NOT NULL CHECK (extract(day FROM month) = 1),
  billing_kind text        NOT NULL,
  first_day    date        NOT NULL,
  last_day     date        NOT NULL,
  records      bigint      NOT NULL CHECK (records > 0),
  removed_at   timestamptz NOT NULL,
  run_id       text        NULL,
  PRIMARY KEY (month, billing_kind, removed_at)
);
"""


def upgrade() -> None:
    op.execute("ALTER TABLE metering.plan_items DROP CONSTRAINT plan_items_plan_code_fkey")
    op.execute(DDL)
    for table, key in TERMS.items():
        op.execute(
            f"""
            ALTER TABLE metering.{table} ADD COLUMN effective_from date NULL;
            UPDATE metering.{table} SET effective_from = DATE '{SINCE_ALWAYS}';
            ALTER TABLE metering.{table}
              ALTER COLUMN effective_from SET NOT NULL,
              ADD CONSTRAINT {table}_effective_from_is_a_month
                CHECK (extract(day FROM effective_from) = 1),
              DROP CONSTRAINT {table}_pkey,
              ADD PRIMARY KEY ({", ".join(key)}, effective_from);
            CREATE TRIGGER {table}_closed_months_never_change
              BEFORE INSERT OR UPDATE OR DELETE ON metering.{table}
              FOR EACH ROW EXECUTE FUNCTION metering.guard_terms();
            """
        )


def downgrade() -> None:
    for table, key in TERMS.items():
        op.execute(
            f"""
            DROP TRIGGER {table}_closed_months_never_change ON metering.{table};
            DELETE FROM metering.{table} t WHERE EXISTS (
              SELECT FROM metering.{table} later
              WHERE ({", ".join(f"later.{c}" for c in key)}) = ({", ".join(f"t.{c}" for c in key)})
                AND later.effective_from > t.effective_from
            );
            ALTER TABLE metering.{table}
              DROP CONSTRAINT {table}_pkey,
              ADD PRIMARY KEY ({", ".join(key)}),
              DROP COLUMN effective_from;
            """
        )
    op.execute(
        "ALTER TABLE metering.plan_items ADD CONSTRAINT plan_items_plan_code_fkey "
        "FOREIGN KEY (plan_code) REFERENCES metering.plans"
    )
    op.execute("DROP TABLE metering.retention_removals")
    op.execute("DROP FUNCTION metering.guard_terms()")
    op.execute("DROP TABLE metering.terms_changes")
