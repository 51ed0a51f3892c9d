"""The incidents the pipeline's own sensors and jobs find, told to the operators once each
(alerts/notify.py): a version recorded in the future, days the reconciliation found changed,
a month that did not close by its deadline. Each opens a transaction of its own, so the
incident is recorded (and never sent again) whatever its caller does next."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from arcadia_pipeline.alerts.notify import (
    FUTURE_RECORDED_AT,
    MISSED_CLOSE,
    RECONCILIATION,
    alert,
    incident_text,
)
from arcadia_pipeline.flow import RESOURCE_INVENTORY
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.statements.closing import unclosed_reason
from arcadia_pipeline.utc import days_text, month_text

PREFIX = "[arcadia]"
LISTED_DEPLOYMENTS = 20


def partition_text(tags: Mapping[str, str]) -> str | None:
    """The days (or month) a run covers, from its tags: its partition, or its range
    'first to last'; None for a run of no partition."""
    if key := tags.get("dagster/partition"):
        return key
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    if first and last:
        return first if first == last else f"{first} to {last}"
    return None


def alert_future_versions(warehouse: WarehouseResource, rows: Sequence[str]) -> int:
    """One alert per version recorded in the future (`rows`: as the corrections tick names
    them), incident `future:<row>`; the number sent now."""
    sent = 0
    for row in rows:
        valid_from = re.search(r"valid_from (\d{4}-\d{2}-\d{2})", row)
        body = incident_text(
            {
                "job": "late_corrections_sensor",
                "asset": RESOURCE_INVENTORY.asset,
                "days": valid_from and f"from {valid_from[1]}",
                "error": f"recorded_at in the future (a clock ahead), not trusted as the "
                f"corrections cursor: {row}",
                "what happens": "the row is compared on every tick until its time comes; the "
                "reconciliation re-meters its days whatever its timestamps",
            }
        )
        subject = f"{PREFIX} recorded_at in the future: {row.split(' version')[0]}"
        with warehouse.engine.begin() as connection:
            sent += alert(connection, f"future:{row}", FUTURE_RECORDED_AT, subject, body)
    return sent


def alert_reconciliation(
    warehouse: WarehouseResource, job: str, run_id: str, found: Mapping[date, Sequence[str]]
) -> bool:
    """One alert per reconciliation run that found days differing from the source
    (incident `reconcile:<run_id>`), naming the days and the first 20 deployments."""
    deployments = sorted({dep for deps in found.values() for dep in deps})
    listed = ", ".join(deployments[:LISTED_DEPLOYMENTS])
    more = len(deployments) - LISTED_DEPLOYMENTS
    body = incident_text(
        {
            "job": job,
            "asset": RESOURCE_INVENTORY.asset,
            "days": days_text(found),
            "error": f"the source changed {len(found)} metered day(s) without a timestamp "
            "saying so",
            "deployments": listed + (f" and {more} more" if more > 0 else ""),
            "what happens": "missed_days_sensor re-meters those days; a closed month among "
            "them is re-priced into adjustments",
            "run": run_id,
        }
    )
    subject = f"{PREFIX} reconciliation found {len(found)} changed day(s): {days_text(found)}"
    with warehouse.engine.begin() as connection:
        return alert(connection, f"reconcile:{run_id}", RECONCILIATION, subject, body)


def failed_close_run(instance: DagsterInstance, job: str, month: date) -> str | None:
    """The id of the latest failed run of `job` on `month`'s partition, if any."""
    records = instance.get_run_records(
        RunsFilter(
            job_name=job,
            statuses=[DagsterRunStatus.FAILURE],
            tags={"dagster/partition": month.isoformat()},
        ),
        limit=1,
    )
    return records[0].dagster_run.run_id if records else None


def alert_missed_close(
    instance: DagsterInstance,
    warehouse: WarehouseResource,
    job: str,
    asset: str,
    month: date,
    waiting: Sequence[str],
) -> bool:
    """One alert per month that is not closed a day after it was due to (incident
    `close:<YYYY-MM>`), naming why: the reasons its days are not final (`waiting`), or its
    close run that failed, or no run closed it (the schedule's tick was missed)."""
    failed = None if waiting else failed_close_run(instance, job, month)
    why = unclosed_reason(waiting, failed)
    if not waiting and not failed:
        why += "; closing it now"  # the statements sensor closes a month whose tick was missed
    body = incident_text(
        {"job": job, "asset": asset, "days": month_text(month), "error": f"not closed: {why}"}
    )
    subject = f"{PREFIX} {month_text(month)} did not close by its deadline"
    with warehouse.engine.begin() as connection:
        return alert(connection, f"close:{month_text(month)}", MISSED_CLOSE, subject, body)
