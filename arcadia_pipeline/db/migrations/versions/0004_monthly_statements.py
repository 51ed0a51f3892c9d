"""Monthly statements: one final usage statement per deployment and billing month, and every
change after its close as an explicit adjustment.

Revision ID: 0004
Revises: 0003

Closed rows never change: triggers refuse an UPDATE or DELETE of a closed statement or its
lines, a line added to a closed statement, any UPDATE or DELETE of an adjustment, and a
closed month reopened or removed, whatever code or session tries. (They guard against
mistakes, not the tables' owner: TRUNCATE, a statement rather than row operation, passes
them; the test suite empties the tables so.)
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE metering.statement_months (
  month       date        PRIMARY KEY CHECK (extract(day FROM month) = 1),
  closed_at   timestamptz NULL,        -- NULL: its statements are drafts
  repriced_at timestamptz NOT NULL,    -- when the run that last priced it read its days
  run_id      text        NULL
);

CREATE TABLE metering.monthly_statements (
  month         date           NOT NULL CHECK (extract(day FROM month) = 1),
  deployment_id text           NOT NULL,
  plan_code     text           NOT NULL,
  status        text           NOT NULL CHECK (status IN ('draft', 'closed')),
  closed_at     timestamptz    NULL,
  base_usd      numeric(14, 2) NOT NULL,
  total_usd     numeric(14, 2) NOT NULL,
  run_id        text           NULL,
  computed_at   timestamptz    NOT NULL DEFAULT now(),
  PRIMARY KEY (month, deployment_id),
  CONSTRAINT monthly_statements_closed_when_closed_at
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

CREATE TABLE metering.monthly_statement_lines (
  month          date           NOT NULL,
  deployment_id  text           NOT NULL,
  billing_kind   text           NOT NULL,
  qty            numeric        NOT NULL,
  included_qty   numeric        NOT NULL,
  overage_qty    numeric        NOT NULL,
  unit_price_usd numeric        NOT NULL,
  amount_usd     numeric(14, 2) NOT NULL,
  PRIMARY KEY (month, deployment_id, billing_kind),
  FOREIGN KEY (month, deployment_id)
    REFERENCES metering.monthly_statements ON DELETE CASCADE
);

-- No foreign key to the statements: a deployment that first appears in a closed month
-- after its close (a back-dated resource) is billed by adjustments alone.
CREATE TABLE metering.statement_adjustments (
  adjustment_id bigserial      PRIMARY KEY,
  month         date           NOT NULL CHECK (extract(day FROM month) = 1),
  deployment_id text           NOT NULL,
  billing_kind  text           NOT NULL,   -- 'base': the base fee
  qty_delta     numeric        NOT NULL,
  amount_usd    numeric(14, 2) NOT NULL,   -- negative: a credit
  created_at    timestamptz    NOT NULL DEFAULT now(),
  run_id        text           NULL
);
CREATE INDEX statement_adjustments_month_idx
  ON metering.statement_adjustments (month, deployment_id);

CREATE FUNCTION metering.refuse_closed_statement_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'closed' THEN
    RAISE EXCEPTION 'statement of % for % is closed: it never changes (adjust it instead)',
      OLD.deployment_id, to_char(OLD.month, 'YYYY-MM')
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE FUNCTION metering.refuse_closed_line_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  line metering.monthly_statement_lines := CASE TG_OP WHEN 'INSERT' THEN NEW ELSE OLD END;
BEGIN
  IF EXISTS (
    SELECT FROM metering.monthly_statements s
    WHERE s.month = line.month AND s.deployment_id = line.deployment_id
      AND s.status = 'closed'
  ) THEN
    RAISE EXCEPTION 'statement of % for % is closed: its lines never change (adjust it instead)',
      line.deployment_id, to_char(line.month, 'YYYY-MM')
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE FUNCTION metering.refuse_adjustment_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'adjustment % is history: it never changes (write another one)',
    OLD.adjustment_id USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE FUNCTION metering.refuse_reopening_month() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.closed_at IS NOT NULL
     AND (TG_OP = 'DELETE' OR NEW.closed_at IS DISTINCT FROM OLD.closed_at) THEN
    RAISE EXCEPTION 'month % is closed: it is never reopened', to_char(OLD.month, 'YYYY-MM')
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER monthly_statements_closed_never_change
  BEFORE UPDATE OR DELETE ON metering.monthly_statements
  FOR EACH ROW EXECUTE FUNCTION metering.refuse_closed_statement_change();
CREATE TRIGGER monthly_statement_lines_closed_never_change
  BEFORE INSERT OR UPDATE OR DELETE ON metering.monthly_statement_lines
  FOR EACH ROW EXECUTE FUNCTION metering.refuse_closed_line_change();
CREATE TRIGGER statement_adjustments_never_change
  BEFORE UPDATE OR DELETE ON metering.statement_adjustments
  FOR EACH ROW EXECUTE FUNCTION metering.refuse_adjustment_change();
CREATE TRIGGER statement_months_never_reopen
  BEFORE UPDATE OR DELETE ON metering.statement_months
  FOR EACH ROW EXECUTE FUNCTION metering.refuse_reopening_month();
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    for table in (
        "statement_adjustments",
        "monthly_statement_lines",
        "monthly_statements",
        "statement_months",
    ):
        op.execute(f"DROP TABLE metering.{table}")
    for function in (
        "refuse_reopening_month",
        "refuse_adjustment_change",
        "refuse_closed_line_change",
        "refuse_closed_statement_change",
    ):
        op.execute(f"DROP FUNCTION metering.{function}()")
