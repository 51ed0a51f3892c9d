"""The plan catalog as shipped (docs/domain.md): what `metering.plans`, `plan_items` and
`overage_prices` hold at the latest migration.

The migrations write their rows as literals (history never changes); a test checks that a
database migrated to head holds exactly these. A price change is a new migration plus an
edit here.
"""

from decimal import Decimal

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
