"""The monthly statements' job, the schedule that closes the previous month once its grace
period is over, and the sensor that re-prices a month whose days were written since (a
correction re-metered them: a closed month gets its adjustments, a draft is replaced) and
drafts a month metered but never priced (the month in progress, from its first night).
"""

from datetime import UTC, date, datetime

import dagster as dg
from dagster import (
    AssetKey,
    AssetPartitionStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
)
from sqlalchemy import Connection, func, select

from arcadia_pipeline import utc
from arcadia_pipeline.db.schema import day_writes, statement_months
from arcadia_pipeline.defs.alerts.incidents import alert_missed_close
from arcadia_pipeline.orchestration.assets import job_selection
from arcadia_pipeline.orchestration.automation import schedule_status, sensor_status
from arcadia_pipeline.orchestration.partitions import monthly_partitions
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.retry import retry_period
from arcadia_pipeline.retention.expiry import removed_by_retention
from arcadia_pipeline.settings import Settings, settings
from arcadia_pipeline.statements import closing
from arcadia_pipeline.statements.month import ASSET, CHECK, written_since_priced
from arcadia_pipeline.utc import add_months, month_start, month_text

MONTHLY_JOB = "monthly_statements_job"
# The schedule closes a month at 02:30 UTC on the first day after its grace period; the
# sensor closes one whose tick was missed (the daemon was down, or a grace of 28 days
# after a 28-day February) by its deadline, a day later.
CLOSE_TIME = (2, 30)


def close_cron(grace_days: int) -> str:
    hour_minute = f"{CLOSE_TIME[1]} {CLOSE_TIME[0]}"
    return f"{hour_minute} {1 + grace_days} * *"


def close_previous_month(context: ScheduleEvaluationContext) -> RunRequest:
    """Close the previous billing month: day 1 + ARCADIA_CLOSE_GRACE_DAYS, 02:30 UTC."""
    month = add_months(context.scheduled_execution_time.astimezone(UTC).date(), -1)
    return RunRequest(
        run_key=f"close:{month_text(month)}",
        partition_key=month.isoformat(),
        tags={"arcadia/trigger": "close"},
    )


def newest_writes(connection: Connection) -> dict[date, datetime]:
    """Per month with any metered day, the newest write of any daily asset's day in it."""
    month = func.date_trunc("month", day_writes.c.day)
    rows = connection.execute(
        select(month, func.max(day_writes.c.written_at)).group_by(month)
    ).all()
    return {stamp.date(): written for stamp, written in rows}


def months_to_price(connection: Connection, now: datetime, first: date) -> dict[date, str]:
    """{month: why} for the months to (re-)price: priced months whose days were written since
    (a draft replaced, a closed month adjusted), months due to close a day ago or more that
    are not closed (their schedule tick was missed), and months with metered days never
    priced that are not due to close yet (a first draft: the month in progress shows one
    from its first metered day); none before the `first` month."""
    wanted = {month: "reprice" for month in written_since_priced(connection)}
    m = statement_months.c
    priced = dict(connection.execute(select(m.month, m.closed_at)).tuples().all())
    for month in newest_writes(connection):
        if month < first or priced.get(month) is not None:  # before the partitions, closed
            continue
        if now >= closing.close_deadline(month):
            wanted.setdefault(month, "close")
        elif month not in priced and not closing.due_to_close(month, now):
            wanted.setdefault(month, "draft")  # due and not late: the close schedule's
    return wanted


def request_months(
    context: SensorEvaluationContext, warehouse: WarehouseResource, loaded: Settings
):
    """Re-price a month whose days (usage records, inventory plans) were written after it
    was last priced, close a month whose close was missed or failed, and draft a month
    metered but never priced (the month in progress), once its days are final (a draft:
    once none is stale); one run per month, a failed one asked for again every 6 hours."""
    now = utc.now()
    partitions = monthly_partitions(loaded)
    requests, waiting = [], []
    with warehouse.engine.connect() as connection:
        wanted = months_to_price(connection, now, month_start(loaded.metering_start_date))
        newest = newest_writes(connection)
        for month, why in sorted(wanted.items()):
            key = month.isoformat()
            status = context.instance.get_status_by_partition(AssetKey(ASSET), [key], partitions)
            if (status or {}).get(key) == AssetPartitionStatus.IN_PROGRESS:
                continue
            removed = removed_by_retention(connection, month)
            if removed:  # its closed statements stand; some of its records are gone
                context.log.warning(f"not re-priced: {removed}")
                continue
            final = why == "close" or closing.due_to_close(month, now)
            unready = closing.unready_days(connection, month, now.date(), complete=final)
            if why == "close":  # past its deadline, not closed: told once
                alert_missed_close(context.instance, warehouse, MONTHLY_JOB, ASSET, month, unready)
            if unready:
                waiting.append(f"{month_text(month)} ({'; '.join(unready)})")
                continue
            # A run that failed (a price missing, an outage past the retries) is asked for
            # again in the next retry period: its key changes with the period.
            attempt = retry_period(now)
            requests.append(
                RunRequest(
                    run_key=f"{why}:{month_text(month)}:{newest[month].isoformat()}:{attempt}",
                    partition_key=key,
                    tags={"arcadia/trigger": why},
                )
            )
    if waiting:
        context.log.info(f"waiting for final days: {', '.join(waiting)}")
    return requests or SkipReason(
        "no month to price" + (f"; waiting: {', '.join(waiting)}" if waiting else "")
    )


@dg.definitions
def defs() -> dg.Definitions:
    loaded = settings()
    job = dg.define_asset_job(
        MONTHLY_JOB,
        selection=job_selection({ASSET: (CHECK,)}),
        partitions_def=monthly_partitions(loaded),
        description="Price one billing month (or a range): drafts, the close, adjustments.",
    )
    schedule = dg.schedule(
        name="month_close_schedule",
        job=job,
        cron_schedule=close_cron(loaded.close_grace_days),
        execution_timezone="UTC",
        default_status=schedule_status(loaded),
        description=close_previous_month.__doc__,
    )(close_previous_month)

    @dg.sensor(
        name="statement_months_sensor",
        job=job,
        minimum_interval_seconds=300,
        default_status=sensor_status(loaded),
        description=request_months.__doc__,
    )
    def statement_months_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
        return request_months(context, warehouse, loaded)

    return dg.Definitions(jobs=[job], schedules=[schedule], sensors=[statement_months_sensor])
