"""The metering schema: config, kind map, plan catalog, inventory, usage, aggregates, quotes.

Revision ID: 0001
Revises:

The seed rows are literals: a migration means the same thing forever, whatever the code
says today. A later change of catalog, kind map or config is a later migration.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE metering.kind_map (
  inventory_kind text PRIMARY KEY,
  billing_kind   text NULL,       -- NULL: a known kind that is not billable
  accrual        text NULL CHECK (accrual IN ('active_hours', 'size_month', 'unit_month')),
  CONSTRAINT kind_map_billable_has_accrual CHECK ((billing_kind IS NULL) = (accrual IS NULL))
);

CREATE TABLE metering.metering_config (
  billing_kind   text PRIMARY KEY,
  granularity    text NOT NULL DEFAULT 'day',
  retention_days int  NOT NULL DEFAULT 400,
  CONSTRAINT metering_config_granularity_is_day_or_hour CHECK (granularity IN ('day', 'hour')),
  -- shorter would let retention reach into the open or the previous billing month
  CONSTRAINT metering_config_retention_keeps_open_and_previous_month
    CHECK (retention_days >= 62)
);

CREATE TABLE metering.plans (
  plan_code text PRIMARY KEY,
  base_usd  numeric(14, 2) NOT NULL CHECK (base_usd >= 0)
);

CREATE TABLE metering.plan_items (
  plan_code    text NOT NULL REFERENCES metering.plans,
  billing_kind text NOT NULL,
  included_qty numeric NOT NULL CHECK (included_qty >= 0),
  PRIMARY KEY (plan_code, billing_kind)
);

CREATE TABLE metering.overage_prices (
  billing_kind   text PRIMARY KEY,
  unit_price_usd numeric NOT NULL CHECK (unit_price_usd >= 0)
);

CREATE TABLE metering.inventory_snapshots (
  snapshot_id             bigserial PRIMARY KEY,
  day                     date NOT NULL UNIQUE,
  run_id                  text NULL,
  taken_at                timestamptz NOT NULL DEFAULT now(),
  source_recorded_through timestamptz NULL,
  versions                int NOT NULL,
  resources               int NOT NULL,
  unattributed_resources  int NOT NULL
);

CREATE TABLE metering.resource_inventory (
  day            date        NOT NULL,
  snapshot_id    bigint      NOT NULL,
  resource_id    text        NOT NULL,
  deployment_id  text        NULL,
  inventory_kind text        NOT NULL,
  billing_kind   text        NULL,
  accrual        text        NULL,
  size_gb        numeric     NULL,
  status         text        NOT NULL,
  valid_from     timestamptz NOT NULL,
  valid_to       timestamptz NULL,
  starts_at      timestamptz NOT NULL,
  ends_at        timestamptz NOT NULL,
  recorded_at    timestamptz NOT NULL,
  CHECK (starts_at < ends_at)
) PARTITION BY RANGE (day);
CREATE INDEX resource_inventory_day_idx ON metering.resource_inventory (day);

CREATE TABLE metering.inventory_deployments (
  day           date NOT NULL,
  deployment_id text NOT NULL,
  name          text NOT NULL,
  plan_code     text NOT NULL,
  PRIMARY KEY (day, deployment_id)
);

CREATE TABLE metering.usage_records (
  deployment_id         text        NOT NULL,
  resource_id           text        NOT NULL,
  resource_kind         text        NOT NULL,
  period_start          timestamptz NOT NULL,
  granularity           text        NOT NULL CHECK (granularity IN ('day', 'hour')),
  qty                   numeric(38, 18) NOT NULL CHECK (qty >= 0),
  sub_attribution       jsonb       NULL,
  run_id                text        NULL,
  inventory_snapshot_id bigint      NULL,
  metered_at            timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT usage_records_one_per_period
    UNIQUE (deployment_id, resource_id, period_start, granularity)
) PARTITION BY RANGE (period_start);
CREATE INDEX usage_records_period_start_idx ON metering.usage_records (period_start);

CREATE TABLE metering.usage_period_aggregates (
  as_of_date    date    NOT NULL,
  deployment_id text    NOT NULL,
  billing_kind  text    NOT NULL,
  period_start  date    NOT NULL,
  qty           numeric NOT NULL,
  records       bigint  NOT NULL,
  run_id        text    NULL,
  computed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (as_of_date, deployment_id, billing_kind)
);

CREATE TABLE metering.deployment_quotes (
  as_of_date    date NOT NULL,
  deployment_id text NOT NULL,
  plan_code     text NOT NULL,
  period_start  date NOT NULL,
  base_usd      numeric(14, 2) NOT NULL,
  overage_usd   numeric(14, 2) NOT NULL,
  total_usd     numeric(14, 2) NOT NULL,
  run_id        text NULL,
  computed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (as_of_date, deployment_id)
);

CREATE TABLE metering.deployment_quote_lines (
  as_of_date     date    NOT NULL,
  deployment_id  text    NOT NULL,
  billing_kind   text    NOT NULL,
  usage          numeric NOT NULL,
  included       numeric NOT NULL,
  overage_qty    numeric NOT NULL,
  unit_price_usd numeric NOT NULL,
  overage_usd    numeric(14, 2) NOT NULL,
  PRIMARY KEY (as_of_date, deployment_id, billing_kind),
  FOREIGN KEY (as_of_date, deployment_id)
    REFERENCES metering.deployment_quotes ON DELETE CASCADE
);
"""


KIND_MAP = [
    ("droplet", "droplet_hours", "active_hours"),
    ("spaces_bucket", "spaces_gb_month", "size_month"),
    ("snapshot", "snapshot_gb_month", "size_month"),
    ("droplet_backup", "droplet_backup_gb_month", "size_month"),
    ("dns_zone", "dns_zones", "unit_month"),
]
METERING_CONFIG = [(billing_kind, "day", 400) for _, billing_kind, _ in KIND_MAP]
PLANS = [("starter", "20.00"), ("studio", "50.00"), ("agency", "150.00")]
PLAN_ITEMS = [
    (plan, kind, included)
    for plan, quantities in (
        ("starter", ("744", "50", "25", "25", "3")),
        ("studio", ("2232", "250", "100", "100", "10")),
        ("agency", ("7440", "1000", "500", "500", "50")),
    )
    for kind, included in zip(
        (
            "droplet_hours",
            "spaces_gb_month",
            "snapshot_gb_month",
            "droplet_backup_gb_month",
            "dns_zones",
        ),
        quantities,
        strict=True,
    )
]
OVERAGE_PRICES = [
    ("droplet_hours", "0.00893"),
    ("spaces_gb_month", "0.02"),
    ("snapshot_gb_month", "0.06"),
    ("droplet_backup_gb_month", "0.05"),
    ("dns_zones", "0.50"),
]


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    target = sa.table(table, *(sa.column(name) for name in columns), schema="metering")
    op.bulk_insert(target, [dict(zip(columns, row, strict=True)) for row in rows])


def upgrade() -> None:
    op.execute(DDL)
    _insert("kind_map", ("inventory_kind", "billing_kind", "accrual"), KIND_MAP)
    _insert("metering_config", ("billing_kind", "granularity", "retention_days"), METERING_CONFIG)
    _insert("plans", ("plan_code", "base_usd"), PLANS)
    _insert("plan_items", ("plan_code", "billing_kind", "included_qty"), PLAN_ITEMS)
    _insert("overage_prices", ("billing_kind", "unit_price_usd"), OVERAGE_PRICES)


TABLES = (
    "deployment_quote_lines",
    "deployment_quotes",
    "usage_period_aggregates",
    "usage_records",
    "inventory_deployments",
    "resource_inventory",
    "inventory_snapshots",
    "overage_prices",
    "plan_items",
    "plans",
    "metering_config",
    "kind_map",
)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE metering.{table} CASCADE")
