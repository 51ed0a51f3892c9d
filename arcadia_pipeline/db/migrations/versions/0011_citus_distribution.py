"""On a Citus cluster: the per-deployment tables sharded by deployment_id, the terms and
snapshots on every node. Nothing changes on PostgreSQL without Citus workers.

Revision ID: 0011
Revises: 0010

- Distributed by `deployment_id`, all co-located (shard i of every table on one node), so
  the day's statements, which join them on deployment_id, run shard by shard on the
  workers: usage records, inventory (unattributed versions carry '' since 0010: Citus
  refuses NULL in the distribution column, and they all land on one shard), the inventory's
  deployments, aggregates, quotes and their lines, statements, their lines and
  adjustments, the days' fingerprints. Their month partitions, made later by the pipeline,
  are distributed with them.
- Reference tables (a copy on every node, the coordinator's included) for what those
  statements join: the terms (kind map, configuration, plans, plan items, overage prices)
  and the inventory snapshots. A local table joined to a distributed one would make Citus
  pull the day's rows to the coordinator.
- Local on the coordinator: the per-day and per-month bookkeeping (day writes, checks,
  failures, statement months, terms changes, retention removals, source findings, alerts),
  read a row at a time.

Triggers: the closed-statement guards (0004) run on the workers' shards, where the lookup
of a statement's status hits its co-located shard; Citus allows them when told
(`citus.enable_unsafe_triggers`, only while distributing). The terms guard (0007, 0010)
acts only on the coordinator's placement; it is dropped while its table is copied to the
nodes (the copy would fire it) and made again after.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# In dependency order: a table before the ones whose foreign keys point at it.
DISTRIBUTED = (
    "usage_records",
    "resource_inventory",
    "inventory_deployments",
    "usage_period_aggregates",
    "deployment_quotes",
    "deployment_quote_lines",
    "day_fingerprints",
    "monthly_statements",
    "monthly_statement_lines",
    "statement_adjustments",
)
TERMS = ("kind_map", "metering_config", "plans", "plan_items", "overage_prices")
REFERENCE = (*TERMS, "inventory_snapshots")


def on_citus() -> bool:
    return bool(
        op.get_bind()
        .exec_driver_sql(
            "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
            " AND EXISTS (SELECT FROM pg_catalog.pg_class WHERE relname = 'pg_dist_node')"
        )
        .scalar_one()
    ) and bool(
        op.get_bind()
        .exec_driver_sql("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0")
        .scalar_one()
    )


def terms_trigger(table: str, create: bool) -> str:
    if not create:
        return f"DROP TRIGGER {table}_closed_months_never_change ON metering.{table}"
    return f"""
        CREATE TRIGGER {table}_closed_months_never_change
          BEFORE INSERT OR UPDATE OR DELETE ON metering.{table}
          FOR EACH ROW EXECUTE FUNCTION metering.guard_terms('{table}')
    """


def upgrade() -> None:
    if not on_citus():
        return
    op.execute("SET LOCAL citus.enable_unsafe_triggers = on")
    for table in TERMS:
        op.execute(terms_trigger(table, create=False))
    for table in REFERENCE:
        op.execute(f"SELECT create_reference_table('metering.{table}')")
    for table in TERMS:
        op.execute(terms_trigger(table, create=True))
    first, *others = DISTRIBUTED
    op.execute(f"SELECT create_distributed_table('metering.{first}', 'deployment_id')")
    for table in others:
        op.execute(
            f"SELECT create_distributed_table('metering.{table}', 'deployment_id',"
            f" colocate_with => 'metering.{first}')"
        )
    # The rows were copied into the shards; the coordinator's own copies are dead weight.
    for table in (*REFERENCE, *DISTRIBUTED):
        op.execute(f"SELECT truncate_local_data_after_distributing_table('metering.{table}')")


def downgrade() -> None:
    if not on_citus():
        return
    op.execute("SET LOCAL citus.enable_unsafe_triggers = on")
    for table in TERMS:
        op.execute(terms_trigger(table, create=False))
    for table in (*DISTRIBUTED, *REFERENCE):
        # A table and those its foreign keys join go back together (cascade): the later
        # ones of such a group are local already.
        op.execute(
            f"SELECT undistribute_table('metering.{table}', cascade_via_foreign_keys => true)"
            " FROM pg_dist_partition"
            f" WHERE logicalrelid = 'metering.{table}'::regclass"
        )
    for table in TERMS:
        op.execute(terms_trigger(table, create=True))
