"""Validation of a staged window: every source row the pipeline cannot meter, named.

Runs in SQL over the whole window before any day is written, so a run with bad rows
fails with all of them (up to MAX_REPORTED_ROWS) and the days they break, having written
nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, and_, case, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import INTERVAL

from arcadia_pipeline.db.schema import kind_map, plans
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.inventory.sql import staged_deployments, staged_versions
from arcadia_pipeline.metering.accrual import STATUSES, Accrual

MAX_REPORTED_ROWS = 20


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


def validate_staged(warehouse: Connection, window_start: datetime, window_end: datetime) -> None:
    """Raise BadSourceData naming the staged rows of the window that cannot be metered."""
    total, rows = find_invalid_versions(warehouse, window_start, window_end)
    if total:
        raise BadSourceData(describe_problems(total, rows))
