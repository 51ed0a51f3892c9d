"""Each day's check verdicts, kept beside its write stamps, and the one question they answer:
can a billing month close?

A check of a step's day runs in a transaction holding the day and what it reads (shared),
and records its verdict there, stamped after those locks: a verdict newer than the day's
write stamp speaks for the rows the day holds now. A month can close when every day of it
is written by every gating step, every gating check of each has passed since that write,
and no day is stale (docs/domain.md; statements/closing.py acts on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, Date, and_, cast, exists, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import INTERVAL, insert

from arcadia_pipeline.days.locks import lock_for_reading
from arcadia_pipeline.days.staleness import is_stale, stale_rows
from arcadia_pipeline.days.steps import DailyCheck, DailyFlow, DailyStep, Problems
from arcadia_pipeline.db.schema import day_checks, day_writes
from arcadia_pipeline.utc import days_text


def check_day(
    connection: Connection, step: DailyStep, check: DailyCheck, day: date, run_id: str
) -> Problems | None:
    """Run `check` on the step's day and record its verdict, in one transaction holding the
    day and what it reads (caller begins it); None for a stale day: it is refreshed, not
    judged."""
    lock_for_reading(connection, step, day)
    if is_stale(connection, step, day):
        return None
    problems = check.find(connection, day)
    verdict = {
        "asset": step.asset,
        "passed": problems.total == 0,
        "problems": problems.total,
        "checked_at": func.clock_timestamp(),  # after the locks: the stamp comparable to writes
        "run_id": run_id,
    }
    connection.execute(
        insert(day_checks)
        .values(check_name=check.name, day=day, **verdict)
        .on_conflict_do_update(index_elements=["check_name", "day"], set_=verdict)
    )
    return problems


@dataclass(frozen=True)
class CloseStatus:
    """Why a month's days are not final yet; none of it: they are, and the month can close."""

    month: date
    missing_days: list[date]  # some gating step has not written them
    failed_checks: dict[str, list[date]]  # check name: days it has not passed since written
    stale_days: list[date]  # a month-to-date figure older than what it read

    @property
    def can_close(self) -> bool:
        return not (self.missing_days or self.failed_checks or self.stale_days)

    def reasons(self) -> list[str]:
        """Each reason with its days, as the month close and its sensor say them."""
        failing = sorted({day for days in self.failed_checks.values() for day in days})
        reasons = [
            ("not metered by every daily asset", self.missing_days),
            ("daily checks not passed", failing),
            ("stale (to be refreshed by missed_days_sensor)", self.stale_days),
        ]
        return [f"{what}: {days_text(days)}" for what, days in reasons if days]


def close_status(connection: Connection, flow: DailyFlow, first: date, last: date) -> CloseStatus:
    """Whether the days [first, last] of one billing month are final, in one query over
    `day_writes` and `day_checks`: every day written by each gating step of the flow, each
    of its checks passed after that write, and no day stale."""
    days = select(
        cast(func.generate_series(first, last, cast(literal("1 day"), INTERVAL)), Date).label("day")
    ).subquery("days")
    w, v = day_writes.c, day_checks.c
    parts = []
    for step in flow.gating:
        written = and_(w.asset == step.asset, w.day == days.c.day)
        parts.append(
            select(
                literal("missing").label("what"), literal(step.asset).label("name"), days.c.day
            ).where(~exists().where(written))
        )
        for check in step.checks:
            passed = and_(
                v.check_name == check.name, v.day == w.day, v.passed, v.checked_at > w.written_at
            )
            parts.append(
                select(literal("check"), literal(check.name), w.day)
                .where(w.asset == step.asset, w.day.between(first, last))
                .where(~exists().where(passed))
            )
        if step.reads:
            stale = stale_rows(step).subquery()
            parts.append(
                select(literal("stale"), stale.c.asset, stale.c.day).where(
                    stale.c.day.between(first, last)
                )
            )
    rows = connection.execute(union_all(*parts)).all() if parts else []
    month = first.replace(day=1)
    missing = sorted({day for what, _, day in rows if what == "missing"})
    failed: dict[str, list[date]] = {}
    for what, name, day in sorted(rows, key=lambda row: (row[1], row[2])):
        if what == "check" and day not in missing:
            failed.setdefault(name, []).append(day)
    stale = sorted({day for what, _, day in rows if what == "stale"})
    return CloseStatus(month, missing, failed, stale)
