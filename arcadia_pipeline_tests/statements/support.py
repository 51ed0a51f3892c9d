"""Builders shared by the statement tests: price a month at a given time, as Dagster runs it."""

from __future__ import annotations

import os
from datetime import date, datetime

from dagster import DagsterInstance, build_sensor_context
from sqlalchemy import Engine, text

from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline_tests.support import defs, hold_clock, sensor

FEBRUARY = date(2025, 2, 1)


def price_month(
    month: date,
    now: datetime,
    instance: DagsterInstance,
    monkeypatch,
    raise_on_error: bool = True,
    tags: dict | None = None,
):
    """One run of monthly_statements_job (the asset and its check) for the month at `now`."""
    hold_clock(monkeypatch, now)
    return defs.resolve_job_def("monthly_statements_job").execute_in_process(
        instance=instance,
        partition_key=month.isoformat(),
        tags=tags,
        raise_on_error=raise_on_error,
    )


def sensor_requests(instance: DagsterInstance, monkeypatch, now: datetime):
    hold_clock(monkeypatch, now)
    warehouse = WarehouseResource(database_url=os.environ["ARCADIA_DATABASE_URL"])
    context = build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    return sensor("statement_months_sensor")(context)


def run_requested(request, instance: DagsterInstance, raise_on_error: bool = True):
    """A sensor's or schedule's RunRequest run as the daemon runs it."""
    return defs.resolve_job_def("monthly_statements_job").execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=raise_on_error,
    )


def check_results(result) -> dict[str, bool]:
    return {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }


def rows_as_text(engine: Engine, table: str, month: date) -> list[str]:
    """Every column of the month's rows, as PostgreSQL prints them (byte for byte)."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(f"SELECT t::text FROM metering.{table} t WHERE month = :m ORDER BY 1"),
                {"m": month},
            ).scalars()
        )


def closed_rows(engine: Engine, month: date) -> list[str]:
    return rows_as_text(engine, "monthly_statements", month) + rows_as_text(
        engine, "monthly_statement_lines", month
    )


def adjustments(engine: Engine, month: date) -> list[dict]:
    with engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                text(
                    "SELECT deployment_id, billing_kind, qty_delta, amount_usd, created_at, "
                    "run_id FROM metering.statement_adjustments WHERE month = :m "
                    "ORDER BY adjustment_id"
                ),
                {"m": month},
            ).mappings()
        ]


def statements(engine: Engine, month: date) -> dict[str, dict]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT * FROM metering.monthly_statements WHERE month = :m"), {"m": month}
        ).mappings()
        found = {row["deployment_id"]: dict(row) for row in rows}
        for line in connection.execute(
            text("SELECT * FROM metering.monthly_statement_lines WHERE month = :m"), {"m": month}
        ).mappings():
            found[line["deployment_id"]].setdefault("lines", {})[line["billing_kind"]] = dict(line)
    return found
