"""usage_records: exact usage per (deployment, resource, period, granularity), and its
checks (completeness, bounds, month closure)."""

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.flow import USAGE_RECORDS
from arcadia_pipeline.metering.records import MeteredDay, replace_usage_day
from arcadia_pipeline.orchestration.assets import daily_step_definitions
from arcadia_pipeline.orchestration.day_runs import replace_each_day, working_on
from arcadia_pipeline.orchestration.metadata import per_kind
from arcadia_pipeline.orchestration.partitions import run_days
from arcadia_pipeline.orchestration.resources import WarehouseResource


def _metered_metadata(metered: MeteredDay) -> dict:
    """The day's figures the UI plots per partition; the snapshot's id as text (an id
    plotted is noise)."""
    return {
        "records": MetadataValue.int(sum(metered.records.values())),
        "deployments_metered": MetadataValue.int(metered.deployments),
        "unattributed_resources_skipped": MetadataValue.int(metered.unattributed_resources),
        "inventory_snapshot_id": MetadataValue.text(str(metered.snapshot_id or "-")),
        **per_kind("records", metered.records),
        **per_kind("qty", metered.qty),
    }


def meter_usage(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Each day's records from its inventory snapshot (metering/accrual.py), replaced whole
    in its own transaction whatever granularity its records had, so re-runs, granularity
    flips and re-attributions never double count."""
    days = run_days(context)
    with (
        working_on(context, USAGE_RECORDS, days, warehouse),
        warehouse.engine.connect() as connection,
    ):
        with connection.begin():
            ensure_month_partitions(connection, days[0], days[-1])
        metered = replace_each_day(
            context, connection, USAGE_RECORDS, days, replace_usage_day, _metered_metadata
        )
    records = sum(sum(day.records.values()) for day in metered)
    # Run-level figures go to the run's log: as metadata every day of the run would plot them.
    context.log.info(f"{USAGE_RECORDS.asset}: {len(days)} day(s), {records} record(s)")
    return MaterializeResult()


@dg.definitions
def defs() -> dg.Definitions:
    return daily_step_definitions(USAGE_RECORDS, meter_usage, group_name="metering")
