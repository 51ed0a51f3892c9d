"""Where a run's seconds go, statement by statement.

SQLAlchemy's cursor events time every statement the measuring process sends, client side
(round trip included); each is put in the Dagster step whose span holds its start. What the
events do not see — Python, and the COPYs the staging sends through the raw DBAPI cursor — is
the step's remainder. Used by metering_scale.py for (a)'s day at N: which statement, and so
which guarantee, costs what.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict

from sqlalchemy import event
from sqlalchemy.engine import Engine

# The statements kept per run, slowest first: enough to name every one above 1% of a day.
KEPT = 25
HEAD = 110  # characters of a statement's text shown, whitespace collapsed


class StatementTimer:
    """Every statement of every engine in this process: (start, seconds, text)."""

    def __init__(self) -> None:
        self.timings: list[tuple[float, float, str]] = []

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    @staticmethod
    def _before(connection, cursor, statement, parameters, context, executemany) -> None:
        connection.info.setdefault("statement_started", []).append(time.time())

    def _after(self, connection, cursor, statement, parameters, context, executemany) -> None:
        started = connection.info["statement_started"].pop()
        self.timings.append((started, time.time() - started, statement))

    def _in_steps(self, spans: dict[str, tuple[float, float]]):
        """(step, seconds, statement) of every timing; `spans`: step -> (start, end), epoch
        seconds (Dagster's event timestamps). A statement outside every step is in step "-"."""
        for started, seconds, statement in self.timings:
            step = next((k for k, (a, b) in spans.items() if a <= started <= b), "-")
            yield step, seconds, statement

    def by_statement(self, spans: dict[str, tuple[float, float]]) -> list[dict]:
        """The KEPT slowest statements, summed over their calls, as
        [{"step", "calls", "seconds", "sql"}]."""
        summed: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        for step, seconds, statement in self._in_steps(spans):
            entry = summed[(step, statement)]
            entry[0] += 1
            entry[1] += seconds
        slowest = sorted(summed.items(), key=lambda item: -item[1][1])[:KEPT]
        return [
            {"step": step, "calls": calls, "seconds": seconds, "sql": head(statement)}
            for (step, statement), (calls, seconds) in slowest
        ]

    def per_step(self, spans: dict[str, tuple[float, float]]) -> dict[str, float]:
        """step -> seconds of its statements (the rest of the step is Python and COPY)."""
        totals: dict[str, float] = defaultdict(float)
        for step, seconds, _ in self._in_steps(spans):
            totals[step] += seconds
        return dict(totals)


def head(statement: str) -> str:
    """The statement's first HEAD characters, whitespace collapsed, comments dropped."""
    statement = re.sub(r"--[^\n]*", " ", statement)
    return " ".join(statement.split())[:HEAD]


def report(
    title: str,
    statements: list[dict],
    steps: dict[str, float],
    day_seconds: float,
    in_statements: dict[str, float],
) -> list[str]:
    """The slowest statements of one run and, per step, how much of it they are."""
    width = max([len(s["step"]) for s in statements] + [10]) + 2
    lines = [
        "",
        f"{title}: the slowest statements (client-side seconds, summed over calls)",
        f"{'step':<{width}}{'calls':>6}{'seconds':>9}{'share':>7}  statement",
        "-" * (width + 24 + HEAD),
    ]
    for s in statements:
        lines.append(
            f"{s['step']:<{width}}{s['calls']:>6}{s['seconds']:>9.2f}"
            f"{s['seconds'] / day_seconds:>7.0%}  {s['sql']}"
        )
    lines += [
        "",
        f"{title}: per step, its statements against the rest (Python, COPY)",
        f"{'step':<{width}}{'step s':>9}{'in SQL':>9}{'rest':>9}",
        "-" * (width + 27),
    ]
    for step, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        sql = in_statements.get(step, 0.0)
        lines.append(f"{step:<{width}}{seconds:>9.2f}{sql:>9.2f}{seconds - sql:>9.2f}")
    return lines
