"""The monthly statements' job, the schedule that closes the previous month once its grace
period is over, and the sensor that re-prices a month whose days were written since (a
correction re-metered them: a closed month gets its adjustments, a draft is replaced).
"""

from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetPartitionStatus,
    AssetSelection,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)
from sqlalchemy import Connection, func, select

from arcadia_pipeline.automation.status import SCHEDULE_STATUS, SENSOR_STATUS
from arcadia_pipeline.db.schema import day_writes, statement_months
from arcadia_pipeline.orchestration.partitions import monthly_partitions
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.settings import settings
from arcadia_pipeline.statements import closing
from arcadia_pipeline.statements.assets import monthly_usage_statements
from arcadia_pipeline.statements.sql import written_since_priced
from arcadia_pipeline.utc import add_months, month_start

monthly_statements_job = define_asset_job(
    "monthly_statements_job",
    selection=AssetSelection.assets(monthly_usage_statements),
    partitions_def=monthly_partitions,
    description="Price one billing month (or a range): drafts, the close, adjustments.",
)

# The schedule closes a month at 02:30 UTC on the first day after its grace period; the
# sensor closes one whose tick was missed (the daemon was down, or a grace of 28 days
# after a 28-day February) a day later.
CLOSE_TIME = (2, 30)
MISSED_CLOSE_AFTER = timedelta(days=1)


def close_cron(grace_days: int) -> str:
    hour_minute = f"{CLOSE_TIME[1]} {CLOSE_TIME[0]}"
    return f"{hour_minute} {1 + grace_days} * *"


@schedule(
    job=monthly_statements_job,
    cron_schedule=close_cron(settings().close_grace_days),
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
def month_close_schedule(context: ScheduleEvaluationContext):
    """Close the previous billing month: day 1 + ARCADIA_CLOSE_GRACE_DAYS, 02:30 UTC."""
    month = add_months(context.scheduled_execution_time.astimezone(UTC).date(), -1)
    return RunRequest(
        run_key=f"close:{closing.month_text(month)}",
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


def months_to_price(connection: Connection, now: datetime) -> dict[date, str]:
    """{month: why} for the months to (re-)price: priced months whose days were written since
    (a draft replaced, a closed month adjusted), and months due to close a day ago or more
    that are not closed (their schedule tick was missed)."""
    wanted = {month: "reprice" for month in written_since_priced(connection)}
    closed = set(
        connection.execute(
            select(statement_months.c.month).where(statement_months.c.closed_at.is_not(None))
        ).scalars()
    )
    first = month_start(settings().metering_start_date)
    for month in newest_writes(connection):
        overdue = now >= closing.closes_at(month) + MISSED_CLOSE_AFTER
        if month >= first and month not in closed and overdue:
            wanted.setdefault(month, "close")
    return wanted


@sensor(job=monthly_statements_job, minimum_interval_seconds=300, default_status=SENSOR_STATUS)
def statement_months_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    """Re-price a month whose days (usage records, inventory plans) were written after it
    was last priced, and close a month whose close was missed, once its days are final (a
    draft: once none is being written or stale); one run per month."""
    now = closing.utc_now()
    requests, waiting = [], []
    with warehouse.engine.connect() as connection:
        wanted = months_to_price(connection, now)
        newest = newest_writes(connection)
        for month, why in sorted(wanted.items()):
            key = month.isoformat()
            status = context.instance.get_status_by_partition(
                monthly_usage_statements.key, [key], monthly_partitions
            )
            if (status or {}).get(key) == AssetPartitionStatus.IN_PROGRESS:
                continue
            if closing.past_retention(connection, month, now.date()):
                continue  # its closed statements stand; its records may be gone
            final = why == "close" or closing.due_to_close(month, now)
            unready = closing.unready_days(context.instance, connection, month, complete=final)
            if unready:
                waiting.append(f"{closing.month_text(month)} ({'; '.join(unready)})")
                continue
            requests.append(
                RunRequest(
                    run_key=f"{why}:{closing.month_text(month)}:{newest[month].isoformat()}",
                    partition_key=key,
                    tags={"arcadia/trigger": why},
                )
            )
    if waiting:
        context.log.info(f"waiting for final days: {', '.join(waiting)}")
    return requests or SkipReason(
        "no month to price" + (f"; waiting: {', '.join(waiting)}" if waiting else "")
    )
