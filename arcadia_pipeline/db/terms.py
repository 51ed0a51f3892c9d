"""The terms in effect for a billing month: per term (a kind, a plan, a plan's kind), the row
of its table with the latest `effective_from` on or before the month.

The kind map, the metering config and the plan catalog each keep one row per term and month
it applies from (migration 0007); every reader asks for a month's rows here, so a closed
month is metered and priced on its own terms whatever was added after it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Subquery, Table, func, select

from arcadia_pipeline.db.schema import (
    billing_caps,
    kind_map,
    metering_config,
    overage_tiers,
    plan_items,
    plans,
)

# Each terms table and the columns naming one term in it.
TERM_KEYS: dict[Table, tuple[str, ...]] = {
    kind_map: ("inventory_kind",),
    metering_config: ("billing_kind",),
    plans: ("plan_code",),
    plan_items: ("plan_code", "billing_kind"),
    billing_caps: ("billing_kind",),
    overage_tiers: ("plan_code", "billing_kind"),  # a term of several rows: its tiers
}
# The terms whose one term is a set of rows (all those of its latest effective_from).
ROW_SETS = (overage_tiers,)


def in_effect(table: Table, month: date, name: str | None = None) -> Subquery:
    """The rows of a terms table in effect for the billing month of `month` (any day of it),
    with the table's columns; named `name` (default: the table's name)."""
    keys = [table.c[column] for column in TERM_KEYS[table]]
    if table in ROW_SETS:
        latest = func.max(table.c.effective_from).over(partition_by=keys).label("latest")
        rows = select(table, latest).where(table.c.effective_from <= month).subquery("rows")
        return (
            select(*(rows.c[column.name] for column in table.columns))
            .where(rows.c.effective_from == rows.c.latest)
            .subquery(name or table.name)
        )
    return (
        select(table)
        .where(table.c.effective_from <= month)
        .distinct(*keys)
        .order_by(*keys, table.c.effective_from.desc())
        .subquery(name or table.name)
    )
