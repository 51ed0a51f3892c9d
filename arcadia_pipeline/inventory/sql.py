"""Set-based SQL of the resource_inventory asset: stage, validate, snapshot per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import INTERVAL

from arcadia_pipeline.days import day_start
from arcadia_pipeline.db.schema import (
    TSTZ,
    inventory_deployments,
    inventory_snapshots,
    kind_map,
    plans,
    resource_inventory,
)
from arcadia_pipeline.db.staging import stage_query, version_columns
from arcadia_pipeline.metering.accrual import STATUSES, Accrual

# What the pipeline reads of the source: every version overlapping [window_start, window_end),
# and every version starting inside it even when it ends before it starts (so validation
# names that row instead of it silently falling out of the window).
SOURCE_VERSIONS_SQL = """
SELECT resource_id, deployment_id, inventory_kind, size_gb, status,
       valid_from, valid_to, recorded_at
FROM arcadia.resource_versions
WHERE valid_from < %(window_end)s
  AND (valid_to IS NULL OR valid_to > %(window_start)s OR valid_from >= %(window_start)s)
"""
SOURCE_DEPLOYMENTS_SQL = "SELECT deployment_id, name, plan_code FROM arcadia.deployments"

# Session-local copies of the source rows the run needs (temporary: they vanish with the
# connection, and each run has its own).
_staging = MetaData()
staged_versions = Table(
    "staged_versions",
    _staging,
    *version_columns(),
    Column("recorded_at", TSTZ),
    prefixes=["TEMPORARY"],
)
staged_deployments = Table(
    "staged_deployments",
    _staging,
    Column("deployment_id", Text),
    Column("name", Text),
    Column("plan_code", Text),
    prefixes=["TEMPORARY"],
)

MAX_REPORTED_ROWS = 20


class InventoryError(ValueError):
    """The source holds rows the pipeline cannot meter; nothing was written."""


def stage_source(
    warehouse: Connection,
    source: Engine | None,
    window_start: datetime,
    window_end: datetime,
) -> tuple[int, datetime]:
    """Copy the source versions overlapping the window into session temp tables.

    `source=None` means the source relations live in the warehouse database itself.
    Returns the number of staged versions and when the staging transaction started: every
    version recorded before then is in the stage (the snapshots' `taken_at`, which the
    corrections sensor compares recorded_at with).
    """
    for table in (staged_versions, staged_deployments):
        table.drop(warehouse, checkfirst=True)
        table.create(warehouse)
    params = {"window_start": window_start, "window_end": window_end}
    stage_query(warehouse, source, SOURCE_VERSIONS_SQL, params, "staged_versions")
    stage_query(warehouse, source, SOURCE_DEPLOYMENTS_SQL, {}, "staged_deployments")
    warehouse.exec_driver_sql("ANALYZE staged_versions")
    staged = warehouse.execute(select(func.count()).select_from(staged_versions)).scalar_one()
    return staged, warehouse.execute(select(func.now())).scalar_one()


def _problem(reason, where, source=staged_versions):
    v = source.c
    return select(
        v.resource_id.label("resource_id"),
        v.valid_from.label("valid_from"),
        v.valid_to.label("valid_to"),
        reason.label("problem"),
    ).where(where)


def _days_touched(problems, window_start: datetime, window_end: datetime):
    """First and last UTC day of the window a problem row touches (a row that ends before
    it starts counts as the instant it starts)."""
    p = problems.c
    ends = case(
        (or_(p.valid_to.is_(None), p.valid_to > p.valid_from),
         func.least(func.coalesce(p.valid_to, window_end), window_end)
         - cast(literal("1 microsecond"), INTERVAL)),
        else_=p.valid_from,
    )  # fmt: skip
    first = func.greatest(p.valid_from, window_start)
    return (
        func.date(func.timezone("UTC", first)),
        func.date(func.timezone("UTC", func.greatest(ends, first))),
    )


def find_invalid_versions(
    warehouse: Connection, window_start: datetime, window_end: datetime
) -> tuple[int, list[dict]]:
    """Every staged version the pipeline cannot meter, with the reason and the days of the
    window it touches (set-based); the first MAX_REPORTED_ROWS of them, and how many."""
    v = staged_versions.c
    k = kind_map.alias("k")
    previous_end = (
        func.lag(v.valid_to)
        .over(partition_by=v.resource_id, order_by=v.valid_from)
        .label("previous_end")
    )
    previous_open = (
        func.lag(v.valid_to.is_(None))
        .over(partition_by=v.resource_id, order_by=v.valid_from)
        .label("previous_open")
    )
    ordered = select(staged_versions, previous_end, previous_open).subquery("ordered")
    d = staged_deployments.alias("d")
    p = plans.alias("p")
    problems = [
        _problem(
            literal("inventory_kind '") + v.inventory_kind + "' is not in metering.kind_map",
            ~select(k.c.inventory_kind).where(k.c.inventory_kind == v.inventory_kind).exists(),
        ),
        _problem(
            literal("status '") + func.coalesce(v.status, "NULL") + "' is not active/off",
            or_(v.status.is_(None), v.status.not_in(STATUSES)),
        ),
        _problem(literal("valid_to is not after valid_from"), v.valid_to <= v.valid_from),
        _problem(
            literal("size_gb is missing or negative for a storage kind"),
            and_(
                or_(v.size_gb.is_(None), v.size_gb < 0),
                select(k.c.inventory_kind)
                .where(
                    k.c.inventory_kind == v.inventory_kind,
                    k.c.accrual == Accrual.SIZE_MONTH.value,
                )
                .exists(),
            ),
        ),
        _problem(
            literal("deployment_id '") + v.deployment_id + "' is not in arcadia.deployments",
            and_(
                v.deployment_id.is_not(None),
                ~select(d.c.deployment_id).where(d.c.deployment_id == v.deployment_id).exists(),
            ),
        ),
        _problem(
            literal("deployment '")
            + v.deployment_id
            + "' has unknown plan_code '"
            + select(d.c.plan_code).where(d.c.deployment_id == v.deployment_id).scalar_subquery()
            + "'",
            select(d.c.deployment_id)
            .where(
                d.c.deployment_id == v.deployment_id,
                ~select(p.c.plan_code).where(p.c.plan_code == d.c.plan_code).exists(),
            )
            .exists(),
        ),
        _problem(
            literal("overlaps the previous version of the same resource"),
            or_(
                ordered.c.previous_open.is_(True),
                ordered.c.previous_end > ordered.c.valid_from,
            ),
            source=ordered,
        ),
    ]
    all_problems = problems[0].union_all(*problems[1:]).subquery("problems")
    first_day, last_day = _days_touched(all_problems, window_start, window_end)
    rows = (
        warehouse.execute(
            select(
                all_problems.c.resource_id,
                all_problems.c.valid_from,
                all_problems.c.problem,
                first_day.label("first_day"),
                last_day.label("last_day"),
                func.min(first_day).over().label("run_first_day"),
                func.max(last_day).over().label("run_last_day"),
                func.count().over().label("total"),
            )
            .order_by(all_problems.c.resource_id, all_problems.c.valid_from)
            .limit(MAX_REPORTED_ROWS)
        )
        .mappings()
        .all()
    )
    total = rows[0]["total"] if rows else 0
    return total, [dict(r) for r in rows]


def _days(first: date, last: date) -> str:
    return f"day {first}" if first == last else f"days {first} to {last}"


def describe_problems(total: int, rows: list[dict]) -> str:
    """The failure of a window with bad rows: which days of the run, which rows, why."""
    lines = [
        f"  resource {r['resource_id']} version valid_from {r['valid_from'].isoformat()} "
        f"({_days(r['first_day'], r['last_day'])}): {r['problem']}"
        for r in rows
    ]
    more = f"\n  … and {total - len(rows)} more" if total > len(rows) else ""
    days = _days(rows[0]["run_first_day"], rows[0]["run_last_day"])
    return (
        f"arcadia.resource_versions has {total} row(s) the pipeline cannot meter on {days} "
        "of this run; nothing was written:\n" + "\n".join(lines) + more
    )


@dataclass(frozen=True)
class InventorySnapshot:
    day: date
    snapshot_id: int
    versions: int
    resources: int
    unattributed_resources: int
    kept_newer: bool = False  # the day held a snapshot staged after this run's: kept


def _snapshot(row, kept_newer: bool = False) -> InventorySnapshot:
    return InventorySnapshot(
        day=row["day"],
        snapshot_id=row["snapshot_id"],
        versions=row["versions"],
        resources=row["resources"],
        unattributed_resources=row["unattributed_resources"],
        kept_newer=kept_newer,
    )


def replace_inventory_day(
    warehouse: Connection, day: date, run_id: str, taken_at: datetime
) -> InventorySnapshot:
    """Replace day's snapshot from the staged rows, staged at `taken_at` (the caller holds
    the day's transaction and lock).

    A snapshot staged after ours is kept: a correction run re-metered the day while this
    (long) run was on earlier days, and our older copy of the source would undo it.
    """
    existing = (
        warehouse.execute(select(inventory_snapshots).where(inventory_snapshots.c.day == day))
        .mappings()
        .one_or_none()
    )
    if existing is not None and existing["taken_at"] > taken_at:
        return _snapshot(existing, kept_newer=True)
    d0, d1 = day_start(day), day_start(day + timedelta(days=1))
    v = staged_versions.c
    k = kind_map.c
    overlaps = and_(v.valid_from < d1, or_(v.valid_to.is_(None), v.valid_to > d0))
    for table in (resource_inventory, inventory_deployments, inventory_snapshots):
        warehouse.execute(delete(table).where(table.c.day == day))

    billable = (
        select(k.inventory_kind)
        .where(k.inventory_kind == v.inventory_kind, k.billing_kind.is_not(None))
        .exists()
    )
    counts = select(
        literal(day).label("day"),
        literal(run_id).label("run_id"),
        literal(taken_at, TSTZ).label("taken_at"),
        func.max(v.recorded_at).label("source_recorded_through"),
        func.count().label("versions"),
        func.count(distinct(v.resource_id)).label("resources"),
        func.count(distinct(v.resource_id))
        .filter(and_(v.deployment_id.is_(None), billable))
        .label("unattributed_resources"),
    ).where(overlaps)
    snapshot_id = warehouse.execute(
        insert(inventory_snapshots)
        .from_select([c.name for c in counts.selected_columns], counts)
        .returning(inventory_snapshots.c.snapshot_id)
    ).scalar_one()

    starts_at = func.greatest(v.valid_from, d0)
    ends_at = func.least(func.coalesce(v.valid_to, d1), d1)
    rows = (
        select(
            literal(day),
            literal(snapshot_id),
            v.resource_id,
            v.deployment_id,
            v.inventory_kind,
            kind_map.c.billing_kind,
            kind_map.c.accrual,
            v.size_gb,
            v.status,
            v.valid_from,
            v.valid_to,
            starts_at,
            ends_at,
            v.recorded_at,
        )
        .join_from(staged_versions, kind_map, kind_map.c.inventory_kind == v.inventory_kind)
        .where(overlaps)
    )
    warehouse.execute(
        insert(resource_inventory).from_select(
            [
                "day",
                "snapshot_id",
                "resource_id",
                "deployment_id",
                "inventory_kind",
                "billing_kind",
                "accrual",
                "size_gb",
                "status",
                "valid_from",
                "valid_to",
                "starts_at",
                "ends_at",
                "recorded_at",
            ],
            rows,
        )
    )
    sd = staged_deployments.c
    warehouse.execute(
        insert(inventory_deployments).from_select(
            ["day", "deployment_id", "name", "plan_code"],
            select(literal(day), sd.deployment_id, sd.name, sd.plan_code),
        )
    )
    snap = (
        warehouse.execute(
            select(inventory_snapshots).where(inventory_snapshots.c.snapshot_id == snapshot_id)
        )
        .mappings()
        .one()
    )
    return _snapshot(snap)
