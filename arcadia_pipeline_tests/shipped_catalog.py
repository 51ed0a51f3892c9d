"""The catalog, kind map and config as the design (docs/domain.md) ships them: what the tests
expect a database migrated to head to hold.

The package keeps no copy: the migrations write their rows as literals (history never
changes) and the code reads the tables. A test checks that head holds exactly these; a price
or kind change is a new migration plus an edit here.
"""

from dataclasses import dataclass
from decimal import Decimal

from arcadia_pipeline.catalog.kinds import Accrual


@dataclass(frozen=True)
class KindMapping:
    inventory_kind: str
    billing_kind: str | None  # None: known but not billable (skipped, not an error)
    accrual: Accrual | None


DEFAULT_KIND_MAP: tuple[KindMapping, ...] = (
    KindMapping("droplet", "droplet_hours", Accrual.ACTIVE_HOURS),
    KindMapping("spaces_bucket", "spaces_gb_month", Accrual.SIZE_MONTH),
    KindMapping("snapshot", "snapshot_gb_month", Accrual.SIZE_MONTH),
    KindMapping("droplet_backup", "droplet_backup_gb_month", Accrual.SIZE_MONTH),
    KindMapping("dns_zone", "dns_zones", Accrual.UNIT_MONTH),
)
BILLING_KINDS: tuple[str, ...] = tuple(m.billing_kind for m in DEFAULT_KIND_MAP if m.billing_kind)
DEFAULT_GRANULARITY = "day"
DEFAULT_RETENTION_DAYS = 400

PLAN_BASE_USD: dict[str, Decimal] = {
    "starter": Decimal("20.00"),
    "studio": Decimal("50.00"),
    "agency": Decimal("150.00"),
}

PLAN_INCLUDED: dict[str, dict[str, Decimal]] = {
    "starter": {
        "droplet_hours": Decimal(744),
        "spaces_gb_month": Decimal(50),
        "snapshot_gb_month": Decimal(25),
        "droplet_backup_gb_month": Decimal(25),
        "dns_zones": Decimal(3),
    },
    "studio": {
        "droplet_hours": Decimal(2232),
        "spaces_gb_month": Decimal(250),
        "snapshot_gb_month": Decimal(100),
        "droplet_backup_gb_month": Decimal(100),
        "dns_zones": Decimal(10),
    },
    "agency": {
        "droplet_hours": Decimal(7440),
        "spaces_gb_month": Decimal(1000),
        "snapshot_gb_month": Decimal(500),
        "droplet_backup_gb_month": Decimal(500),
        "dns_zones": Decimal(50),
    },
}

OVERAGE_UNIT_PRICE_USD: dict[str, Decimal] = {
    "droplet_hours": Decimal("0.00893"),
    "spaces_gb_month": Decimal("0.02"),
    "snapshot_gb_month": Decimal("0.06"),
    "droplet_backup_gb_month": Decimal("0.05"),
    "dns_zones": Decimal("0.50"),
}
