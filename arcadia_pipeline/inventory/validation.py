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
    Date,
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


def _version_problem(reason, where, versions=staged_versions, what="resource", id_column=None):
    """A problem row of a resource version (or, `what`="deployment", a deployment version):
    its subject, its times (the days it breaks) and the reason."""
    v = versions.c
    the_id = v.resource_id if id_column is None else v[id_column]
    return select(
        (literal(f"{what} ") + _shown(the_id) + " version valid_from "
         + _shown(v.valid_from)).label("subject"),
        v.valid_from.label("valid_from"),
        v.valid_to.label("valid_to"),
        reason.label("problem"),
    ).where(where)  # fmt: skip


def _deployment_problem(reason, where, versions=staged_deployments):
    return _version_problem(reason, where, versions, "deployment", "deployment_id")


def _finite_time(value):
    return and_(value.is_not(None), func.isfinite(value))


def _ordered(versions, id_column: str, *also: str):
    """The versions of ids with two or more versions in the window, each with the end of the
    one before it (and its columns `also`, as previous_<name>): an overlap is a version
    starting before its predecessor ends. Only those ids can overlap themselves: the sort the
    window needs is of them alone (a hashed count finds them)."""
    v = versions.c
    ordering = {"partition_by": v[id_column], "order_by": v.valid_from}
    several = select(v[id_column]).group_by(v[id_column]).having(func.count() > 1)
    return (
        select(
            versions,
            func.lag(v.valid_to).over(**ordering).label("previous_end"),
            func.lag(v.valid_to.is_(None)).over(**ordering).label("previous_open"),
            *(func.lag(v[name]).over(**ordering).label(f"previous_{name}") for name in also),
        )
        .where(_finite_time(v.valid_from), v[id_column].in_(several))
        .subquery(f"ordered_{versions.name}")
    )


def _utc_day(instant):
    return func.date(func.timezone("UTC", instant))


def _kind_changes_within_a_day(ordered):
    """A resource whose previous version, of another kind, ends on the day this one starts
    (not at its midnight): the day would need a record of each kind under one id. At
    midnight each kind has its own days (docs/domain.md §4)."""
    o = ordered.c
    last_instant = o.previous_end - cast(literal("1 microsecond"), INTERVAL)
    return and_(
        o.previous_inventory_kind.is_distinct_from(o.inventory_kind),
        o.previous_end.is_not(None),
        func.isfinite(o.previous_end),
        _utc_day(last_instant) >= _utc_day(o.valid_from),
    )


def _overlaps(ordered):
    o = ordered.c
    return or_(o.previous_open.is_(True), o.previous_end > o.valid_from)


def _interval_problems(versions, problem) -> list:
    """Missing or infinite times and empty intervals: the same rule for both kinds."""
    v = versions.c
    return [
        problem(
            literal("valid_from is missing or not a finite time"),
            not_(_finite_time(v.valid_from)),
        ),
        problem(
            literal("valid_to is not a finite time (NULL means still current)"),
            and_(v.valid_to.is_not(None), not_(func.isfinite(v.valid_to))),
        ),
        problem(literal("valid_to is not after valid_from"), v.valid_to <= v.valid_from),
    ]


def _unhosted_versions(window_start: datetime, window_end: datetime):
    """Attributed resource versions whose part inside the window is not wholly covered by
    versions of their deployment: the resource is billed to a deployment that does not
    exist (yet, or any more) at that time. A version one deployment version covers is
    passed by a hashed anti-join; only the rest have their coverage summed."""
    v, d = staged_versions.c, staged_deployments.c
    start = func.greatest(v.valid_from, window_start)
    end = func.least(func.coalesce(v.valid_to, window_end), window_end)
    d_end = func.coalesce(d.valid_to, "infinity")
    hosted_by_one = (
        select(d.deployment_id)
        .where(d.deployment_id == v.deployment_id, d.valid_from <= start, d_end >= end)
        .exists()
    )
    candidates = (
        select(
            v.resource_id, v.deployment_id, v.valid_from, v.valid_to,
            start.label("start"), end.label("end"),
        )
        .where(
            v.deployment_id.is_not(None),
            func.btrim(v.deployment_id) != "",
            _finite_time(v.valid_from),
            or_(v.valid_to.is_(None), and_(func.isfinite(v.valid_to), v.valid_to > v.valid_from)),
            v.valid_from < window_end,
            not_(hosted_by_one),
        )
        .subquery("candidates")
    )  # fmt: skip
    c = candidates.c
    # FILTER: greatest/least skip NULLs, so the outer join's empty row would count it all.
    overlap = func.least(c.end, func.coalesce(d.valid_to, c.end)) - func.greatest(
        c.start, d.valid_from
    )
    covered = func.coalesce(
        func.sum(func.extract("epoch", overlap)).filter(d.deployment_id.is_not(None)), 0
    )
    return (
        select(c.resource_id, c.deployment_id, c.valid_from, c.valid_to)
        .select_from(candidates)
        .outerjoin(
            staged_deployments,
            and_(
                d.deployment_id == c.deployment_id,
                _finite_time(d.valid_from),
                d.valid_from < c.end,
                or_(d.valid_to.is_(None), d.valid_to > c.start),
            ),
        )
        .where(c.end > c.start)
        .group_by(c.resource_id, c.deployment_id, c.valid_from, c.valid_to, c.start, c.end)
        .having(covered < func.extract("epoch", c.end - c.start))
        .subquery("unhosted")
    )


def _version_problems(window_start: datetime, window_end: datetime) -> list:
    v = staged_versions.c
    k = kind_map.alias("k")
    # A term in effect for a month is in effect for every later one (db/terms.py): a kind
    # known in the first month of a version's part of the window is known for all of it.
    known = select(k.c.accrual).where(
        k.c.inventory_kind == v.inventory_kind,
        k.c.effective_from <= _first_month(staged_versions, window_start),
    )
    # Storage in any month of the kind map: a size is needed.
    is_storage = (
        select(k.c.accrual)
        .where(k.c.inventory_kind == v.inventory_kind, k.c.accrual == Accrual.SIZE_MONTH.value)
        .exists()
    )
    ordered = _ordered(staged_versions, "resource_id", "inventory_kind")
    unhosted = _unhosted_versions(window_start, window_end)
    size = cast(v.size_gb, Numeric)
    return [
        _version_problem(
            literal("resource_id is missing or blank"),
            or_(v.resource_id.is_(None), func.btrim(v.resource_id) == ""),
        ),
        *_interval_problems(staged_versions, _version_problem),
        _version_problem(
            literal("inventory_kind ")
            + _quoted(v.inventory_kind)
            + " is not in metering.kind_map for "
            + _month_text(staged_versions, window_start),
            or_(v.inventory_kind.is_(None), not_(known.exists())),
        ),  # fmt: skip
        _version_problem(
            literal("status ") + _quoted(v.status) + " is not active/off",
            or_(v.status.is_(None), v.status.not_in(STATUSES)),
        ),
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
            literal("deployment ")
            + _quoted(unhosted.c.deployment_id)
            + " does not exist for all of its time: no version in "
            "arcadia.deployment_versions covers it",
            literal(True),
            versions=unhosted,
        ),  # fmt: skip
        _version_problem(
            literal("overlaps the previous version of the same resource"),
            _overlaps(ordered),
            versions=ordered,
        ),
        _version_problem(
            literal("changes inventory_kind from ")
            + _quoted(ordered.c.previous_inventory_kind)
            + " to "
            + _quoted(ordered.c.inventory_kind)
            + " within one UTC day: give the new kind a new resource_id",
            _kind_changes_within_a_day(ordered),
            versions=ordered,
        ),  # fmt: skip
    ]


def _first_month(versions, window_start: datetime):
    """The billing month a version's part of the window starts in: the month whose terms it
    must be known to first."""
    v = versions.c
    return cast(func.date_trunc("month", func.greatest(v.valid_from, window_start)), Date)


def _month_text(versions, window_start: datetime):
    return func.to_char(_first_month(versions, window_start), "YYYY-MM")


def _deployment_problems(window_start: datetime) -> list:
    d = staged_deployments.c
    p = plans.alias("p")
    plan_known = select(p.c.plan_code).where(
        p.c.plan_code == d.plan_code,
        p.c.effective_from <= _first_month(staged_deployments, window_start),
    )
    ordered = _ordered(staged_deployments, "deployment_id")
    return [
        _deployment_problem(
            literal("deployment_id is missing or blank"),
            or_(d.deployment_id.is_(None), func.btrim(d.deployment_id) == ""),
        ),
        *_interval_problems(staged_deployments, _deployment_problem),
        _deployment_problem(literal("name is missing"), d.name.is_(None)),
        _deployment_problem(
            literal("plan_code ")
            + _quoted(d.plan_code)
            + " is not in metering.plans for "
            + _month_text(staged_deployments, window_start),
            or_(
                d.plan_code.is_(None),
                not_(plan_known.exists()),
            ),
        ),
        _deployment_problem(
            literal("overlaps the previous version of the same deployment"),
            _overlaps(ordered),
            versions=ordered,
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
    problems = _version_problems(window_start, window_end) + _deployment_problems(window_start)
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
