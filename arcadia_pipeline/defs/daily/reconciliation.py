"""The reconciliation job and its two schedules: the source as it is now against every metered
day's snapshot, by fingerprints, trusting no timestamp (inventory/reconciliation.py).

Nightly (04:40 UTC) it reconciles the open and the previous billing month; weekly (Sunday
05:40 UTC) every metered day still within retention. The days found different are recorded
(`metering.source_findings`): their inventory is then stale, `missed_days_sensor` re-meters
them as ranges, and a closed month among them is re-priced into adjustments by
`statement_months_sensor`. Months retention removed records of are left as they closed.
"""

from datetime import timedelta

import dagster as dg
from dagster import AssetKey, AssetObservation, MetadataValue, OpExecutionContext
from sqlalchemy import func, select

from arcadia_pipeline import utc
from arcadia_pipeline.db.schema import inventory_snapshots
from arcadia_pipeline.defs.alerts.incidents import alert_reconciliation
from arcadia_pipeline.flow import RESOURCE_INVENTORY
from arcadia_pipeline.inventory.reconciliation import differing_days, record_findings
from arcadia_pipeline.orchestration.automation import schedule_status
from arcadia_pipeline.orchestration.failures import failures_named
from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.orchestration.retry import DATABASE_RETRY_POLICY
from arcadia_pipeline.retention.expiry import removed_by_retention
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import add_months, days_text, month_start

RECONCILIATION_JOB = "reconciliation_job"


class ReconcileConfig(dg.Config):
    """sweep: every metered day still within retention; else the open billing month and the
    `months_back` before it (1: the previous one)."""

    sweep: bool = False
    months_back: int = 1


@dg.op(retry_policy=DATABASE_RETRY_POLICY)
def reconcile_source(
    context: OpExecutionContext,
    config: ReconcileConfig,
    warehouse: WarehouseResource,
    arcadia_source: ArcadiaSourceResource,
):
    """Compare the source as it is now with the metered days' snapshots by fingerprint, and
    record the days and deployments that differ: those days are metered again."""
    today = utc.now().date()
    last = today - timedelta(days=1)
    with failures_named("reconciliation failed"), warehouse.engine.begin() as connection:
        if config.sweep:
            first = connection.execute(select(func.min(inventory_snapshots.c.day))).scalar()
        else:
            first = add_months(month_start(today), -max(config.months_back, 0))
        same_database = arcadia_source.database_url == warehouse.database_url
        source = None if same_database else arcadia_source.engine
        found = differing_days(connection, source, first, last) if first else {}
        kept = {m: removed_by_retention(connection, m) for m in {month_start(d) for d in found}}
        found = {day: deps for day, deps in found.items() if not kept[month_start(day)]}
        record_findings(connection, found, context.run_id)
    deployments = sorted({dep for deps in found.values() for dep in deps})
    metadata = {
        "first_day": MetadataValue.text(str(first or "-")),
        "last_day": MetadataValue.text(str(last)),
        "differing_days": MetadataValue.int(len(found)),
        "differing_deployments": MetadataValue.int(len(deployments)),
        "days": MetadataValue.text(days_text(found) or "-"),
    }
    context.log_event(
        AssetObservation(asset_key=AssetKey(RESOURCE_INVENTORY.asset), metadata=metadata)
    )
    if found:
        context.log.warning(
            f"the source changed {len(found)} metered day(s) without a timestamp saying so: "
            f"{days_text(found)}; deployments {', '.join(map(repr, deployments[:20]))}"
        )
        alert_reconciliation(warehouse, context.job_name, context.run_id, found)
    return len(found)


@dg.job(
    description="Reconcile the source with the metered days' snapshots by fingerprint; the "
    "days that differ are metered again."
)
def reconciliation_job():
    reconcile_source()


@dg.definitions
def defs() -> dg.Definitions:
    status = schedule_status(settings())
    nightly = dg.ScheduleDefinition(
        name="reconciliation_schedule",
        job=reconciliation_job,
        cron_schedule="40 4 * * *",
        execution_timezone="UTC",
        default_status=status,
        description="The open and the previous billing month, every night at 04:40 UTC.",
    )
    weekly = dg.ScheduleDefinition(
        name="reconciliation_sweep_schedule",
        job=reconciliation_job,
        cron_schedule="40 5 * * 0",
        execution_timezone="UTC",
        default_status=status,
        run_config=dg.RunConfig(ops={"reconcile_source": ReconcileConfig(sweep=True)}),
        description="Every metered day still within retention, Sundays at 05:40 UTC.",
    )
    return dg.Definitions(jobs=[reconciliation_job], schedules=[nightly, weekly])
