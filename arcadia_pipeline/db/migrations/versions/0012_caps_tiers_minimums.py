"""Pricing terms of issue 19 as catalog data: per-resource monthly caps, graduated overage
tiers per plan and kind, and a minimum commitment per plan.

Revision ID: 0012
Revises: 0011

- `billing_caps (billing_kind, monthly_cap_qty, effective_from)`: a resource's quantity of
  the kind in one billing month counts at most the cap toward its deployment's billable
  usage. Shipped empty: no cap, every figure billed so far unchanged.
- `overage_tiers (plan_code, billing_kind, up_to_qty, unit_price_usd, effective_from)`: the
  tiers of a (plan, kind) in effect for a month are all its rows with the latest
  `effective_from` on or before it; `up_to_qty` is the tier's upper bound in overage
  quantity, NULL for the last, open tier (one per plan, kind and month). It replaces
  `overage_prices`: filled with one open tier per plan and overage price, each from that
  price's month (today's prices stand), then `overage_prices` is dropped, so no price is
  kept in two places.
- `plans.minimum_usd`: the minimum commitment, prorated by existence like the base fee; NULL
  for none (every shipped plan).

Bounds and prices must be finite and not negative (numeric accepts NaN and, since
PostgreSQL 14, infinity): a bad row is refused by its constraint, naming it. Both new tables
are terms: guarded like the others (0007, 0010: a closed month's terms never change, every
change recorded), and reference tables on a Citus cluster (0011).
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NEW_TERMS = ("billing_caps", "overage_tiers")

# One statement each: Citus propagates the ALTER of a reference table (plans) statement by
# statement, and refuses a string of several.
DDL = (
    """
CREATE TABLE metering.billing_caps (
  billing_kind    text    NOT NULL,
  monthly_cap_qty numeric NOT NULL
    CONSTRAINT billing_caps_cap_is_positive_and_finite
    CHECK (monthly_cap_qty > 0 AND monthly_cap_qty < 'Infinity'),
  effective_from  date    NOT NULL
    CONSTRAINT billing_caps_effective_from_is_a_month CHECK (extract(day FROM effective_from) = 1),
  PRIMARY KEY (billing_kind, effective_from)
)""",
    """
CREATE TABLE metering.overage_tiers (
  plan_code      text    NOT NULL,
  billing_kind   text    NOT NULL,
  up_to_qty      numeric NULL
    CONSTRAINT overage_tiers_bound_is_positive_and_finite
    CHECK (up_to_qty > 0 AND up_to_qty < 'Infinity'),
  unit_price_usd numeric NOT NULL
    CONSTRAINT overage_tiers_price_is_not_negative_and_finite
    CHECK (unit_price_usd >= 0 AND unit_price_usd < 'Infinity'),
  effective_from date    NOT NULL
    CONSTRAINT overage_tiers_effective_from_is_a_month CHECK (extract(day FROM effective_from) = 1),
  CONSTRAINT overage_tiers_one_tier_per_bound
    UNIQUE NULLS NOT DISTINCT (plan_code, billing_kind, effective_from, up_to_qty)
)""",
    """
ALTER TABLE metering.plans ADD COLUMN minimum_usd numeric(14, 2) NULL
  CONSTRAINT plans_minimum_is_not_negative CHECK (minimum_usd >= 0)""",
    """
INSERT INTO metering.overage_tiers (plan_code, billing_kind, up_to_qty, unit_price_usd,
                                    effective_from)
SELECT DISTINCT p.plan_code, o.billing_kind, NULL::numeric, o.unit_price_usd, o.effective_from
  FROM metering.overage_prices o CROSS JOIN metering.plans p""",
    "DROP TABLE metering.overage_prices",
)

# overage_prices as 0011 left it, for the downgrade.
OVERAGE_PRICES = """
CREATE TABLE metering.overage_prices (
  billing_kind   text    NOT NULL,
  unit_price_usd numeric NOT NULL CHECK (unit_price_usd >= 0),
  effective_from date    NOT NULL,
  PRIMARY KEY (billing_kind, effective_from)
)"""


def on_citus() -> bool:
    bind = op.get_bind()
    return bool(
        bind.exec_driver_sql(
            "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
        ).scalar_one()
    ) and bool(
        bind.exec_driver_sql("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0").scalar_one()
    )


def refuse_a_closed_price_the_catalog_lost() -> None:
    """A closed line keeps its month's catalog price from here on (its tiers are looked up,
    not copied): refuse, naming it, a closed line priced otherwise than overage_prices says
    for its month (a price edited in place before 0007's guard)."""
    bind = op.get_bind()
    prices = bind.exec_driver_sql(
        "SELECT billing_kind, effective_from, unit_price_usd FROM metering.overage_prices"
    ).all()
    # The distinct (month, kind, price) of the closed lines: a few per month, not every line.
    closed = bind.exec_driver_sql(
        "SELECT DISTINCT l.month, l.billing_kind, l.unit_price_usd"
        " FROM metering.monthly_statement_lines l JOIN metering.monthly_statements s"
        " ON s.month = l.month AND s.deployment_id = l.deployment_id"
        " WHERE s.status = 'closed'"
    ).all()
    for month, kind, price in closed:
        in_effect = max(
            ((since, p) for k, since, p in prices if k == kind and since <= month),
            default=(None, None),
        )[1]
        if in_effect != price:
            raise RuntimeError(
                f"0012: the closed {month:%Y-%m} billed {kind} at {price} USD, but "
                f"metering.overage_prices has {in_effect} for that month, and from 0012 a "
                "closed line is priced on its month's catalog: restore the price it closed "
                "on in metering.overage_prices first (the terms guard refuses it: disable "
                "trigger overage_prices_closed_months_never_change for that fix)"
            )


def upgrade() -> None:
    refuse_a_closed_price_the_catalog_lost()
    # The tiers are filled before their guard exists: carrying today's prices over changes
    # no month's terms, closed or not.
    for statement in DDL:
        op.execute(statement)
    citus = on_citus()
    if citus:
        op.execute("SET LOCAL citus.enable_unsafe_triggers = on")
        for table in NEW_TERMS:
            op.execute(f"SELECT create_reference_table('metering.{table}')")
            op.execute(f"SELECT truncate_local_data_after_distributing_table('metering.{table}')")
    for table in NEW_TERMS:
        op.execute(
            f"""
            CREATE TRIGGER {table}_closed_months_never_change
              BEFORE INSERT OR UPDATE OR DELETE ON metering.{table}
              FOR EACH ROW EXECUTE FUNCTION metering.guard_terms('{table}')
            """
        )


def downgrade() -> None:
    # Only what 0012 carried over may go back: a cap, a bounded tier, a kind priced apart (or
    # for only some plans) in a month, or a minimum would be terms lost without a trace.
    op.execute(
        """
        DO $$
        BEGIN
          IF EXISTS (SELECT 1 FROM metering.billing_caps)
             OR EXISTS (SELECT 1 FROM metering.plans WHERE minimum_usd IS NOT NULL)
             OR EXISTS (SELECT 1 FROM metering.overage_tiers WHERE up_to_qty IS NOT NULL)
             OR EXISTS (
               SELECT FROM metering.overage_tiers
                GROUP BY billing_kind, effective_from
               HAVING count(DISTINCT unit_price_usd) > 1
                   OR count(DISTINCT plan_code)
                      < (SELECT count(DISTINCT plan_code) FROM metering.plans))
          THEN
            RAISE EXCEPTION 'downgrade below 0012 would lose caps, tiers or minimums: '
              'metering.billing_caps, overage_tiers or plans.minimum_usd hold terms of their own'
              USING ERRCODE = 'object_in_use';
          END IF;
        END $$
        """
    )
    op.execute(OVERAGE_PRICES)
    op.execute(
        "INSERT INTO metering.overage_prices (billing_kind, unit_price_usd, effective_from)"
        " SELECT DISTINCT billing_kind, unit_price_usd, effective_from FROM metering.overage_tiers"
    )
    if on_citus():
        op.execute("SET LOCAL citus.enable_unsafe_triggers = on")
        op.execute("SELECT create_reference_table('metering.overage_prices')")
        op.execute("SELECT truncate_local_data_after_distributing_table('metering.overage_prices')")
    op.execute(
        "CREATE TRIGGER overage_prices_closed_months_never_change"
        " BEFORE INSERT OR UPDATE OR DELETE ON metering.overage_prices"
        " FOR EACH ROW EXECUTE FUNCTION metering.guard_terms('overage_prices')"
    )
    op.execute("DROP TABLE metering.overage_tiers, metering.billing_caps")
    op.execute("ALTER TABLE metering.plans DROP COLUMN minimum_usd")
