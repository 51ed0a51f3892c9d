"""`db upgrade` on a Citus cluster: the per-deployment tables sharded by deployment_id and
co-located, the terms and snapshots on every node, the bookkeeping on the coordinator, the
guards as on one node; and back (0011's downgrade) without losing a row."""

import os
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from arcadia_pipeline.db import citus
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.schema import STATEMENT_TABLES, terms_changes
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline_tests.conftest import citus_workers

pytestmark = pytest.mark.citus_only

SHARDED = {
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
    "spend_alerts",
    "spend_alert_events",
    "projected_quotes",
    "projected_quote_lines",
    "capped_resource_usage",
}
ON_EVERY_NODE = {
    "kind_map",
    "metering_config",
    "plans",
    "plan_items",
    "overage_tiers",
    "billing_caps",
    "inventory_snapshots",
}


def distribution(connection) -> dict[str, tuple[str, str | None, int]]:
    """table -> (method 'h' hash | 'n' reference, distribution column, co-location id)."""
    rows = connection.execute(
        text(
            """
            SELECT c.relname, p.partmethod,
                   column_to_column_name(p.logicalrelid, p.partkey), p.colocationid
              FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
             WHERE c.relnamespace = 'metering'::regnamespace AND NOT c.relispartition
            """
        )
    )
    return {name: (method, column, colocation) for name, method, column, colocation in rows}


def test_the_session_database_is_on_the_cluster(engine):
    with engine.connect() as connection:
        assert citus.is_citus(connection)
        workers = connection.execute(
            text("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")
        ).scalar_one()
    assert workers == len(citus_workers()) == 2


def test_per_deployment_tables_are_sharded_together_and_the_terms_are_everywhere(engine):
    with engine.connect() as connection:
        tables = distribution(connection)
    sharded = {name for name, (method, _, _) in tables.items() if method == "h"}
    assert sharded == SHARDED
    assert {tables[name][1] for name in SHARDED} == {"deployment_id"}
    assert len({tables[name][2] for name in SHARDED}) == 1, "one co-location group"
    assert {name for name, (method, _, _) in tables.items() if method == "n"} == ON_EVERY_NODE
    # The per-day and per-month bookkeeping stays on the coordinator, a table of its own.
    local = {"day_writes", "day_checks", "day_failures", "statement_months", "terms_changes"}
    assert local & set(tables) == set()
    assert {table.name for table in STATEMENT_TABLES} - {"statement_months"} <= SHARDED
    assert {table.name for table in DAILY_FLOW.tables} - ON_EVERY_NODE - local <= SHARDED


def test_month_partitions_made_later_are_sharded_with_their_table(engine):
    with engine.begin() as connection:
        ensure_month_partitions(connection, date(2031, 5, 1), date(2031, 5, 31))
    with engine.connect() as connection:
        shards = connection.execute(
            text(
                "SELECT count(*) FROM pg_dist_shard"
                " WHERE logicalrelid = 'metering.usage_records_2031_05'::regclass"
            )
        ).scalar_one()
        parent = connection.execute(
            text(
                "SELECT count(*) FROM pg_dist_shard"
                " WHERE logicalrelid = 'metering.usage_records'::regclass"
            )
        ).scalar_one()
    assert shards == parent > 1


def test_a_terms_change_is_recorded_once_not_once_per_node(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty,"
                " unit_price_usd, effective_from)"
                " VALUES ('starter', 'droplet_hours', NULL, 0.02, '2031-01-01')"
            )
        )
        recorded = connection.execute(
            text(
                f"SELECT terms, effective_from FROM {terms_changes.fullname}"
                " WHERE effective_from = '2031-01-01'"
            )
        ).all()
    assert recorded == [("overage_tiers", date(2031, 1, 1))]


@pytest.fixture
def citus_scratch(admin_url, server_url):
    """A second Citus database (on every node), owned by the test login; its URL."""
    name = f"arcadia_citus_scratch_{os.getpid()}"
    owner = make_url(server_url).username
    citus.create_database(admin_url, name, owner, citus_workers())
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    citus.drop_database(admin_url, name, citus_workers())


def test_downgrade_brings_every_row_back_to_the_coordinator_and_upgrade_shards_it_again(
    citus_scratch,
):
    upgrade(citus_scratch, "0010")
    engine = make_engine(citus_scratch)
    with engine.begin() as connection:
        assert distribution(connection) == {}  # 0010 is plain PostgreSQL
        ensure_month_partitions(connection, date(2025, 2, 1), date(2025, 2, 28))
        connection.execute(
            text(
                """
                INSERT INTO metering.usage_records (deployment_id, resource_id, resource_kind,
                  period_start, granularity, qty, run_id)
                SELECT 'dep-' || n, 'r-' || n, 'droplet_hours', '2025-02-03', 'day', n, 'run'
                  FROM generate_series(1, 50) n
                """
            )
        )
    upgrade(citus_scratch)
    with engine.connect() as connection:
        assert {name for name, (m, _, _) in distribution(connection).items() if m == "h"} == SHARDED
        total = connection.execute(text("SELECT sum(qty) FROM metering.usage_records")).scalar()
    assert total == sum(range(1, 51))
    downgrade(citus_scratch, "0010")
    with engine.connect() as connection:
        assert distribution(connection) == {}
        assert connection.execute(
            text("SELECT sum(qty) FROM metering.usage_records")
        ).scalar() == sum(range(1, 51))
    engine.dispose()


def test_a_terms_change_reaching_a_closed_month_is_refused_naming_the_table(engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.statement_months (month, closed_at, repriced_at)"
                " VALUES ('2031-02-01', now(), now())"
            )
        )
    refused = r"metering\.overage_tiers: a row in effect from 2031-02"
    with pytest.raises(Exception, match=refused), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty,"
                " unit_price_usd, effective_from)"
                " VALUES ('starter', 'droplet_hours', NULL, 0.02, '2031-02-01')"
            )
        )


def test_the_shards_statements_run_with_the_pipelines_settings(citus_scratch):
    # The workers' own defaults are 4MB and JIT on: a session option on the coordinator
    # does not reach them, so a day's GROUP BYs on the shards would spill and JIT-compile.
    engine = make_engine(citus_scratch)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE public.probe (deployment_id text)"))
        connection.execute(text("SELECT create_distributed_table('public.probe', 'deployment_id')"))
        connection.execute(
            text("INSERT INTO public.probe SELECT 'dep-' || n FROM generate_series(1, 40) n")
        )
    with engine.connect() as connection:
        on_shards = connection.execute(
            text(
                "SELECT DISTINCT current_setting('work_mem'), current_setting('jit')"
                " FROM public.probe"
            )
        ).all()
        placements = connection.execute(
            text(
                "SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement"
                " JOIN pg_dist_shard USING (shardid)"
                " WHERE logicalrelid = 'public.probe'::regclass"
            )
        ).scalar_one()
    engine.dispose()
    assert placements == 2, "the probe's shards are on both workers"
    assert on_shards == [("128MB", "off")]
