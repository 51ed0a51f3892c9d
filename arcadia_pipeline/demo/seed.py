"""Reproducible demo inventory: fills the `arcadia` source relations with a realistic history.

The history covers `days` UTC days ending at `end_date` 00:00 UTC and contains every case the
metering has to get right: creations and deletions at arbitrary times of day, droplets powered
off and on, storage resized, resources re-attributed mid-day, resources unattributed for their
whole life or for a while, and a few starter deployments that exceed their plan's inclusions.
All content comes from `random.Random(seed)`, so the same arguments give byte-identical rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from arcadia_pipeline.db import source
from arcadia_pipeline.db.source import create_source_tables, unmarked_source_relations

PLANS = ("starter", "studio", "agency")
STORAGE_KINDS = ("spaces_bucket", "snapshot", "droplet_backup")
KINDS = ("droplet", *STORAGE_KINDS, "dns_zone")
_KIND_WEIGHTS = (40, 15, 15, 15, 15)
_ID_PREFIX = {
    "droplet": "droplet",
    "spaces_bucket": "spaces",
    "snapshot": "snapshot",
    "droplet_backup": "backup",
    "dns_zone": "dns",
}
# (min, max) size in hundredths of a GB, so sizes are exact 2-decimal numerics.
_SIZE_RANGE = {
    "spaces_bucket": (500, 25_000),
    "snapshot": (200, 6_000),
    "droplet_backup": (500, 8_000),
}
_DROPLET_DISKS = (25, 50, 80, 160)
# The first resources walk through every case, so that even tiny inputs show them all.
_TOUR = (
    ("droplet", {"created", "power", "shutdown"}),
    ("spaces_bucket", {"resize", "moved"}),
    ("snapshot", {"created", "deleted"}),
    ("droplet_backup", {"adopted", "resize"}),
    ("dns_zone", {"created", "moved"}),
)
# Probability of each case for the other resources.
# "power": powered off then on again; "shutdown": powered off for good (after any "power").
_ODDS = {
    "created": 0.45,
    "deleted": 0.15,
    "power": 0.2,
    "shutdown": 0.08,
    "resize": 0.3,
    "moved": 0.08,
    "adopted": 0.06,
}
_ADJECTIVES = (
    "Amber",
    "Blue",
    "Copper",
    "Silent",
    "Rapid",
    "Northern",
    "Golden",
    "Quiet",
    "Bright",
    "Crimson",
    "Misty",
    "Lucky",
)
_NOUNS = (
    "Heron",
    "Harbor",
    "Pixel",
    "Orchard",
    "Summit",
    "Lantern",
    "Meadow",
    "Forge",
    "Atlas",
    "Willow",
    "Comet",
    "Bakery",
)


class ForeignSource(ValueError):
    """The source relations exist but were not created by this package: never truncated."""


@dataclass(frozen=True)
class SeedSummary:
    deployments: int
    resources: int
    versions: int
    unattributed_resources: int  # resources never attributed during their whole life
    start: datetime  # first instant covered (UTC): end_date - days, 00:00
    end: datetime  # end of the history (UTC): end_date 00:00; later changes do not exist yet


def seed_demo(
    connection: sa.Connection,
    *,
    deployments: int = 40,
    days: int = 75,
    seed: int = 7,
    end_date: date | None = None,
) -> SeedSummary:
    """Replace the contents of the source relations with a demo history (caller commits).

    Only relations `create_source_tables` made (they carry its mark) are replaced; if either
    exists without it, ForeignSource is raised before anything is written."""
    if deployments < 1:
        raise ValueError(f"deployments must be >= 1, got {deployments}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    foreign = unmarked_source_relations(connection)
    if foreign:
        raise ForeignSource(
            f"refusing to replace the rows of {' and '.join(foreign)}: demo seed did not create "
            "them (no demo mark); seed another database, or drop them if they are demo data"
        )
    end_date = end_date or datetime.now(UTC).date()
    end = datetime.combine(end_date, time(), UTC)
    start = end - timedelta(days=days)
    gen = _Generator(random.Random(seed), start, end)
    deployment_rows = gen.deployments(deployments)
    version_rows = gen.versions(deployment_rows)

    create_source_tables(connection)
    tables = f"{source.resource_versions.fullname}, {source.deployments.fullname}"
    connection.execute(sa.text(f"TRUNCATE {tables}"))
    connection.execute(source.deployments.insert(), deployment_rows)
    connection.execute(source.resource_versions.insert(), version_rows)

    resources: dict[str, bool] = {}  # resource_id -> ever attributed
    for row in version_rows:
        rid = row["resource_id"]
        resources[rid] = resources.get(rid, False) or row["deployment_id"] is not None
    return SeedSummary(
        deployments=len(deployment_rows),
        resources=len(resources),
        versions=len(version_rows),
        unattributed_resources=sum(not attributed for attributed in resources.values()),
        start=start,
        end=end,
    )


class _Generator:
    def __init__(self, rng: random.Random, start: datetime, end: datetime) -> None:
        self.rng, self.start = rng, start
        self.span = int((end - start).total_seconds())
        self.next_number = 3_100_000  # grows by random steps: unique, provider-looking ids

    def deployments(self, count: int) -> list[dict]:
        rng = self.rng
        rows = []
        for i in range(count):
            # The first three cover every plan; then mostly small customers.
            plan = PLANS[i] if i < 3 else rng.choices(PLANS, weights=(50, 35, 15))[0]
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
            rows.append({"deployment_id": f"dep-{i + 1:04d}", "name": name, "plan_code": plan})
        return rows

    def versions(self, deployments: list[dict]) -> list[dict]:
        rng = self.rng
        ids = [d["deployment_id"] for d in deployments]
        rows: list[dict] = []
        tour = list(_TOUR)
        for i, dep in enumerate(deployments):
            for _ in range(rng.randint(3, 10)):
                if tour:
                    kind, features = tour.pop(0)
                else:
                    kind = rng.choices(KINDS, weights=_KIND_WEIGHTS)[0]
                    features = {f for f, p in _ODDS.items() if rng.random() < p}
                rows += self.resource(kind, dep["deployment_id"], features, ids)
            # Some starter customers run more than their plan includes, all window long,
            # so last month's quote shows overage (droplet hours and Spaces GB-months).
            if dep["plan_code"] == "starter" and (i == 0 or rng.random() < 0.3):
                rows += self.resource("droplet", dep["deployment_id"], set(), ids)
                rows += self.resource("droplet", dep["deployment_id"], set(), ids)
                rows += self.resource(
                    "spaces_bucket",
                    dep["deployment_id"],
                    set(),
                    ids,
                    size=Decimal(rng.randint(6_000, 12_000)).scaleb(-2),
                )
        for kind, features in tour:  # fewer than five resources so far: finish the tour
            rows += self.resource(kind, ids[0], features, ids)
        # Orphans: resources the app never managed to attribute (never metered).
        for _ in range(max(2, len(deployments) // 8)):
            kind = rng.choices(KINDS, weights=_KIND_WEIGHTS)[0]
            features = {f for f, p in _ODDS.items() if rng.random() < p} - {"moved", "adopted"}
            rows += self.resource(kind, None, features, ids)
        return rows

    def resource(
        self,
        kind: str,
        owner: str | None,
        features: set[str],
        deployment_ids: list[str],
        size: Decimal | None = None,
    ) -> list[dict]:
        """The versions of one resource: its initial state, then one version per change."""
        rng = self.rng
        self.next_number += rng.randint(1, 5_000)
        rid = f"{_ID_PREFIX[kind]}:{self.next_number}"
        if kind == "dns_zone":
            rid = f"dns:example-{self.next_number - 3_100_000}.com"
        if size is None and kind in STORAGE_KINDS:
            size = self.size(kind)
        elif kind == "droplet":
            size = Decimal(rng.choice(_DROPLET_DISKS))

        # Offsets in seconds from the window start; "created" leaves >= 2 h of life.
        born = self.instant(1, self.span - 7_200) if "created" in features else 0
        died = self.instant(born + 3_600, self.span) if "deleted" in features else None

        changes: list[str] = []
        if kind == "droplet":  # each toggle alternates the status, starting from active
            changes += ["power"] * (2 * ("power" in features) + ("shutdown" in features))
        if "resize" in features and kind in STORAGE_KINDS:
            changes += ["resize"] * rng.randint(1, 2)
        if "moved" in features and owner is not None and len(deployment_ids) > 1:
            changes.append("moved")
        rng.shuffle(changes)
        if "adopted" in features and owner is not None:
            changes.insert(0, "adopt")  # unattributed from creation until the first change
            owner_now = None
        else:
            owner_now = owner
        times = sorted(self.instants(len(changes), born, self.span if died is None else died))

        state = {"deployment_id": owner_now, "size_gb": size, "status": "active"}
        rows = []
        since = born
        for at, change in zip(times, changes, strict=True):
            rows.append(self.row(rid, kind, state, since, at))
            state = dict(state)
            if change == "power":
                state["status"] = "off" if state["status"] == "active" else "active"
            elif change == "resize":
                state["size_gb"] = self.size(kind, other_than=state["size_gb"])
            elif change == "moved":
                others = [d for d in deployment_ids if d != state["deployment_id"]]
                state["deployment_id"] = rng.choice(others)
            else:  # adopt
                state["deployment_id"] = owner
            since = at
        rows.append(self.row(rid, kind, state, since, died))
        return rows

    def row(self, rid: str, kind: str, state: dict, since: int, until: int | None) -> dict:
        valid_from = self.start + timedelta(seconds=since)
        return {
            "resource_id": rid,
            "inventory_kind": kind,
            **state,
            "valid_from": valid_from,
            "valid_to": None if until is None else self.start + timedelta(seconds=until),
            # The app writes a version a few minutes after the change it records.
            "recorded_at": valid_from + timedelta(seconds=self.rng.randint(20, 900)),
        }

    def size(self, kind: str, other_than: Decimal | None = None) -> Decimal:
        while (size := Decimal(self.rng.randint(*_SIZE_RANGE[kind])).scaleb(-2)) == other_than:
            pass
        return size

    def instant(self, low: int, high: int) -> int:
        return self.instants(1, low, high)[0]

    def instants(self, count: int, low: int, high: int) -> list[int]:
        """`count` distinct offsets strictly between low and high, none at midnight UTC."""
        while True:
            picks = self.rng.sample(range(low + 1, high), count)
            if all(p % 86_400 for p in picks):
                return picks
