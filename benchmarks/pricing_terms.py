"""(l): the catalog the issue-19 pricing target is measured on: three graduated tiers per
plan and billing kind, a minimum commitment per plan and a monthly cap of 672 droplet hours
per resource, in effect from the month of the measured day, and taken out again afterwards
(the rows it added, nothing else)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import Engine, text

# Each (plan, kind) today has one open tier at price p: 1.2 p up to 100 units of overage,
# p up to 1,000, 0.8 p above; each plan a minimum of 1.5 × its base fee.
TIERS = """
INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty, unit_price_usd,
                                    effective_from)
SELECT t.plan_code, t.billing_kind, b.up_to, t.unit_price_usd * b.factor, :month
  FROM metering.overage_tiers t,
       (VALUES (100::numeric, 1.2), (1000, 1.0), (NULL, 0.8)) b (up_to, factor)
 WHERE t.up_to_qty IS NULL AND t.effective_from < :month
"""
# DigitalOcean's cap: a droplet bills at most 672 hours a month.
CAPS = """
INSERT INTO metering.billing_caps (billing_kind, monthly_cap_qty, effective_from)
VALUES ('droplet_hours', 672, :month)
"""
MINIMUMS = """
INSERT INTO metering.plans (plan_code, base_usd, minimum_usd, effective_from)
SELECT plan_code, base_usd, base_usd * 1.5, :month FROM metering.plans
 WHERE effective_from < :month
"""


@contextmanager
def tiered_catalog(engine: Engine, month: date) -> Iterator[None]:
    """The shipped catalog plus (l)'s tiers, minimums and cap from `month` (a month's first
    day after every shipped row's, with no row of its own yet), for the duration."""
    with engine.begin() as connection:
        for statement in (TIERS, MINIMUMS, CAPS):
            connection.execute(text(statement), {"month": month})
    try:
        yield
    finally:
        with engine.begin() as connection:
            for table in ("overage_tiers", "plans", "billing_caps"):
                connection.execute(
                    text(f"DELETE FROM metering.{table} WHERE effective_from = :month"),
                    {"month": month},
                )
