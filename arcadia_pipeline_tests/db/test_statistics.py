"""Each asset analyses the days it wrote, so checks and downstream steps plan on real counts."""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import text

from arcadia_pipeline.db import schema
from arcadia_pipeline.db.statistics import SMALL_SAMPLE_TARGET, relations_to_analyze
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc


def test_partitioned_tables_are_analysed_by_the_months_written():
    days = [date(2025, 1, 31), date(2025, 2, 1)]
    assert relations_to_analyze([schema.usage_records, schema.deployment_quotes], days) == [
        "metering.usage_records_2025_01",
        "metering.usage_records_2025_02",
        "metering.deployment_quotes",
    ]


def test_a_run_leaves_every_written_relation_freshly_analysed(engine):
    add_deployment(engine, "dep-1")
    add_version(engine, "d1", "dep-1", "droplet", utc(2025, 1, 1))
    with engine.connect() as connection:
        started = connection.execute(text("SELECT clock_timestamp()")).scalar_one()

    materialize_range(date(2025, 1, 31), date(2025, 2, 1))

    expected = relations_to_analyze(DAILY_FLOW.tables, [date(2025, 1, 31), date(2025, 2, 1)])
    # PostgreSQL 14's statistics collector reports with a delay (15 keeps them in memory).
    for _ in range(50):
        with engine.connect() as connection:
            analysed = connection.execute(
                text(
                    "SELECT schemaname || '.' || relname FROM pg_stat_user_tables "
                    "WHERE last_analyze >= :started"
                ),
                {"started": started},
            ).scalars()
            missing = set(expected) - set(analysed)
        if not missing:
            break
        time.sleep(0.1)
    assert not missing


def test_the_billing_tables_are_analysed_on_a_small_sample_the_records_on_the_default(engine):
    add_deployment(engine, "dep-1")
    add_version(engine, "d1", "dep-1", "droplet", utc(2025, 1, 1))
    materialize_range(date(2025, 1, 1), date(2025, 1, 20))
    with engine.connect() as connection:
        bounds = dict(
            connection.execute(
                text(
                    "SELECT tablename, cardinality(histogram_bounds::text::text[]) "
                    "FROM pg_stats WHERE schemaname = 'metering' AND attname IN "
                    "('as_of_date', 'period_start') AND histogram_bounds IS NOT NULL"
                )
            ).all()
        )
    # 20 days (20 records, 20 aggregates): the default target keeps a bound per value, the
    # small one at most 11.
    assert bounds["usage_records_2025_01"] == 20
    assert bounds["usage_period_aggregates"] <= SMALL_SAMPLE_TARGET + 1
