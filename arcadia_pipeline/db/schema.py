"""SQLAlchemy Core descriptions of the `metering` tables, for building queries.

The tables themselves are created by the Alembic migrations in `db/migrations`; a test
compares these descriptions with what the migrations build (Alembic's own metadata
comparison: columns, types, keys, foreign keys, indexes, defaults).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from arcadia_pipeline.db.types import MONEY, QTY, TSTZ

SCHEMA = "metering"
metadata = MetaData(schema=SCHEMA)

# The terms a bill depends on (the kind map, the metering config, the plan catalog): one row
# per term and billing month it applies from (`effective_from`, a month's first day); a month
# uses, per term, the row with the latest effective_from on or before it (catalog/terms.py).
# A trigger refuses a change reaching a closed month and records the others (terms_changes).
kind_map = Table(
    "kind_map",
    metadata,
    Column("inventory_kind", Text, primary_key=True),
    Column("billing_kind", Text),
    Column("accrual", Text),
    Column("effective_from", Date, primary_key=True),
)

metering_config = Table(
    "metering_config",
    metadata,
    Column("billing_kind", Text, primary_key=True),
    Column("granularity", Text, nullable=False, server_default=text("'day'::text")),
    Column("retention_days", Integer, nullable=False, server_default=text("400")),
    Column("effective_from", Date, primary_key=True),
)

plans = Table(
    "plans",
    metadata,
    Column("plan_code", Text, primary_key=True),
    Column("base_usd", MONEY, nullable=False),
    Column("effective_from", Date, primary_key=True),
    Column("minimum_usd", MONEY),  # the minimum commitment, prorated; NULL: none (0012)
)

plan_items = Table(
    "plan_items",
    metadata,
    Column("plan_code", Text, primary_key=True),
    Column("billing_kind", Text, primary_key=True),
    Column("included_qty", Numeric, nullable=False),
    Column("effective_from", Date, primary_key=True),
)

# Graduated overage tiers of a (plan, kind): its rows with the latest effective_from on or
# before a month; up_to_qty the tier's upper bound in overage quantity, NULL for the last,
# open one (0012, replacing overage_prices; pricing/tiers.py).
overage_tiers = Table(
    "overage_tiers",
    metadata,
    Column("plan_code", Text, nullable=False),
    Column("billing_kind", Text, nullable=False),
    Column("up_to_qty", Numeric),
    Column("unit_price_usd", Numeric, nullable=False),
    Column("effective_from", Date, nullable=False),
    UniqueConstraint(
        "plan_code", "billing_kind", "effective_from", "up_to_qty",
        name="overage_tiers_one_tier_per_bound", postgresql_nulls_not_distinct=True,
    ),
)  # fmt: skip

# A resource's quantity of a kind in one billing month counts at most the cap (0012).
billing_caps = Table(
    "billing_caps",
    metadata,
    Column("billing_kind", Text, primary_key=True),
    Column("monthly_cap_qty", Numeric, nullable=False),
    Column("effective_from", Date, primary_key=True),
)

# Each accepted change of the terms: the days metered before it in the months it reaches
# are stale (days/staleness.py).
terms_changes = Table(
    "terms_changes",
    metadata,
    Column("change_id", BigInteger, primary_key=True),
    Column("terms", Text, nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("changed_at", TSTZ, nullable=False, server_default=text("clock_timestamp()")),
)

# What retention removed, per billing month and kind (retention/expiry.py): such a month is
# never priced again from what is left, and a correction into it is refused.
retention_removals = Table(
    "retention_removals",
    metadata,
    Column("month", Date, primary_key=True),
    Column("billing_kind", Text, primary_key=True),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("removed_at", TSTZ, primary_key=True),
    Column("run_id", Text),
)

inventory_snapshots = Table(
    "inventory_snapshots",
    metadata,
    Column("snapshot_id", BigInteger, primary_key=True),
    Column("day", Date, nullable=False, unique=True),
    Column("run_id", Text),
    Column("taken_at", TSTZ, nullable=False, server_default=text("now()")),
    Column("source_recorded_through", TSTZ),
    Column("versions", Integer, nullable=False),
    Column("resources", Integer, nullable=False),
    Column("unattributed_resources", Integer, nullable=False),
)

# The deployment_id under which a snapshot holds a version attributed to no deployment (the
# source's NULL): a key, not NULL, as Citus distributes by deployment_id and refuses NULL in it.
# Validation refuses a blank deployment_id in the source, so no deployment is ''.
UNATTRIBUTED = ""

# Versions that existed during `day`, clipped to it ([starts_at, ends_at)), unattributed ones
# under UNATTRIBUTED; partitioned by month.
resource_inventory = Table(
    "resource_inventory",
    metadata,
    Column("day", Date, nullable=False),
    Column("snapshot_id", BigInteger, nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("deployment_id", Text, nullable=False),
    Column("inventory_kind", Text, nullable=False),
    Column("billing_kind", Text),
    Column("accrual", Text),
    Column("size_gb", Numeric),
    Column("status", Text, nullable=False),
    Column("valid_from", TSTZ, nullable=False),
    Column("valid_to", TSTZ),
    Column("starts_at", TSTZ, nullable=False),
    Column("ends_at", TSTZ, nullable=False),
    Column("recorded_at", TSTZ, nullable=False),
    Index("resource_inventory_day_idx", "day"),
    Index("resource_inventory_resource_idx", "resource_id", "day"),
)

# Deployment versions that existed during `day`, clipped to it ([starts_at, ends_at)): the
# terms of a billing month are read from its days' rows (pricing/proration.py).
inventory_deployments = Table(
    "inventory_deployments",
    metadata,
    Column("day", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("starts_at", TSTZ, primary_key=True),
    Column("ends_at", TSTZ, nullable=False),
    Column("name", Text, nullable=False),
    Column("plan_code", Text, nullable=False),
    Column("valid_from", TSTZ, nullable=False),
    Column("valid_to", TSTZ),
    Column("recorded_at", TSTZ),
    # One deployment's days (the CLI's live quote, whether a deployment is known).
    Index("inventory_deployments_deployment_idx", "deployment_id", "day"),
)

# Per metered day and deployment (UNATTRIBUTED for the unattributed resources): the count and an
# order-independent hash of the snapshot's clipped rows (inventory/snapshot.py), what a
# reconciliation compares the source with.
day_fingerprints = Table(
    "day_fingerprints",
    metadata,
    Column("day", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("rows", BigInteger, nullable=False),
    Column("fingerprint", Numeric, nullable=False),
)

# When a reconciliation found a day's source, for a deployment, different from its snapshot:
# the day's inventory written before it is stale (days/staleness.py).
source_findings = Table(
    "source_findings",
    metadata,
    Column("day", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("found_at", TSTZ, primary_key=True),
    Column("run_id", Text),
)

# Partitioned by month on period_start.
usage_records = Table(
    "usage_records",
    metadata,
    Column("deployment_id", Text, nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("resource_kind", Text, nullable=False),
    Column("period_start", TSTZ, nullable=False),
    Column("granularity", Text, nullable=False),
    Column("qty", QTY, nullable=False),
    Column("sub_attribution", JSONB),
    Column("run_id", Text),
    Column("inventory_snapshot_id", BigInteger),
    Column("metered_at", TSTZ, nullable=False, server_default=text("now()")),
    UniqueConstraint(
        "deployment_id",
        "resource_id",
        "period_start",
        "granularity",
        name="usage_records_one_per_period",
    ),
    Index("usage_records_period_start_idx", "period_start"),
)

usage_period_aggregates = Table(
    "usage_period_aggregates",
    metadata,
    Column("as_of_date", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("billing_kind", Text, primary_key=True),
    Column("period_start", Date, nullable=False),
    Column("qty", Numeric, nullable=False),
    # qty with each resource's month of a capped kind counted at most its cap (0015)
    Column("billable_qty", Numeric, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("run_id", Text),
    Column("computed_at", TSTZ, nullable=False, server_default=text("now()")),
)

# Each resource's month to date (from the month's first day to as_of_date) of the kinds
# capped in the day's month, written with the day's aggregates (0017): a day is the day
# before's rows plus its own records, whatever day of the month it is.
capped_resource_usage = Table(
    "capped_resource_usage",
    metadata,
    Column("as_of_date", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("billing_kind", Text, primary_key=True),
    Column("resource_id", Text, primary_key=True),
    Column("qty", Numeric, nullable=False),
)


def _quote_tables(name: str, lines_name: str) -> tuple[Table, Table]:
    """Quotes and their lines, one row per (as_of_date, deployment) and per billing kind: the
    month-to-date quotes and their projections to the month's end (0016) have one shape."""
    quotes = Table(
        name,
        metadata,
        Column("as_of_date", Date, primary_key=True),
        Column("deployment_id", Text, primary_key=True),
        Column("plan_code", Text, nullable=False),
        Column("period_start", Date, nullable=False),
        Column("base_usd", MONEY, nullable=False),
        Column("overage_usd", MONEY, nullable=False),
        Column("total_usd", MONEY, nullable=False),
        Column("run_id", Text),
        Column("computed_at", TSTZ, nullable=False, server_default=text("now()")),
        # The prorated minimum commitment (NULL: none) and what lifts the total to it (0013).
        Column("minimum_usd", MONEY),
        Column("minimum_true_up_usd", MONEY, nullable=False, server_default=text("0")),
    )
    lines = Table(
        lines_name,
        metadata,
        Column("as_of_date", Date, primary_key=True),
        Column("deployment_id", Text, primary_key=True),
        Column("billing_kind", Text, primary_key=True),
        Column("usage", Numeric, nullable=False),
        Column("billable_qty", Numeric, nullable=False),  # usage, capped (0015)
        Column("included", Numeric, nullable=False),
        Column("overage_qty", Numeric, nullable=False),
        Column("unit_price_usd", Numeric, nullable=False),
        Column("overage_usd", MONEY, nullable=False),
        ForeignKeyConstraint(
            ["as_of_date", "deployment_id"],
            [f"{SCHEMA}.{name}.as_of_date", f"{SCHEMA}.{name}.deployment_id"],
            ondelete="CASCADE",
        ),
    )
    return quotes, lines


deployment_quotes, deployment_quote_lines = _quote_tables(
    "deployment_quotes", "deployment_quote_lines"
)
# Each day's quotes projected to the month's end (billing/projection.py).
projected_quotes, projected_quote_lines = _quote_tables("projected_quotes", "projected_quote_lines")

# When each daily asset last wrote each day (days/locks.py): what tells a
# month-to-date figure computed before a correction of an earlier day.
day_writes = Table(
    "day_writes",
    metadata,
    Column("asset", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("written_at", TSTZ, nullable=False),
    Column("run_id", Text),
)

# A day's latest failed attempt per asset (days/verdicts.py): a day whose last run failed
# after its last write is not final, whatever rows it still holds.
day_failures = Table(
    "day_failures",
    metadata,
    Column("asset", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("failed_at", TSTZ, nullable=False),
    Column("run_id", Text),
    Column("message", Text, nullable=False),
)

# Each check's verdict on each day (days/verdicts.py), stamped after the day's locks: a verdict
# newer than the day's write stamp speaks for the rows the day holds now.
day_checks = Table(
    "day_checks",
    metadata,
    Column("check_name", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("asset", Text, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("problems", Integer, nullable=False),
    Column("checked_at", TSTZ, nullable=False),
    Column("run_id", Text),
)

# Billing months a statement run has priced: when the month closed (NULL while its statements
# are drafts) and when the run that last priced it read its days (defs/statements/month_close.py
# re-prices a month whose days were written since).
statement_months = Table(
    "statement_months",
    metadata,
    Column("month", Date, primary_key=True),
    Column("closed_at", TSTZ),
    Column("repriced_at", TSTZ, nullable=False),
    Column("run_id", Text),
)

# One per (billing month, deployment); a closed one and its lines never change (triggers).
monthly_statements = Table(
    "monthly_statements",
    metadata,
    Column("month", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("plan_code", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("closed_at", TSTZ),
    Column("base_usd", MONEY, nullable=False),
    # [{plan_code, valid_from, valid_to, base_usd}]: the plans of the month in time order,
    # each with its prorated base fee (NULL: priced before plan periods were recorded).
    Column("plan_periods", JSONB),
    Column("total_usd", MONEY, nullable=False),
    Column("run_id", Text),
    Column("computed_at", TSTZ, nullable=False, server_default=text("now()")),
    Column("minimum_usd", MONEY),  # as on deployment_quotes (0013)
    Column("minimum_true_up_usd", MONEY, nullable=False, server_default=text("0")),
)

monthly_statement_lines = Table(
    "monthly_statement_lines",
    metadata,
    Column("month", Date, primary_key=True),
    Column("deployment_id", Text, primary_key=True),
    Column("billing_kind", Text, primary_key=True),
    Column("qty", Numeric, nullable=False),
    Column("billable_qty", Numeric, nullable=False),  # qty, capped (0015)
    Column("included_qty", Numeric, nullable=False),
    Column("overage_qty", Numeric, nullable=False),
    Column("unit_price_usd", Numeric, nullable=False),
    Column("amount_usd", MONEY, nullable=False),
    ForeignKeyConstraint(
        ["month", "deployment_id"],
        ["metering.monthly_statements.month", "metering.monthly_statements.deployment_id"],
        ondelete="CASCADE",
    ),
)

# A closed month's later changes, one row per changed line (billing_kind 'base': the base
# fee); never updated or deleted (trigger). Keyed by (deployment_id, adjustment_id), as Citus
# wants the distribution column in every unique key; adjustment_id's sequence numbers each once.
statement_adjustments = Table(
    "statement_adjustments",
    metadata,
    Column("adjustment_id", BigInteger, nullable=False, autoincrement=True),
    Column("month", Date, nullable=False),
    Column("deployment_id", Text, nullable=False),
    Column("billing_kind", Text, nullable=False),
    Column("qty_delta", Numeric, nullable=False),
    Column("amount_usd", MONEY, nullable=False),
    Column("created_at", TSTZ, nullable=False, server_default=text("now()")),
    Column("run_id", Text),
    PrimaryKeyConstraint("deployment_id", "adjustment_id"),
    Index("statement_adjustments_month_idx", "month", "deployment_id"),
)

# What monthly_usage_statements writes (lines first: they reference the statements). What the
# daily steps write is their declaration's (flow.DAILY_FLOW.tables).
STATEMENT_TABLES = (
    statement_adjustments,
    monthly_statement_lines,
    monthly_statements,
    statement_months,
)

# One row per incident told to the operators (alerts/notify.py): recorded before it is sent,
# so an incident is sent once; `delivered`: every ARCADIA_ALERT_URLS URL took it.
alerts = Table(
    "alerts",
    metadata,
    Column("incident", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("sent_at", TSTZ, nullable=False),
    Column("delivered", Boolean, nullable=False),
)

# Spend thresholds per deployment, catalog data (0014, shipped empty; billing/spend.py).
spend_alerts = Table(
    "spend_alerts",
    metadata,
    Column("deployment_id", Text, primary_key=True),
    Column("threshold_usd", MONEY, primary_key=True),
)

# Each threshold a deployment's quote reached in a billing month, once (its key): the day and
# total that reached it first, the basis ('month_to_date' or 'projected'), when the operators
# were told (NULL: not yet; defs/alerts/spend_alert_sensor.py).
spend_alert_events = Table(
    "spend_alert_events",
    metadata,
    Column("deployment_id", Text, primary_key=True),
    Column("threshold_usd", MONEY, primary_key=True),
    Column("month", Date, primary_key=True),
    Column("basis", Text, nullable=False),
    Column("as_of_date", Date, nullable=False),
    Column("total_usd", MONEY, nullable=False),
    Column("recorded_at", TSTZ, nullable=False, server_default=text("now()")),
    Column("alerted_at", TSTZ),
)
