"""Each day's check verdicts and failed attempts, kept beside its write stamps, and the one
question they answer: can a billing month close?

A check of a step's day runs in a transaction holding the day and what it reads (shared),
and records its verdict there, stamped after those locks: a verdict newer than the day's
write stamp speaks for the rows the day holds now. A run of a step that fails stamps the days
of its window it did not write: a day whose last attempt failed after its last write is not
final, whatever rows it still holds. A month can close when every day of it is written by
every gating step with no failed attempt since, every gating check of each has passed since
that write, and no day is stale (docs/domain.md; statements/closing.py acts on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    Connection,
    Date,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import INTERVAL, insert

from arcadia_pipeline.days.locks import lock_for_reading
from arcadia_pipeline.days.staleness import is_stale, stale_rows
from arcadia_pipeline.days.steps import DailyCheck, DailyFlow, DailyStep, Problems
from arcadia_pipeline.db.schema import day_checks, day_failures, day_writes
from arcadia_pipeline.utc import days_text

# A check's verdict of a day, replacing the one before, stamped clock_timestamp() after the
# locks (the stamp comparable to the day's writes). Text: SQLAlchemy 2.0 never caches a
# PostgreSQL INSERT … ON CONFLICT, and compiled each time it cost about 4 ms per day and check.
RECORD_VERDICT = text(
    f"""
    INSERT INTO {day_checks.fullname}
        (check_name, day, asset, passed, problems, checked_at, run_id)
    VALUES (:check_name, :day, :asset, :passed, :problems, clock_timestamp(), :run_id)
    ON CONFLICT (check_name, day) DO UPDATE SET asset = excluded.asset,
        passed = excluded.passed, problems = excluded.problems,
        checked_at = excluded.checked_at, run_id = excluded.run_id
    """
)

# A failure's message as kept in day_failures (the run's own log has it whole).
MESSAGE_CHARS = 2000


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
    verdict = {"asset": step.asset, "passed": problems.total == 0, "problems": problems.total}
    connection.execute(
        RECORD_VERDICT, {"check_name": check.name, "day": day, "run_id": run_id, **verdict}
    )
    return problems


def record_failure(
    connection: Connection, step: DailyStep, days: Sequence[date], run_id: str, message: str
) -> list[date]:
    """Stamp the days of a failed run of `step` that the run did not write itself (in a
    transaction of its own: the failing one was rolled back); the days stamped."""
    w = day_writes.c
    written = connection.execute(
        select(w.day).where(w.asset == step.asset, w.run_id == run_id, w.day.in_(list(days)))
    ).scalars()
    failed = sorted(set(days) - set(written))
    if failed:
        stamp = {
            "failed_at": func.clock_timestamp(),
            "run_id": run_id,
            "message": message[:MESSAGE_CHARS],
        }
        connection.execute(
            insert(day_failures)
            .values(asset=step.asset, day=bindparam("failed_day"), **stamp)
            .on_conflict_do_update(index_elements=["asset", "day"], set_=stamp),
            [{"failed_day": day} for day in failed],
        )
    return failed


@dataclass(frozen=True)
class CloseStatus:
    """Why a month's days are not final yet; none of it: they are, and the month can close."""

    month: date
    missing_days: list[date]  # some gating step has not written them, or failed on them since
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
    `day_writes`, `day_failures` and `day_checks`: every day written by each gating step of
    the flow with no failed attempt since, each of its checks passed after that write, and
    no day stale."""
    days = select(
        cast(func.generate_series(first, last, cast(literal("1 day"), INTERVAL)), Date).label("day")
    ).subquery("days")
    w, v, f = day_writes.c, day_checks.c, day_failures.c
    parts = []
    for step in flow.gating:
        written = and_(w.asset == step.asset, w.day == days.c.day)
        failed_since = and_(
            f.asset == step.asset,
            f.day == days.c.day,
            ~exists().where(written, w.written_at > f.failed_at),
        )
        parts.append(
            select(
                literal("missing").label("what"), literal(step.asset).label("name"), days.c.day
            ).where(or_(~exists().where(written), exists().where(failed_since)))
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
