"""Freshness in Dagster's terms: is yesterday metered by 03:00 UTC, and is the last billing
month due closed by its deadline (its end plus ARCADIA_CLOSE_GRACE_DAYS plus one day)?

- `freshness_check` on each daily asset: Dagster's time-partition freshness check (from
  03:00 UTC on day D, partition D-1 must be materialised).
- `statements_closed_on_time` on monthly_usage_statements: the last month past its close
  deadline is closed; when not, why (its days not final, or no run closed it). A draft
  month is materialised too, so "materialised" cannot mean "closed": the warehouse says.
  Its metadata lists every billing month's standing (`billing_months`: draft or closed).
- `freshness_checks_sensor` evaluates them (Dagster's sensor for freshness checks), in runs
  of their own: the jobs' runs and backfills leave them out (orchestration.assets.
  job_selection), so a backfill of last year never reads as a miss or as fresh.

Both are non-blocking warnings; a failed evaluation reaches ARCADIA_ALERT_URLS through
check_failure_alert_sensor, once per deadline (a missed close shares its incident,
`close:<YYYY-MM>`, with statement_months_sensor's alert).

Why not Dagster's newer `FreshnessPolicy`: it reads an asset's last materialisation of any
partition, so a backfill of old days would read as fresh; these checks read the partition
that is due.
"""

import warnings

import dagster as dg
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, MetadataValue

from arcadia_pipeline import utc
from arcadia_pipeline.defs.alerts.incidents import failed_close_run
from arcadia_pipeline.defs.statements.month_close import MONTHLY_JOB
from arcadia_pipeline.defs.statements.tables import billing_months_table
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.automation import sensor_status
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.settings import settings
from arcadia_pipeline.statements.closing import (
    close_deadline,
    last_month_due,
    unclosed_reason,
    unready_days,
)
from arcadia_pipeline.statements.month import ASSET, closed_at
from arcadia_pipeline.statements.overview import billing_months
from arcadia_pipeline.utc import add_months, month_start, month_text

# Yesterday's partition of every daily asset is materialised by 03:00 UTC (the schedule
# starts it at 01:10).
DAILY_DEADLINE_CRON = "0 3 * * *"
STATEMENTS_FRESHNESS_CHECK = "statements_closed_on_time"
# The name Dagster's freshness factories give their checks.
DAILY_FRESHNESS_CHECK = "freshness_check"
FRESHNESS_CHECKS = frozenset({DAILY_FRESHNESS_CHECK, STATEMENTS_FRESHNESS_CHECK})
# The metadata Dagster's freshness sensor reads to know when a passed check could be
# overdue again.
FRESH_UNTIL = "dagster/fresh_until_timestamp"


def statements_closed_on_time(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Passes when the last billing month past its close deadline is closed (or when no
    month is due yet); fails naming the month, its deadline and why it is not closed."""
    now = utc.now()
    month = last_month_due(now)
    deadline = close_deadline(month)
    fresh_until = close_deadline(add_months(month, 1)).timestamp()
    metadata = {
        "month": MetadataValue.text(month_text(month)),
        "deadline": MetadataValue.timestamp(deadline),
    }
    with warehouse.engine.connect() as connection:
        # Every billing month's standing, on the check's page whatever its verdict.
        metadata["billing_months"] = billing_months_table(billing_months(connection))
    if month < month_start(settings().metering_start_date):
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description="no billing month is due to be closed yet",
            metadata={**metadata, FRESH_UNTIL: MetadataValue.timestamp(fresh_until)},
        )
    with warehouse.engine.connect() as connection:
        closed = closed_at(connection, month)
        waiting = [] if closed else unready_days(connection, month, now.date())
    if closed:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description=f"{month_text(month)} closed at {closed:%Y-%m-%d %H:%M} UTC",
            metadata={**metadata, FRESH_UNTIL: MetadataValue.timestamp(fresh_until)},
        )
    failed = None if waiting else failed_close_run(context.instance, MONTHLY_JOB, month)
    why = unclosed_reason(waiting, failed)
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=f"{month_text(month)} is not closed by its deadline "
        f"{deadline:%Y-%m-%d %H:%M} UTC: {why}",
        metadata={**metadata, "incident": MetadataValue.text(f"close:{month_text(month)}")},
    )


@dg.definitions
def defs() -> dg.Definitions:
    with warnings.catch_warnings():
        # Superseded by FreshnessPolicy, which cannot read partitions (see above).
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        daily = dg.build_time_partition_freshness_checks(
            assets=list(DAILY_FLOW.assets), deadline_cron=DAILY_DEADLINE_CRON, timezone="UTC"
        )
        statements = dg.asset_check(
            asset=ASSET,
            name=STATEMENTS_FRESHNESS_CHECK,
            blocking=False,
            description=statements_closed_on_time.__doc__,
        )(statements_closed_on_time)
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=[*daily, statements],
            minimum_interval_seconds=300,
            default_status=sensor_status(settings()),
        )
    return dg.Definitions(asset_checks=[*daily, statements], sensors=[sensor])
