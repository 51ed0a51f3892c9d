"""What a daily step is: the one declaration every part of the daily flow is derived from.

A daily step is one daily-partitioned asset: its key, the tables it replaces day by day,
what each of its days reads (the same day of an earlier step, or that step's month to date)
and its checks, each a rule that finds the problems of one day. From these the Dagster layer
builds the asset's deps, its checks and the daily job; `days/locks.py` takes a day's locks;
`days/staleness.py` finds the days older than what they read; `days/verdicts.py` says whether
a month can close. `arcadia_pipeline/flow.py` declares the steps, in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from sqlalchemy import Connection, Table

from arcadia_pipeline.db.schema import day_checks, day_writes
from arcadia_pipeline.utc import iter_days, month_start


class Problems(list):
    """The problems a check found, as readable ids (at most errors.MAX_LISTED of them), and
    `total`: how many there are in all."""

    def __init__(self, listed=(), total: int | None = None):
        super().__init__(listed)
        self.total = len(self) if total is None else total

    @classmethod
    def of_rows(cls, rows, describe: Callable) -> Problems:
        """Problems from a query's rows, each carrying `total` (count(*) OVER ()) and cut to
        the first MAX_LISTED by its LIMIT: `describe(row)` of each."""
        rows = list(rows)
        return cls([describe(row) for row in rows], rows[0].total if rows else 0)

    def prefixed(self, prefix: str) -> Problems:
        """The same problems, each named after `prefix` (its day, its month)."""
        return Problems([f"{prefix}{problem}" for problem in self], self.total)

    def __add__(self, other: list) -> Problems:
        return Problems([*self, *other], self.total + getattr(other, "total", len(other)))

    __iadd__ = __add__  # `a += b` counts b too (list's own would only extend)


class FlowError(ValueError):
    """A flow or a step declared wrong: out of order, twice, or with a span not known."""


@dataclass(frozen=True)
class Read:
    """A step's day reads `step`'s same day, or its month to date (the 1st through the day)."""

    step: DailyStep
    span: Literal["day", "month_to_date"] = "day"

    def __post_init__(self) -> None:
        if self.span not in ("day", "month_to_date"):
            raise FlowError(
                f"a read of {self.step.asset} spans {self.span!r}: day or month_to_date"
            )

    def days(self, day: date) -> list[date]:
        return [day] if self.span == "day" else list(iter_days(month_start(day), day))


@dataclass(frozen=True)
class DailyCheck:
    """A blocking rule on each day a step wrote: `find(connection, day)` returns the day's
    Problems (empty: the day passes)."""

    name: str
    find: Callable[[Connection, date], Problems]
    description: str


@dataclass(frozen=True)
class DailyStep:
    """One daily asset: `asset` its key; `writes` the tables it replaces one day per
    transaction; `reads` what each of its days reads; `terms` the terms tables (kind map,
    metering config, plan catalog) its rows are computed from, a change of which for its
    day's month makes the day stale; `reads_source`: its days are read from the source, and
    stale once a reconciliation found the source different; `checks` its rules;
    `gates_close`: its days must be written, checked and current before a month closes
    (False by default: a new step gates only once it has been run over the months still to
    close)."""

    asset: str
    writes: tuple[Table, ...]
    reads: tuple[Read, ...] = ()
    terms: tuple[Table, ...] = ()
    reads_source: bool = False
    checks: tuple[DailyCheck, ...] = ()
    gates_close: bool = False
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class DailyFlow:
    """The daily steps in the order they run: each reads only steps before it."""

    steps: tuple[DailyStep, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        checks: set[str] = set()  # a verdict is kept per check name and day
        for step in self.steps:
            if step.asset in seen:
                raise FlowError(f"daily step {step.asset} is declared twice")
            late = [read.step.asset for read in step.reads if read.step.asset not in seen]
            if late:
                raise FlowError(f"daily step {step.asset} reads {', '.join(late)}, not before it")
            twice = [check.name for check in step.checks if check.name in checks]
            if twice or len({check.name for check in step.checks}) < len(step.checks):
                raise FlowError(f"daily step {step.asset} repeats a check name: {twice}")
            seen.add(step.asset)
            checks |= {check.name for check in step.checks}

    def __iter__(self) -> Iterator[DailyStep]:
        return iter(self.steps)

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(step.asset for step in self.steps)

    def step(self, asset: str) -> DailyStep:
        for step in self.steps:
            if step.asset == asset:
                return step
        raise FlowError(f"{asset} is not a daily step (the flow: {', '.join(self.assets)})")

    def from_step(self, step: DailyStep) -> tuple[DailyStep, ...]:
        """`step` and every step after it: what re-running `step` makes to run again."""
        return self.steps[self.steps.index(step) :]

    @property
    def tables(self) -> tuple[Table, ...]:
        """Every table the daily runs write: the steps' own, then their write stamps and
        check verdicts."""
        return (*(table for step in self.steps for table in step.writes), day_writes, day_checks)

    @property
    def gating(self) -> tuple[DailyStep, ...]:
        return tuple(step for step in self.steps if step.gates_close)
