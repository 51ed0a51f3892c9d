"""Stale days: a step's day some day of which it read was written after it read it (a
correction re-metered the 3rd after the month-to-date figures of the 20th were computed), or
written before a change of the terms in effect for its month (a price, a kind map row or a
plan of the open month changed after its days were metered: metering.terms_changes, each
step judged by the terms tables it declares), or, for the inventory, written before a
reconciliation found the day's source different (metering.source_findings).

A stale day is not wrong, only older than its input: the catch-up sensor refreshes it from
its stalest step on, the checks skip it, and a month with a stale day does not close.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, and_, func, literal, or_, select, union_all

from arcadia_pipeline.days.steps import DailyFlow, DailyStep
from arcadia_pipeline.db.schema import day_writes, source_findings, terms_changes


def _written_before(step: DailyStep, newer, stamp, matches):
    """(asset, day, newest stamp) of the step's days written before a row of `newer` that
    `matches(this)` (this: the day's write stamp): one select per kind of input."""
    this = day_writes.alias("this")
    return (
        select(
            literal(step.asset).label("asset"),
            this.c.day,
            func.max(stamp).label("upstream_written_at"),
        )
        .join_from(this, newer, and_(matches(this.c), stamp > this.c.written_at))
        .where(this.c.asset == step.asset)
        .group_by(this.c.day)
    )


def stale_rows(step: DailyStep):
    """(asset, day, newest stamp) of the step's days some read day, a change of the terms it
    reads for their month, or (a step reading the source) a reconciliation finding is newer
    than (a day may come twice)."""
    t = terms_changes.c
    read = [table.name for table in step.terms]
    parts = [
        _written_before(
            step, terms_changes, t.changed_at,
            lambda this: and_(t.effective_from <= this.day, t.terms.in_(read)),
        )
    ]  # fmt: skip
    if step.reads:
        upstream = day_writes.alias("upstream")

        def read_by(this):
            spans = []
            for reads in step.reads:
                if reads.span == "day":
                    same = upstream.c.day == this.day
                else:
                    same = upstream.c.day.between(func.date_trunc("month", this.day), this.day)
                spans.append(and_(upstream.c.asset == reads.step.asset, same))
            return or_(*spans)

        parts.append(_written_before(step, upstream, upstream.c.written_at, read_by))
    if step.reads_source:
        f = source_findings.c
        parts.append(
            _written_before(step, source_findings, f.found_at, lambda this: f.day == this.day)
        )
    return parts[0] if len(parts) == 1 else union_all(*parts)


def stale_days(
    connection: Connection, flow: DailyFlow, first: date | None = None
) -> dict[str, dict[date, datetime]]:
    """Per step of the flow, {day: newest stamp of what it read} for the days older than a
    day they read (from `first` on)."""
    stale: dict[str, dict[date, datetime]] = {step.asset: {} for step in flow}
    query = union_all(*(stale_rows(step) for step in flow)).subquery()
    if first is not None:
        query = select(query).where(query.c.day >= first).subquery()
    for asset, day, written_at in connection.execute(select(query)):
        stale[asset][day] = max(written_at, stale[asset].get(day, written_at))
    return stale


def is_stale(connection: Connection, step: DailyStep, day: date) -> bool:
    """Whether a day the step's day read was written after it read it, or its month's terms
    changed after it was written."""
    query = stale_rows(step).subquery()
    return connection.execute(select(query.c.day).where(query.c.day == day)).first() is not None
