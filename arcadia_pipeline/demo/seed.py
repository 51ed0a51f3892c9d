"""Reproducible demo inventory: fills the `arcadia` source relations with a realistic history.

The history covers `days` UTC days ending at `end_date` 00:00 UTC and contains every case the
metering and the pricing have to get right. Deployments sign up and churn mid-window, change
plan and get renamed (a version closes at an instant and the next opens at the same instant).
Resources are created and deleted at arbitrary times of day, droplets powered off and on,
storage resized, resources re-attributed mid-day, unattributed for their whole life or for a
while (some outlive their churned deployment unattributed), and a few starter deployments
exceed their plan's inclusions. A resource version attributed to a deployment always lies
within the deployment's existence, as validation requires. All content comes from
`random.Random(seed)`, so the same arguments give byte-identical rows.
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
# The first deployments walk through every case of a deployment's history, so that even tiny
# inputs show them all. dep-0001 exists all window (it hosts the resource tour, and a moved
# resource can always go to it) and is renamed; then a plan change, a sign-up, a churn. With
# fewer deployments than cases the last one takes the rest (dep-0001 never signs up or churns).
# "plan": another plan from an instant on; "rename": another name, the same plan.
_DEPLOYMENT_TOUR = ({"rename"}, {"plan"}, {"signup"}, {"churn"})
# Probability of each case for the other deployments.
_DEPLOYMENT_ODDS = {"signup": 0.2, "churn": 0.12, "plan": 0.15, "rename": 0.08}
# Probability that a resource still alive when its deployment churns outlives it, unattributed
# (the app lost track of it); otherwise it is deleted with the deployment.
_LEFT_BEHIND = 0.3
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


def refuse_foreign_source(connection: sa.Connection, doing: str) -> None:
    """Raise ForeignSource, naming them, when source relations exist here without the demo's
    mark (DEMO_MARK): the demo's commands write only to relations demo seed created."""
    foreign = unmarked_source_relations(connection)
    if foreign:
        raise ForeignSource(
            f"refusing to {doing} {' and '.join(foreign)}: demo seed did not create them "
            "(no demo mark); use another database, or drop them if they are demo data"
        )


@dataclass(frozen=True)
class SeedSummary:
    deployments: int
    resources: int
    versions: int  # resource versions
    unattributed_resources: int  # resources never attributed during their whole life
    start: datetime  # first instant covered (UTC): end_date - days, 00:00
    end: datetime  # end of the history (UTC): end_date 00:00; later changes do not exist yet
    deployment_versions: int
    sign_ups: int  # deployments whose first version starts after `start`
    churns: int  # deployments whose last version ends before `end`
    plan_changes: int  # a version followed at the same instant by one on another plan
    renames: int  # a version followed at the same instant by one of another name, same plan


@dataclass(frozen=True)
class _Life:
    """When a deployment exists, in seconds from the window start: [born, died), died None
    while it still exists."""

    deployment_id: str
    plan_code: str  # its first plan
    born: int
    died: int | None


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
    refuse_foreign_source(connection, "replace the rows of")
    end_date = end_date or datetime.now(UTC).date()
    end = datetime.combine(end_date, time(), UTC)
    start = end - timedelta(days=days)
    gen = _Generator(random.Random(seed), start, end)
    deployment_rows, lives = gen.deployments(deployments)
    version_rows = gen.versions(lives)

    create_source_tables(connection)
    tables = f"{source.resource_versions.fullname}, {source.deployment_versions.fullname}"
    connection.execute(sa.text(f"TRUNCATE {tables}"))
    connection.execute(source.deployment_versions.insert(), deployment_rows)
    connection.execute(source.resource_versions.insert(), version_rows)

    resources: dict[str, bool] = {}  # resource_id -> ever attributed
    for row in version_rows:
        rid = row["resource_id"]
        resources[rid] = resources.get(rid, False) or row["deployment_id"] is not None
    # Consecutive versions of one deployment (the rows are in time order per deployment).
    pairs = zip(deployment_rows, deployment_rows[1:], strict=False)
    successive = [(a, b) for a, b in pairs if a["deployment_id"] == b["deployment_id"]]
    return SeedSummary(
        deployments=len(lives),
        resources=len(resources),
        versions=len(version_rows),
        unattributed_resources=sum(not attributed for attributed in resources.values()),
        start=start,
        end=end,
        deployment_versions=len(deployment_rows),
        sign_ups=sum(life.born > 0 for life in lives),
        churns=sum(life.died is not None for life in lives),
        plan_changes=sum(a["plan_code"] != b["plan_code"] for a, b in successive),
        renames=sum(a["plan_code"] == b["plan_code"] for a, b in successive),
    )


def _deployment_tour(count: int) -> list[set[str]]:
    """The cases of the first `count` deployments' histories (see _DEPLOYMENT_TOUR)."""
    tour = [set(cases) for cases in _DEPLOYMENT_TOUR]
    if count < len(tour):
        rest = set().union(*tour[count:])
        tour = tour[:count]
        tour[-1] |= rest - {"signup", "churn"} if count == 1 else rest
    return tour


class _Generator:
    def __init__(self, rng: random.Random, start: datetime, end: datetime) -> None:
        self.rng, self.start = rng, start
        self.span = int((end - start).total_seconds())
        self.next_number = 3_100_000  # grows by random steps: unique, provider-looking ids

    # ---- deployments ------------------------------------------------------------------

    def deployments(self, count: int) -> tuple[list[dict], list[_Life]]:
        """The versions of `count` deployments (in time order per deployment) and their lives."""
        rng = self.rng
        tour = _deployment_tour(count)
        rows: list[dict] = []
        lives: list[_Life] = []
        for i in range(count):
            # The first three cover every plan; then mostly small customers.
            plan = PLANS[i] if i < 3 else rng.choices(PLANS, weights=(50, 35, 15))[0]
            name = self.name()
            if i < len(tour):
                cases = tour[i]
            else:
                cases = {case for case, p in _DEPLOYMENT_ODDS.items() if rng.random() < p}
            life = self.life(f"dep-{i + 1:04d}", plan, cases)
            lives.append(life)
            rows += self.deployment_versions(life, name, cases)
        return rows, lives

    def life(self, deployment_id: str, plan: str, cases: set[str]) -> _Life:
        """Sign-up and churn instants, leaving every deployment at least a fifth of the window
        (room for resources created two hours before its end)."""
        span = self.span
        if {"signup", "churn"} <= cases:
            born = self.instant(0, span * 2 // 5)
            died = self.instant(span * 3 // 5, span)
        elif "signup" in cases:
            born, died = self.instant(0, span * 4 // 5), None
        elif "churn" in cases:
            born, died = 0, self.instant(span // 5, span)
        else:
            born, died = 0, None
        return _Life(deployment_id, plan, born, died)

    def deployment_versions(self, life: _Life, name: str, cases: set[str]) -> list[dict]:
        """One version per state interval: a plan change or a rename closes the version at an
        instant and opens the next at the same instant."""
        rng = self.rng
        changes = [case for case in ("plan", "rename") if case in cases]
        rng.shuffle(changes)
        until = self.span if life.died is None else life.died
        times = sorted(self.instants(len(changes), life.born, until))
        state = {"deployment_id": life.deployment_id, "name": name, "plan_code": life.plan_code}
        rows = []
        since = life.born
        for at, change in zip(times, changes, strict=True):
            rows.append(self.timed(state, since, at))
            state = dict(state)
            if change == "plan":  # an upgrade twice as likely as a downgrade
                rank = PLANS.index(state["plan_code"])
                others = [p for p in PLANS if p != state["plan_code"]]
                weights = [2 if PLANS.index(p) > rank else 1 for p in others]
                state["plan_code"] = rng.choices(others, weights=weights)[0]
            else:
                state["name"] = self.name(other_than=state["name"])
            since = at
        rows.append(self.timed(state, since, life.died))
        return rows

    def name(self, other_than: str | None = None) -> str:
        while (name := f"{self.rng.choice(_ADJECTIVES)} {self.rng.choice(_NOUNS)}") == other_than:
            pass
        return name

    # ---- resources --------------------------------------------------------------------

    def versions(self, lives: list[_Life]) -> list[dict]:
        rng = self.rng
        rows: list[dict] = []
        tour = list(_TOUR)
        for i, life in enumerate(lives):
            for _ in range(rng.randint(3, 10)):
                if tour:
                    kind, features = tour.pop(0)
                else:
                    kind = rng.choices(KINDS, weights=_KIND_WEIGHTS)[0]
                    features = {f for f, p in _ODDS.items() if rng.random() < p}
                rows += self.resource(kind, life, features, lives)
            # Some starter customers run more than their plan includes, all their life
            # (dep-0001: all window long), so last month's quote shows overage (droplet hours
            # and Spaces GB-months).
            if life.plan_code == "starter" and (i == 0 or rng.random() < 0.3):
                rows += self.resource("droplet", life, set(), lives)
                rows += self.resource("droplet", life, set(), lives)
                rows += self.resource(
                    "spaces_bucket",
                    life,
                    set(),
                    lives,
                    size=Decimal(rng.randint(6_000, 12_000)).scaleb(-2),
                )
        for kind, features in tour:  # fewer than five resources so far: finish the tour
            rows += self.resource(kind, lives[0], features, lives)
        # Orphans: resources the app never managed to attribute (never metered).
        for _ in range(max(2, len(lives) // 8)):
            kind = rng.choices(KINDS, weights=_KIND_WEIGHTS)[0]
            features = {f for f, p in _ODDS.items() if rng.random() < p} - {"moved", "adopted"}
            rows += self.resource(kind, None, features, lives)
        return rows

    def end_of(self, life: _Life | None) -> int:
        """When a deployment stops existing (the window's end if it still exists); the
        window's end for no deployment."""
        return self.span if life is None or life.died is None else life.died

    def resource(
        self,
        kind: str,
        owner: _Life | None,
        features: set[str],
        lives: list[_Life],
        size: Decimal | None = None,
    ) -> list[dict]:
        """The versions of one resource: its initial state, then one version per change. Its
        attributed versions lie within its deployments' lives: it is created after its owner
        signed up, ends (deleted, or left behind unattributed) when its last owner churns, and
        moves only to a deployment that exists for the rest of its life."""
        rng = self.rng
        self.next_number += rng.randint(1, 5_000)
        rid = f"{_ID_PREFIX[kind]}:{self.next_number}"
        if kind == "dns_zone":
            rid = f"dns:example-{self.next_number - 3_100_000}.com"
        if size is None and kind in STORAGE_KINDS:
            size = self.size(kind)
        elif kind == "droplet":
            size = Decimal(rng.choice(_DROPLET_DISKS))

        # Offsets in seconds from the window start; "created" leaves >= 2 h of the owner's life.
        low, high = (0, self.span) if owner is None else (owner.born, self.end_of(owner))
        if "created" in features:
            born = self.instant(max(low, 1), high - 7_200)
        elif low > 0:  # provisioned within half an hour of its deployment's sign-up
            born = self.instant(low, low + 1_800)
        else:
            born = 0
        died = self.instant(born + 3_600, high) if "deleted" in features else None

        changes: list[str] = []
        if kind == "droplet":  # each toggle alternates the status, starting from active
            changes += ["power"] * (2 * ("power" in features) + ("shutdown" in features))
        if "resize" in features and kind in STORAGE_KINDS:
            changes += ["resize"] * rng.randint(1, 2)
        if "moved" in features and owner is not None and len(lives) > 1:
            changes.append("moved")
        rng.shuffle(changes)
        owner_id = None if owner is None else owner.deployment_id
        if "adopted" in features and owner is not None:
            changes.insert(0, "adopt")  # unattributed from creation until the first change
            owner_now = None
        else:
            owner_now = owner_id
        # Every change happens while the resource and its owner exist.
        until = high if died is None else died
        times = sorted(self.instants(len(changes), born, until))

        state = {"deployment_id": owner_now, "size_gb": size, "status": "active"}
        current = owner  # the deployment whose life bounds the resource's (None: none yet)
        rows = []
        since = born
        for at, change in zip(times, changes, strict=True):
            new = dict(state)
            if change == "power":
                new["status"] = "off" if state["status"] == "active" else "active"
            elif change == "resize":
                new["size_gb"] = self.size(kind, other_than=state["size_gb"])
            elif change == "moved":
                # Only to a deployment that exists from now on for as long as the resource
                # may still live with its current owner.
                targets = [
                    life
                    for life in lives
                    if life.deployment_id != state["deployment_id"]
                    and life.born <= at
                    and self.end_of(life) >= until
                ]
                if not targets:
                    continue  # nowhere to go: no version for this change
                current = rng.choice(targets)
                new["deployment_id"] = current.deployment_id
            else:  # adopt
                new["deployment_id"] = owner_id
            rows.append(self.row(rid, kind, state, since, at))
            state, since = new, at
        if died is None and state["deployment_id"] is not None and current.died is not None:
            # Its deployment churned: deleted with it, or left behind unattributed.
            if rng.random() < _LEFT_BEHIND:
                rows.append(self.row(rid, kind, state, since, current.died))
                state, since = {**state, "deployment_id": None}, current.died
            else:
                died = current.died
        rows.append(self.row(rid, kind, state, since, died))
        return rows

    # ---- rows and instants ------------------------------------------------------------

    def timed(self, state: dict, since: int, until: int | None) -> dict:
        """`state` as a version [since, until) (offsets; until None: still current)."""
        valid_from = self.start + timedelta(seconds=since)
        return {
            **state,
            "valid_from": valid_from,
            "valid_to": None if until is None else self.start + timedelta(seconds=until),
            # The app writes a version a few minutes after the change it records.
            "recorded_at": valid_from + timedelta(seconds=self.rng.randint(20, 900)),
        }

    def row(self, rid: str, kind: str, state: dict, since: int, until: int | None) -> dict:
        return self.timed({"resource_id": rid, "inventory_kind": kind, **state}, since, until)

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
