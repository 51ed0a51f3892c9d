"""Evaluate `graduated_usd_sql` on a real PostgreSQL for literal lines and tier lists: the
SQL side of every agreement test of the pricing rule."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Numeric, Text, cast, column, select, values

from arcadia_pipeline.pricing.tiers import Tier, graduated_usd_sql


def sql_graduated(
    engine, cases: Sequence[tuple[Decimal, Sequence[Tier]]]
) -> list[tuple[Decimal, Decimal]]:
    """(unit_price_usd, amount_usd) of every (overage_qty, tiers), each its own plan, in one
    SELECT."""
    lines = values(
        column("n", Text), column("plan_code", Text), column("billing_kind", Text),
        column("overage_qty", Numeric), name="lines",
    ).data([(str(n), f"p{n}", "droplet_hours", o) for n, (o, _) in enumerate(cases)])  # fmt: skip
    rows = values(
        column("plan_code", Text), column("billing_kind", Text), column("up_to_qty", Numeric),
        column("unit_price_usd", Numeric), name="rows",
    ).data([
        (f"p{n}", "droplet_hours", t.up_to_qty, t.unit_price_usd)
        for n, (_, tier_list) in enumerate(cases) for t in tier_list
    ])  # fmt: skip
    # Typed as metering.overage_tiers' columns are (a VALUES column of NULLs reads as text).
    r = rows.c
    tiers = select(
        r.plan_code, r.billing_kind, cast(r.up_to_qty, Numeric).label("up_to_qty"),
        cast(r.unit_price_usd, Numeric).label("unit_price_usd"),
    ).subquery("tiers")  # fmt: skip
    query = graduated_usd_sql(lines, tiers, "n")
    with engine.connect() as connection:
        priced = {n: (price, amount) for n, price, amount in connection.execute(query)}
    return [priced[str(n)] for n in range(len(cases))]
