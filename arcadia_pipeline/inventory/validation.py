"""Validation of a staged window: every source row the pipeline cannot meter, named.

Runs in SQL over the whole window before any day is written, so a run with bad rows fails
with all of them (up to MAX_LISTED) and the days they break, having written nothing.
The source may be a view: nothing its DDL promises (NOT NULL, a primary key) is assumed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Connection,
    Numeric,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import INTERVAL

from arcadia_pipeline.catalog.kinds import STATUSES, Accrual
from arcadia_pipeline.db.schema import kind_map, plans
from arcadia_pipeline.errors import MAX_LISTED, BadSourceData
from arcadia_pipeline.inventory.staging import staged_deployments, staged_versions

# 10 PB: far beyond any Spaces bucket, snapshot or backup, and small enough that no
# quantity (numeric(38,18)) or quote amount (numeric(14,2)) the pipeline derives from it
# can overflow. NaN and ±Infinity (PostgreSQL numerics) are refused with it.
MAX_SIZE_GB = Decimal(10_000_000)
_NOT_FINITE = ("NaN", "Infinity", "-Infinity")


def _shown(value) -> object:
    """A source value as the message shows it: NULL, '' or the value itself."""
    text_value = cast(value, Text)
    return case((value.is_(None), "NULL"), (text_value == "", "''"), else_=text_value)


def _quoted(value) -> object:
    return case((value.is_(None), "NULL"), else_=literal("'") + cast(value, Text) + "'")


def _version_problem(reason, where, versions=staged_versions):
    v = versions.c
    return select(
        (literal("resource ") + _shown(v.resource_id) + " version valid_from "
         + _shown(v.valid_from)).label("subject"),
        v.valid_from.label("valid_from"),
        v.valid_to.label("valid_to"),
        reason.label("problem"),
    ).where(where)  # fmt: skip


def _deployment_problem(reason, where, deployments=staged_deployments):
    """A deployment's problem breaks every day of the window (its plan is read each day)."""
    d = deployments.c
    return select(
        (literal("deployment ") + _shown(d.deployment_id)).label("subject"),
        literal(None, type_=staged_versions.c.valid_from.type).label("valid_from"),
        literal(None, type_=staged_versions.c.valid_to.type).label("valid_to"),
        reason.label("problem"),
    ).where(where)


def _finite_time(value):
    return and_(value.is_not(None), func.isfinite(value))


def _version_problems() -> list:
    v = staged_versions.c
    k = kind_map.alias("k")
    d = staged_deployments.alias("d")
    accrual = select(k.c.accrual).where(k.c.inventory_kind == v.inventory_kind)
    is_storage = accrual.where(k.c.accrual == Accrual.SIZE_MONTH.value).exists()
    ordering = {"partition_by": v.resource_id, "order_by": v.valid_from}
    # Only a resource with two or more versions in the window can overlap itself: the sort
    # the window needs is of those alone (a hashed count finds them).
    several = select(v.resource_id).group_by(v.resource_id).having(func.count() > 1)
    ordered = (
        select(
            staged_versions,
            func.lag(v.valid_to).over(**ordering).label("previous_end"),
            func.lag(v.valid_to.is_(None)).over(**ordering).label("previous_open"),
        )
        .where(_finite_time(v.valid_from), v.resource_id.in_(several))
        .subquery("ordered")
    )
    size = cast(v.size_gb, Numeric)
    return [
        _version_problem(
            literal("resource_id is missing or blank"),
            or_(v.resource_id.is_(None), func.btrim(v.resource_id) == ""),
        ),
        _version_problem(
            literal("valid_from is missing or not a finite time"),
            not_(_finite_time(v.valid_from)),
        ),
        _version_problem(
            literal("valid_to is not a finite time (NULL means still current)"),
            and_(v.valid_to.is_not(None), not_(func.isfinite(v.valid_to))),
        ),
        _version_problem(
            literal("inventory_kind ") + _quoted(v.inventory_kind) + " is not in metering.kind_map",
            or_(v.inventory_kind.is_(None), not_(accrual.exists())),
        ),  # fmt: skip
        _version_problem(
            literal("status ") + _quoted(v.status) + " is not active/off",
            or_(v.status.is_(None), v.status.not_in(STATUSES)),
        ),
        _version_problem(literal("valid_to is not after valid_from"), v.valid_to <= v.valid_from),
        _version_problem(
            literal("size_gb is missing or negative for a storage kind"),
            and_(
                or_(v.size_gb.is_(None), and_(size < 0, cast(size, Text) != "-Infinity")),
                is_storage,
            ),
        ),  # fmt: skip
        _version_problem(
            literal("size_gb is ") + cast(v.size_gb, Text) + ", not a finite number",
            cast(v.size_gb, Text).in_(_NOT_FINITE),
        ),
        _version_problem(
            literal("size_gb ") + cast(v.size_gb, Text) + f" is larger than {MAX_SIZE_GB:,} GB",
            and_(size > MAX_SIZE_GB, cast(size, Text).not_in(_NOT_FINITE)),
        ),
        _version_problem(
            literal("deployment_id is blank (NULL means unattributed)"),
            and_(v.deployment_id.is_not(None), func.btrim(v.deployment_id) == ""),
        ),
        _version_problem(
            literal("deployment_id ") + _quoted(v.deployment_id) + " is not in arcadia.deployments",
            and_(
                v.deployment_id.is_not(None),
                func.btrim(v.deployment_id) != "",
                not_(
                    select(d.c.deployment_id).where(d.c.deployment_id == v.deployment_id).exists()
                ),
            ),
        ),  # fmt: skip
        _version_problem(
            literal("overlaps the previous version of the same resource"),
            or_(ordered.c.previous_open.is_(True), ordered.c.previous_end > ordered.c.valid_from),
            versions=ordered,
        ),
    ]


def _deployment_problems() -> list:
    d = staged_deployments.c
    p = plans.alias("p")
    # A window count, not a correlated count per row: that is quadratic in deployments.
    counted = select(
        staged_deployments, func.count().over(partition_by=d.deployment_id).label("copies")
    ).subquery("counted")
    return [
        _deployment_problem(
            literal("deployment_id is missing or blank"),
            or_(d.deployment_id.is_(None), func.btrim(d.deployment_id) == ""),
        ),
        _deployment_problem(
            literal("appears more than once in arcadia.deployments"),
            counted.c.copies > 1,
            deployments=counted,
        ),
        _deployment_problem(literal("name is missing"), d.name.is_(None)),
        _deployment_problem(
            literal("plan_code ") + _quoted(d.plan_code) + " is not in metering.plans",
            or_(
                d.plan_code.is_(None),
                not_(select(p.c.plan_code).where(p.c.plan_code == d.plan_code).exists()),
            ),
        ),
    ]


def _days_touched(problems, window_start: datetime, window_end: datetime):
    """First and last UTC day of the window a problem row touches: a version's own days (one
    that ends before it starts counts as the instant it starts), else the whole window."""
    p = problems.c
    start = case((_finite_time(p.valid_from), p.valid_from), else_=window_start)
    ends = case(
        (and_(_finite_time(p.valid_from),
              or_(p.valid_to.is_(None), p.valid_to > p.valid_from)),
         func.least(func.coalesce(p.valid_to, window_end), window_end)),
        (_finite_time(p.valid_from), p.valid_from + cast(literal("1 microsecond"), INTERVAL)),
        else_=window_end,
    )  # fmt: skip
    first = func.greatest(start, window_start)
    last = func.greatest(ends - cast(literal("1 microsecond"), INTERVAL), first)
    return (
        func.date(func.timezone("UTC", first)),
        func.date(func.timezone("UTC", last)),
    )


def find_invalid_rows(
    warehouse: Connection, window_start: datetime, window_end: datetime
) -> tuple[int, list[dict]]:
    """Every staged row the pipeline cannot meter, with the reason and the days of the window
    it touches (set-based); the first MAX_LISTED of them, and how many."""
    problems = _version_problems() + _deployment_problems()
    all_problems = problems[0].union_all(*problems[1:]).subquery("problems")
    first_day, last_day = _days_touched(all_problems, window_start, window_end)
    rows = warehouse.execute(
        select(
            all_problems.c.subject,
            all_problems.c.problem,
            first_day.label("first_day"),
            last_day.label("last_day"),
            func.min(first_day).over().label("run_first_day"),
            func.max(last_day).over().label("run_last_day"),
            func.count().over().label("total"),
        )
        .order_by(all_problems.c.subject, all_problems.c.problem)
        .limit(MAX_LISTED)
    ).mappings().all()  # fmt: skip
    total = rows[0]["total"] if rows else 0
    return total, [dict(r) for r in rows]


def _days(first: date, last: date) -> str:
    return f"day {first}" if first == last else f"days {first} to {last}"


def describe_problems(total: int, rows: list[dict]) -> str:
    """The failure of a window with bad rows: which days of the run, which rows, why."""
    lines = [
        f"  {r['subject']} ({_days(r['first_day'], r['last_day'])}): {r['problem']}" for r in rows
    ]
    more = f"\n  … and {total - len(rows)} more" if total > len(rows) else ""
    days = _days(rows[0]["run_first_day"], rows[0]["run_last_day"])
    return (
        f"the source has {total} row(s) the pipeline cannot meter on {days} of this run; "
        "nothing was written:\n" + "\n".join(lines) + more
    )


def validate_staged(warehouse: Connection, window_start: datetime, window_end: datetime) -> None:
    """Raise BadSourceData naming the staged rows of the window that cannot be metered."""
    total, rows = find_invalid_rows(warehouse, window_start, window_end)
    if total:
        raise BadSourceData(describe_problems(total, rows))
