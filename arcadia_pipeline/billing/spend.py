"""Spend alerts: the thresholds of `metering.spend_alerts` a deployment's quote reaches, found
as the day's quotes are written and told once per deployment, threshold and billing month
(issue 19; the telling is defs/alerts/spend_alert_sensor.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, Table, literal, select, update
from sqlalchemy.dialects.postgresql import insert

from arcadia_pipeline import utc
from arcadia_pipeline.db.schema import deployment_quotes, spend_alert_events, spend_alerts
from arcadia_pipeline.utc import month_start

# What a crossing was measured on: the day's month-to-date quote, or its projection to the
# month's end (0014's check admits both).
MONTH_TO_DATE = "month_to_date"
PROJECTED = "projected"


@dataclass(frozen=True)
class SpendCrossing:
    """One threshold reached: `total_usd` is the quote, as of `as_of_date`, that reached
    `threshold_usd` first in `month` (both USD, 2 decimals)."""

    deployment_id: str
    threshold_usd: Decimal
    month: date
    basis: str
    as_of_date: date
    total_usd: Decimal

    @property
    def incident(self) -> str:
        """Its alert's incident (alerts/notify.py): `spend:<deployment>:<threshold>:<YYYY-MM>`."""
        return f"spend:{self.deployment_id}:{self.threshold_usd}:{self.month:%Y-%m}"


def record_crossings(
    connection: Connection, day: date, quotes: Table = deployment_quotes, basis: str = MONTH_TO_DATE
) -> int:
    """Record each (deployment, threshold) whose quote as of `day` in `quotes` (the quotes, or
    their projections on the PROJECTED basis) is at or above the threshold and that has no
    event in `day`'s month yet, whatever its basis; the number recorded.

    Part of the caller's transaction (the day's quotes): a re-quoted day finds the same
    crossings, and the event's key (deployment, threshold, month) keeps the first one, so a
    threshold is recorded, and told, once per billing month whatever days are quoted again
    or in what order. A quote that falls below a threshold later in the month records
    nothing: the month's event stands."""
    q, s = quotes.c, spend_alerts.c
    reached = (
        select(
            q.deployment_id,
            s.threshold_usd,
            literal(month_start(day)),
            literal(basis),
            q.as_of_date,
            q.total_usd,
        )
        .join_from(
            quotes,
            spend_alerts,
            (s.deployment_id == q.deployment_id) & (q.total_usd >= s.threshold_usd),
        )
        .where(q.as_of_date == day)
    )
    e = spend_alert_events.c
    recorded = connection.execute(
        insert(spend_alert_events)
        .from_select(
            ["deployment_id", "threshold_usd", "month", "basis", "as_of_date", "total_usd"],
            reached,
        )
        .on_conflict_do_nothing(index_elements=[e.deployment_id, e.threshold_usd, e.month])
    )
    return recorded.rowcount


def untold_crossings(connection: Connection, limit: int) -> list[SpendCrossing]:
    """Up to `limit` recorded crossings the operators were not told of yet, oldest first."""
    e = spend_alert_events.c
    rows = connection.execute(
        select(e.deployment_id, e.threshold_usd, e.month, e.basis, e.as_of_date, e.total_usd)
        .where(e.alerted_at.is_(None))
        .order_by(e.recorded_at, e.deployment_id, e.threshold_usd, e.month)
        .limit(limit)
    ).all()
    return [SpendCrossing(*row) for row in rows]


def mark_told(connection: Connection, crossing: SpendCrossing) -> None:
    """Stamp `crossing` told (`alerted_at`, now), in the caller's transaction: the one that
    recorded its alert (alerts/notify.alert), so that the two commit together."""
    e = spend_alert_events.c
    connection.execute(
        update(spend_alert_events)
        .where(
            e.deployment_id == crossing.deployment_id,
            e.threshold_usd == crossing.threshold_usd,
            e.month == crossing.month,
        )
        .values(alerted_at=utc.now())
    )
