"""Missed and stale days catch up.

Missed: Dagster's partitioned schedule only ever targets the day before its tick, so days
missed while the daemon was down would stay unmetered. The sensor asks for every day in a
look-back window that is not fully metered (never run, or its last run failed part-way).

Stale: a day whose inputs were re-written after it read them (a correction re-metered the
3rd after the month-to-date aggregates and quotes of the 20th were computed) is refreshed
from its stalest step on (days/staleness.py), whatever its age.

Both as single-run ranges, never for a day a queued or running run already covers.
"""

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
from dagster import (
    AssetKey,
    AssetPartitionStatus,
    DagsterInstance,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
)

from arcadia_pipeline import utc
from arcadia_pipeline.days.staleness import stale_days
from arcadia_pipeline.defs.daily.metering_job import DAILY_JOB
from arcadia_pipeline.flow import DAILY_FLOW
from arcadia_pipeline.orchestration.automation import sensor_status
from arcadia_pipeline.orchestration.partitions import daily_partitions, days_request
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.orchestration.retry import retry_period
from arcadia_pipeline.settings import Settings, settings
from arcadia_pipeline.utc import contiguous_ranges, iter_days, month_start

# Yesterday belongs to the 01:10 schedule; the sensor only takes it over after this grace.
SCHEDULE_GRACE = time(3, 10)


def days_due(now: datetime, lookback: int, first_day: date | None = None) -> list[date]:
    """The days in the look-back that should be metered by now (from `first_day`, the first
    partition, on)."""
    now = now.astimezone(UTC)
    last = now.date() - timedelta(days=1)
    if now.time() < SCHEDULE_GRACE:
        last -= timedelta(days=1)  # yesterday's scheduled run may still be on its way
    first_day = first_day or settings().metering_start_date
    first = max(now.date() - timedelta(days=lookback), first_day)
    return list(iter_days(first, last))


def partition_statuses(
    instance: DagsterInstance, loaded: Settings, days: list[date]
) -> dict[date, list]:
    """Each day's status in each daily asset (None: never materialised)."""
    keys = [day.isoformat() for day in days]
    partitions = daily_partitions(loaded)
    statuses = [
        instance.get_status_by_partition(AssetKey(asset), keys, partitions) or {}
        for asset in DAILY_FLOW.assets
    ]
    return {
        day: [status.get(key) for status in statuses] for day, key in zip(days, keys, strict=True)
    }


def days_to_meter(instance: DagsterInstance, loaded: Settings, due: list[date]) -> list[date]:
    """The due days some asset has not materialised since its last run on them (never run,
    or failed), leaving out the days a queued or running run already covers."""
    return [
        day
        for day, of_day in partition_statuses(instance, loaded, due).items()
        if AssetPartitionStatus.IN_PROGRESS not in of_day
        and any(s != AssetPartitionStatus.MATERIALIZED for s in of_day)
    ]


def days_to_refresh(
    instance: DagsterInstance,
    loaded: Settings,
    stale: dict[str, dict[date, datetime]],
    skip: set[date],
) -> dict[str, dict[date, datetime]]:
    """Per step, the stale days to refresh from that step on (a day's stalest step only),
    leaving out `skip` and the days whose month is being (re)metered up to them: the run
    in progress will make them stale again, the next tick catches up after it."""
    earliest: dict[date, str] = {}
    for asset in DAILY_FLOW.assets:
        for day in stale[asset]:
            earliest.setdefault(day, asset)
    if not earliest:
        return {}
    span = list(iter_days(month_start(min(earliest)), max(earliest)))
    busy = {
        day
        for day, of_day in partition_statuses(instance, loaded, span).items()
        if AssetPartitionStatus.IN_PROGRESS in of_day
    }
    refresh: dict[str, dict[date, datetime]] = {}
    for day, asset in earliest.items():
        if day in skip or any(d in busy for d in iter_days(month_start(day), day)):
            continue
        refresh.setdefault(asset, {})[day] = stale[asset][day]
    return refresh


def refresh_requests(refresh: dict[str, dict[date, datetime]]) -> list[RunRequest]:
    """One run per step and contiguous range: that step's asset and those after it. The run
    key carries the newest input, so the same staleness is asked for once."""
    requests = []
    for asset, days in refresh.items():
        selection = [AssetKey(s.asset) for s in DAILY_FLOW.from_step(DAILY_FLOW.step(asset))]
        for first, last in contiguous_ranges(days):
            newest = max(at for day, at in days.items() if first <= day <= last)
            requests.append(
                days_request(
                    first,
                    last,
                    run_key=f"refresh:{asset}:{first}:{last}:{newest.isoformat()}",
                    asset_selection=selection,
                    tags={"arcadia/trigger": "refresh"},
                )
            )
    return requests


def catch_up(context: SensorEvaluationContext, warehouse: WarehouseResource, loaded: Settings):
    """Request every day of the look-back (ARCADIA_CATCHUP_LOOKBACK_DAYS, default 7) not
    fully metered, and refresh every day metered from inputs re-written since, one single
    run per contiguous range."""
    now = utc.now()
    due = days_due(now, loaded.catchup_lookback_days, loaded.metering_start_date)
    missing = days_to_meter(context.instance, loaded, due)
    with warehouse.engine.connect() as connection:
        stale = stale_days(connection, DAILY_FLOW)
    refresh = days_to_refresh(context.instance, loaded, stale, skip=set(missing))
    if not missing and not refresh:
        return SkipReason("every day in the look-back is metered or being metered, none stale")
    attempt = retry_period(now)  # a range whose run failed: asked again in the next period
    return [
        days_request(
            first,
            last,
            run_key=f"catchup:{first}:{last}:{attempt}",
            tags={"arcadia/trigger": "catchup"},
        )
        for first, last in contiguous_ranges(missing)
    ] + refresh_requests(refresh)


@dg.definitions
def defs() -> dg.Definitions:
    loaded = settings()

    @dg.sensor(
        name="missed_days_sensor",
        job_name=DAILY_JOB,
        minimum_interval_seconds=120,
        default_status=sensor_status(loaded),
        description=catch_up.__doc__,
    )
    def missed_days_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
        return catch_up(context, warehouse, loaded)

    return dg.Definitions(sensors=[missed_days_sensor])
