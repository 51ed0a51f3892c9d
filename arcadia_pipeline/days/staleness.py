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


def _older_than_terms(step: DailyStep):
    """(asset, day, newest change) of the step's days written before a change of the terms
    it reads for their month (one in effect from that month or an earlier one)."""
    this, t = day_writes.alias("this"), terms_changes.c
    read = [table.name for table in step.terms]
    return (
        select(
            literal(step.asset).label("asset"),
            this.c.day,
            func.max(t.changed_at).label("upstream_written_at"),
        )
        .join_from(
            this,
            terms_changes,
            and_(t.effective_from <= this.c.day, t.changed_at > this.c.written_at),
        )
        .where(this.c.asset == step.asset, t.terms.in_(read))
        .group_by(this.c.day)
    )


def _older_than_findings(step: DailyStep):
    """(asset, day, newest finding) of the step's days written before a reconciliation found
    their source different (only for a step that reads the source)."""
    this, f = day_writes.alias("this"), source_findings.c
    return (
        select(
            literal(step.asset).label("asset"),
            this.c.day,
            func.max(f.found_at).label("upstream_written_at"),
        )
        .join_from(this, source_findings, and_(f.day == this.c.day, f.found_at > this.c.written_at))
        .where(this.c.asset == step.asset, literal(step.reads_source))
        .group_by(this.c.day)
    )


def stale_rows(step: DailyStep):
    """(asset, day, newest stamp) of the step's days some read day, or a change of their
    month's terms, is newer than (a day may come twice)."""
    if not step.reads:
        return union_all(_older_than_terms(step), _older_than_findings(step))
    this, upstream = day_writes.alias("this"), day_writes.alias("upstream")
    spans = []
    for reads in step.reads:
        if reads.span == "day":
            same = upstream.c.day == this.c.day
        else:
            same = upstream.c.day.between(func.date_trunc("month", this.c.day), this.c.day)
        spans.append(and_(upstream.c.asset == reads.step.asset, same))
    read_newer = (
        select(
            literal(step.asset).label("asset"),
            this.c.day,
            func.max(upstream.c.written_at).label("upstream_written_at"),
        )
        .join_from(this, upstream, and_(or_(*spans), upstream.c.written_at > this.c.written_at))
        .where(this.c.asset == step.asset)
        .group_by(this.c.day)
    )
    return union_all(read_newer, _older_than_terms(step), _older_than_findings(step))


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
