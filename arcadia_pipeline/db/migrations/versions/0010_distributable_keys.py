"""Keys and guards a Citus cluster accepts: every per-deployment row has a deployment_id, every
unique key includes it, and the terms guard acts once, on the coordinator.

Revision ID: 0010
Revises: 0009

Citus distributes the per-deployment tables by `deployment_id` (issue 18). On a single
PostgreSQL nothing changes in what the pipeline computes:

- `resource_inventory.deployment_id` is NOT NULL: a version attributed to no deployment (the
  source's NULL) is held under the sentinel `''`, as `day_fingerprints` already keys it (Citus
  refuses NULL in a distribution column). Validation refuses a blank deployment_id in the
  source, so no deployment is `''`.
- `statement_adjustments`' primary key is (deployment_id, adjustment_id): Citus wants the
  distribution column in every unique constraint. adjustment_id stays a bigserial: its
  sequence still numbers each adjustment once.
- `guard_terms` (0007) names the table from its trigger's argument, not `TG_TABLE_NAME`
  (on Citus the name of a reference table's shard, e.g. `kind_map_102138`), and does nothing
  on a Citus worker's placement of a reference table: only the coordinator's placement
  records `terms_changes` and reads `statement_months`, which live there alone.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The terms tables (0007), each with the trigger guarding it.
TERMS = ("kind_map", "metering_config", "plans", "plan_items", "overage_prices")


# A Citus worker's placement of a reference table (local group id <> 0; the coordinator's
# is 0) passes the row: the coordinator's placement, changed in the same distributed
# transaction, guards and records it. Dynamic SQL: pg_dist_local_group exists only with Citus.
WORKER_PASSES = """
  IF to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL THEN
    EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO local_group;
    IF local_group <> 0 THEN
      RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
    END IF;
  END IF;"""


def guard_terms(citus_safe: bool) -> str:
    """guard_terms as 0007 made it, or (citus_safe) naming the table by its trigger's
    argument and passing a Citus worker's rows first."""
    table_name = "TG_ARGV[0]" if citus_safe else "TG_TABLE_NAME"
    worker_passes = WORKER_PASSES if citus_safe else ""
    return f"""
CREATE OR REPLACE FUNCTION metering.guard_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_closed date;
  first_month date;
  terms_table text := {table_name};
  local_group integer;
BEGIN{worker_passes}
  IF TG_OP = 'INSERT' THEN
    first_month := NEW.effective_from;
  ELSIF TG_OP = 'DELETE' THEN
    first_month := OLD.effective_from;
  ELSE
    first_month := least(OLD.effective_from, NEW.effective_from);
  END IF;
  IF first_month IS NULL THEN
    RAISE EXCEPTION 'metering.%: effective_from, the billing month the row applies from, '
      'is missing', terms_table USING ERRCODE = 'not_null_violation';
  END IF;
  -- Wait for the day and month transactions reading the terms (days/locks.py TERMS_LOCK),
  -- and keep new ones out until this change commits: a day is stamped before it or reads
  -- it, and a month closing now is closed before it is judged, or after it commits.
  PERFORM pg_advisory_xact_lock(hashtext('metering.terms'), 719163);  -- 1970-01-01
  last_closed := (SELECT max(month) FROM metering.statement_months WHERE closed_at IS NOT NULL);
  IF first_month <= last_closed THEN
    RAISE EXCEPTION 'metering.%: a row in effect from % would change the terms of closed '
      'months (closed through %): a change names a billing month from % on',
      terms_table, to_char(first_month, 'YYYY-MM'), to_char(last_closed, 'YYYY-MM'),
      to_char(last_closed + interval '1 month', 'YYYY-MM')
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  INSERT INTO metering.terms_changes (terms, effective_from) VALUES (terms_table, first_month);
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;
"""


def _recreate_triggers(named: bool) -> None:
    """Each terms table's guard trigger, passing its table's name (`named`) or nothing."""
    for table in TERMS:
        argument = f"'{table}'" if named else ""
        op.execute(
            f"""
            DROP TRIGGER {table}_closed_months_never_change ON metering.{table};
            CREATE TRIGGER {table}_closed_months_never_change
              BEFORE INSERT OR UPDATE OR DELETE ON metering.{table}
              FOR EACH ROW EXECUTE FUNCTION metering.guard_terms({argument});
            """
        )


def upgrade() -> None:
    op.execute(
        """
        UPDATE metering.resource_inventory SET deployment_id = '' WHERE deployment_id IS NULL;
        ALTER TABLE metering.resource_inventory ALTER COLUMN deployment_id SET NOT NULL;
        ALTER TABLE metering.statement_adjustments
          DROP CONSTRAINT statement_adjustments_pkey,
          ADD PRIMARY KEY (deployment_id, adjustment_id);
        """
    )
    op.execute(guard_terms(citus_safe=True))
    _recreate_triggers(named=True)


def downgrade() -> None:
    op.execute(guard_terms(citus_safe=False))
    _recreate_triggers(named=False)
    op.execute(
        """
        ALTER TABLE metering.statement_adjustments
          DROP CONSTRAINT statement_adjustments_pkey,
          ADD PRIMARY KEY (adjustment_id);
        ALTER TABLE metering.resource_inventory ALTER COLUMN deployment_id DROP NOT NULL;
        UPDATE metering.resource_inventory SET deployment_id = NULL WHERE deployment_id = '';
        """
    )
