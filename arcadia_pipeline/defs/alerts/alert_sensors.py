"""The operators are told of every failed run and every failed asset check, once each
(alerts/notify.py, ARCADIA_ALERT_URLS).

- `run_failure_alert_sensor`: Dagster's own run failure sensor; incident `run:<run_id>`,
  with the job, its assets, its days (partition or range) and the first line of the first
  failed step's error (or of the run's failure: a worker that died).
- `check_failure_alert_sensor`: every failed asset check evaluation (the blocking checks of
  the daily and monthly assets, the freshness checks alike), read from Dagster's event log
  with a cursor (the storage id of the last evaluation seen); one alert per incident
  (`check_incident`): a failed run's check once per run, a freshness miss once per
  deadline, a month not closed by its deadline once (`close:<YYYY-MM>`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster import (
    DagsterEventType,
    EventLogRecord,
    EventRecordsFilter,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
)

from arcadia_pipeline import utc
from arcadia_pipeline.alerts.notify import (
    CHECK_FAILED,
    RUN_FAILED,
    alert,
    first_line,
    incident_text,
)
from arcadia_pipeline.defs.alerts.incidents import PREFIX, partition_text
from arcadia_pipeline.orchestration.automation import sensor_status
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.settings import settings

# Dagster's freshness checks record the deadline they judged by (the cron's latest tick).
FRESHNESS_DEADLINE = "dagster/latest_cron_tick_timestamp"
# A check sensor with no cursor yet (its first tick) looks back this far, not over all of
# history; a tick reads at most CHECK_BATCH evaluations, the next tick goes on from there.
FIRST_LOOKBACK = timedelta(days=1)
CHECK_BATCH = 1000


def step_error(context: RunFailureSensorContext) -> str:
    """The first line of the first failed step's error (its Failure's description when it
    has one), else of the run's failure message."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        message = user.description if user is not None and user.description else None
        if not message and data.error is not None:
            message = data.error.message
        if message:
            return first_line(message)
    return first_line(context.failure_event.message)


def alert_failed_run(context: RunFailureSensorContext, warehouse: WarehouseResource) -> bool:
    """Tell the operators that a run failed, once per run (incident `run:<run_id>`)."""
    run = context.dagster_run
    days = partition_text(run.tags)
    failed_steps = sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})
    assets = sorted(key.to_user_string() for key in run.asset_selection or ())
    body = incident_text(
        {
            "job": run.job_name,
            "asset": ", ".join(assets or failed_steps) or None,
            "days": days,
            "error": step_error(context),
            "failed steps": ", ".join(failed_steps) or None,
            "run": run.run_id,
        }
    )
    subject = f"{PREFIX} run failed: {run.job_name}" + (f" on {days}" if days else "")
    with warehouse.engine.begin() as connection:
        return alert(connection, f"run:{run.run_id}", RUN_FAILED, subject, body)


def evaluation_run_days(
    entry: dg.EventLogEntry, instance: dg.DagsterInstance
) -> tuple[dg.DagsterRun | None, str | None]:
    """A check evaluation's run (None when reported without one) and the days it checked:
    its partition, else its run's days or month (partition_text)."""
    run = instance.get_run_by_id(entry.run_id) if entry.run_id else None
    partition = entry.asset_check_evaluation.partition
    return run, partition or (partition_text(run.tags) if run else None)


def check_incident(record: EventLogRecord, instance: dg.DagsterInstance) -> str:
    """The incident a failed check evaluation is part of: the one it names in its `incident`
    metadata (statements_closed_on_time: `close:<YYYY-MM>`, as statement_months_sensor names
    a missed close); for Dagster's freshness checks, one per deadline across the daily assets
    (`freshness:<check>:<deadline>`); else `check:<asset>:<check>:<days>:<run id, or the
    evaluation's timestamp when it has no run>`."""
    entry = record.event_log_entry
    evaluation = entry.asset_check_evaluation
    metadata = evaluation.metadata
    if "incident" in metadata:
        return str(metadata["incident"].value)
    if FRESHNESS_DEADLINE in metadata:
        deadline = datetime.fromtimestamp(metadata[FRESHNESS_DEADLINE].value, UTC)
        return f"freshness:{evaluation.check_name}:{deadline:%Y-%m-%dT%H:%MZ}"
    _, days = evaluation_run_days(entry, instance)
    occurrence = entry.run_id or f"{entry.timestamp:.6f}"
    asset = evaluation.asset_key.to_user_string()
    return f"check:{asset}:{evaluation.check_name}:{days or '-'}:{occurrence}"


def check_failure(records: list[EventLogRecord], instance: dg.DagsterInstance) -> tuple[str, str]:
    """(subject, body) of the failed evaluations of one incident: the first one's check,
    error and run, with every asset that failed it."""
    entry = records[0].event_log_entry
    evaluation = entry.asset_check_evaluation
    assets = sorted(
        {r.event_log_entry.asset_check_evaluation.asset_key.to_user_string() for r in records}
    )
    asset, check = ", ".join(assets), evaluation.check_name
    run, days = evaluation_run_days(entry, instance)
    body = incident_text(
        {
            "job": run.job_name if run else None,
            "asset": asset,
            "days": days,
            "error": f"check {check} failed"
            + (f": {first_line(evaluation.description)}" if evaluation.description else ""),
            "severity": evaluation.severity.value,
            "blocking": "yes" if evaluation.blocking else None,
            "run": entry.run_id or None,
        }
    )
    subject = f"{PREFIX} check failed: {check} on {asset}" + (f" ({days})" if days else "")
    return subject, body


def alert_failed_checks(context: SensorEvaluationContext, warehouse: WarehouseResource):
    """Tell the operators of each failed asset check evaluation recorded since the last tick,
    once per incident (the blocking checks, the freshness checks)."""
    after = int(context.cursor) if context.cursor else None
    since = None if after is not None else (utc.now() - FIRST_LOOKBACK).timestamp()
    # The instance's one public reader of check evaluations (deprecated for Dagster 2.0 in
    # favour of narrower fetch_* methods, none of which reads checks yet).
    records = context.instance.get_event_records(
        EventRecordsFilter(
            event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
            after_cursor=after,
            after_timestamp=since,
        ),
        limit=CHECK_BATCH,
        ascending=True,
    )
    failed: dict[str, list[EventLogRecord]] = {}
    for record in records:
        evaluation = record.event_log_entry.asset_check_evaluation
        if evaluation is not None and not evaluation.passed:
            failed.setdefault(check_incident(record, context.instance), []).append(record)
    sent = 0
    for incident, group in failed.items():
        subject, body = check_failure(group, context.instance)
        with warehouse.engine.begin() as connection:
            sent += alert(connection, incident, CHECK_FAILED, subject, body)
    if records:
        context.update_cursor(str(records[-1].storage_id))
    if not sent:
        return SkipReason(f"{len(records)} check evaluation(s) read, no new failure")
    context.log.info(f"{sent} failed check(s) alerted")
    return SkipReason(f"{sent} failed check(s) alerted")


@dg.definitions
def defs() -> dg.Definitions:
    status = sensor_status(settings())

    @dg.run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=status,
        description=alert_failed_run.__doc__,
    )
    def run_failure_alert_sensor(context: RunFailureSensorContext, warehouse: WarehouseResource):
        alert_failed_run(context, warehouse)

    @dg.sensor(
        name="check_failure_alert_sensor",
        minimum_interval_seconds=60,
        default_status=status,
        description=alert_failed_checks.__doc__,
    )
    def check_failure_alert_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
        return alert_failed_checks(context, warehouse)

    return dg.Definitions(sensors=[run_failure_alert_sensor, check_failure_alert_sensor])
