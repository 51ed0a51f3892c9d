"""A corpus of malformed source rows, each with its expected outcome.

The source may be a view that promises nothing (no NOT NULL, no primary key), so the corpus
runs against a source stripped of its constraints. Each bad row fails the whole range with
one message naming the row, the reason and the days it breaks, and writes nothing; each
odd-but-valid row is metered exactly.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text

from arcadia_pipeline_tests.support import (
    NOTHING_WRITTEN,
    failure_messages,
    materialize_range,
    usage_rows,
    written_rows,
)

FIRST, LAST = date(2025, 3, 1), date(2025, 3, 3)
ON_LAST_DAY = "day 2025-03-03"
WHOLE_RANGE = "days 2025-03-01 to 2025-03-03"

# The NOT NULL columns of each source table a view may leave NULL (neither has a key).
NULLABLE_IN_A_VIEW = [
    ("deployment_versions", "deployment_id"),
    ("deployment_versions", "name"),
    ("deployment_versions", "plan_code"),
    ("deployment_versions", "valid_from"),
    ("resource_versions", "resource_id"),
    ("resource_versions", "inventory_kind"),
    ("resource_versions", "status"),
    ("resource_versions", "valid_from"),
]
RELAXED = [
    f"ALTER TABLE arcadia.{table} ALTER COLUMN {column} DROP NOT NULL"
    for table, column in NULLABLE_IN_A_VIEW
]
RESTORED = [
    f"ALTER TABLE arcadia.{table} ALTER COLUMN {column} SET NOT NULL"
    for table, column in NULLABLE_IN_A_VIEW
]


@pytest.fixture
def view_like_source(engine):
    """The source without its constraints, as a view over the app's tables may be."""
    with engine.begin() as connection:
        for statement in RELAXED:
            connection.execute(text(statement))
        connection.execute(text(deployment()))
        connection.execute(text(version("droplet:ok", "'2025-03-01'")))
    yield engine
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE arcadia.resource_versions, arcadia.deployment_versions"))
        for statement in RESTORED:
            connection.execute(text(statement))


def version(
    resource="'droplet:9'",
    valid_from="'2025-03-03 08:00'",
    valid_to="NULL",
    *,
    kind="'droplet'",
    deployment="'dep'",
    size="NULL",
    status="'active'",
) -> str:
    """INSERT of one version; every argument is a SQL literal (so NULL and 'NaN' can be)."""
    if not resource.startswith("'") and resource != "NULL":
        resource = f"'{resource}'"
    return (
        "INSERT INTO arcadia.resource_versions (resource_id, deployment_id, inventory_kind, "
        f"size_gb, status, valid_from, valid_to) VALUES ({resource}, {deployment}, {kind}, "
        f"{size}, {status}, {valid_from}, {valid_to})"
    )


@dataclass(frozen=True)
class Bad:
    name: str
    rows: list[str]
    named: list[str]  # words the message must hold: the row and the reason
    days: str = ON_LAST_DAY


def deployment(
    deployment_id="'dep'",
    valid_from="'2025-01-01'",
    valid_to="NULL",
    *,
    name="'Dep'",
    plan="'starter'",
) -> str:
    """INSERT of one deployment version; every argument is a SQL literal."""
    return (
        "INSERT INTO arcadia.deployment_versions (deployment_id, name, plan_code, valid_from, "
        f"valid_to) VALUES ({deployment_id}, {name}, {plan}, {valid_from}, {valid_to})"
    )


BUCKET = {"kind": "'spaces_bucket'"}
BAD_INPUTS = [
    Bad("unknown kind", [version(kind="'load_balancer'")], ["'load_balancer'", "kind_map"]),
    Bad("NULL kind", [version(kind="NULL")], ["droplet:9", "inventory_kind NULL"]),
    Bad("unattributed unknown kind", [version(kind="'gpu'", deployment="NULL")], ["'gpu'"]),
    Bad("storage without size", [version(**BUCKET)], ["droplet:9", "size_gb is missing"]),
    Bad("negative size", [version(size="-1", **BUCKET)], ["droplet:9", "negative"]),
    Bad("NaN size", [version(size="'NaN'", **BUCKET)], ["size_gb is NaN", "not a finite"]),
    Bad("Infinity size", [version(size="'Infinity'", **BUCKET)], ["size_gb is Infinity"]),
    Bad("-Infinity size", [version(size="'-Infinity'", **BUCKET)], ["size_gb is -Infinity"]),
    Bad("NaN size on a droplet", [version(size="'NaN'")], ["droplet:9", "size_gb is NaN"]),
    Bad("1e15 GB", [version(size="1e15", **BUCKET)], ["larger than 10,000,000 GB"]),
    Bad("1e25 GB", [version(size="1e25", **BUCKET)], ["larger than 10,000,000 GB"]),
    Bad("NULL status", [version(status="NULL")], ["droplet:9", "status NULL"]),
    Bad("unknown status", [version(status="'paused'")], ["'paused'", "active/off"]),
    Bad("empty status", [version(status="''")], ["droplet:9", "status ''"]),
    Bad(
        "ends before it starts",
        [version(valid_to="'2025-03-03 07:00'")],
        ["droplet:9", "valid_to is not after valid_from"],
    ),
    Bad(
        "ends when it starts",
        [version(valid_to="'2025-03-03 08:00'")],
        ["droplet:9", "valid_to is not after valid_from"],
    ),
    Bad(
        "ends before the range it starts in",
        [version(valid_to="'2025-02-01'")],
        ["droplet:9", "valid_to is not after valid_from"],
    ),
    Bad(
        "overlapping versions",
        [version(valid_to="'2025-03-03 12:00'"), version(valid_from="'2025-03-03 11:00'")],
        ["droplet:9", "overlaps"],
    ),
    Bad(
        "overlapping an open version",
        [version(), version(valid_from="'2025-03-03 11:00'", status="'off'")],
        ["droplet:9", "overlaps"],
    ),
    Bad("a version twice", [version(), version()], ["droplet:9", "overlaps"]),
    Bad(
        "unknown deployment",
        [version(deployment="'ghost'")],
        ["resource droplet:9", "deployment 'ghost' does not exist", "arcadia.deployment_versions"],
    ),
    Bad("blank attribution", [version(deployment="''")], ["droplet:9", "deployment_id is blank"]),
    Bad("NULL resource_id", [version("NULL")], ["resource NULL", "resource_id is missing"]),
    Bad("empty resource_id", [version("''")], ["resource ''", "resource_id is missing"]),
    Bad("blank resource_id", [version("'   '")], ["resource_id is missing or blank"]),
    Bad("NULL valid_from", [version(valid_from="NULL")], ["valid_from is missing"], WHOLE_RANGE),
    Bad(
        "valid_from -infinity",
        [version(valid_from="'-infinity'")],
        ["valid_from -infinity", "not a finite time"],
        WHOLE_RANGE,
    ),
    Bad("valid_to infinity", [version(valid_to="'infinity'")], ["valid_to is not a finite"]),
    # ---- deployment versions: the same rules, the row named by its id and valid_from ----
    Bad(
        "unknown plan",
        [deployment("'dep-x'", plan="'platinum'"), version(deployment="'dep-x'")],
        ["deployment dep-x version valid_from 2025-01-01", "plan_code 'platinum'"],
        WHOLE_RANGE,
    ),
    Bad(
        "unknown plan, no resources",
        [deployment("'dep-x'", plan="'platinum'")],
        ["deployment dep-x", "plan_code 'platinum'"],
        WHOLE_RANGE,
    ),
    Bad(
        "unknown plan from a plan change",
        [
            deployment("'dep-x'", valid_to="'2025-03-03 08:00'"),
            deployment("'dep-x'", "'2025-03-03 08:00'", plan="'platinum'"),
        ],
        ["deployment dep-x version valid_from 2025-03-03 08:00", "plan_code 'platinum'"],
    ),
    Bad(
        "NULL plan",
        [deployment("'dep-x'", plan="NULL")],
        ["deployment dep-x", "plan_code NULL is not in metering.plans"],
        WHOLE_RANGE,
    ),
    Bad(
        "NULL name",
        [deployment("'dep-x'", name="NULL")],
        ["deployment dep-x version valid_from 2025-01-01", "name is missing"],
        WHOLE_RANGE,
    ),
    Bad(
        "NULL deployment_id",
        [deployment("NULL")],
        ["deployment NULL", "deployment_id is missing"],
        WHOLE_RANGE,
    ),
    Bad(
        "empty deployment_id",
        [deployment("''", "'2025-03-03 08:00'")],
        ["deployment '' version valid_from 2025-03-03 08:00", "deployment_id is missing or blank"],
    ),
    Bad(
        "blank deployment_id",
        [deployment("'   '")],
        ["deployment_id is missing or blank"],
        WHOLE_RANGE,
    ),
    Bad(
        "deployment NULL valid_from",
        [deployment("'dep-x'", valid_from="NULL")],
        ["deployment dep-x version valid_from NULL", "valid_from is missing"],
        WHOLE_RANGE,
    ),
    Bad(
        "deployment valid_from -infinity",
        [deployment("'dep-x'", valid_from="'-infinity'")],
        ["deployment dep-x version valid_from -infinity", "not a finite time"],
        WHOLE_RANGE,
    ),
    Bad(
        "deployment valid_to infinity",
        [deployment("'dep-x'", "'2025-03-03 08:00'", "'infinity'")],
        ["deployment dep-x version valid_from 2025-03-03 08:00", "valid_to is not a finite"],
    ),
    Bad(
        "deployment ends before it starts",
        [deployment("'dep-x'", "'2025-03-03 08:00'", "'2025-03-03 07:00'")],
        ["deployment dep-x version valid_from 2025-03-03 08:00", "valid_to is not after"],
    ),
    Bad(
        "deployment ends when it starts",
        [deployment("'dep-x'", "'2025-03-03 08:00'", "'2025-03-03 08:00'")],
        ["deployment dep-x version valid_from 2025-03-03 08:00", "valid_to is not after"],
    ),
    Bad(
        "deployment ends before the range it starts in",
        [deployment("'dep-x'", "'2025-03-03 08:00'", "'2025-02-01'")],
        ["deployment dep-x version valid_from 2025-03-03 08:00", "valid_to is not after"],
    ),
    Bad(
        "deployment versions that overlap",
        [
            deployment("'dep-x'", valid_to="'2025-03-03 12:00'"),
            deployment("'dep-x'", "'2025-03-03 11:00'", plan="'studio'"),
        ],
        [
            "deployment dep-x version valid_from 2025-03-03 11:00",
            "overlaps the previous version of the same deployment",
        ],
    ),
    Bad(
        "a plan change overlapping an open version",
        [deployment("'dep'", "'2025-03-03 08:00'", plan="'studio'")],
        [
            "deployment dep version valid_from 2025-03-03 08:00",
            "overlaps the previous version of the same deployment",
        ],
    ),
    Bad(
        "a deployment version twice",
        [deployment()],
        ["deployment dep version valid_from 2025-01-01", "overlaps the previous version"],
        WHOLE_RANGE,
    ),
    # ---- a resource attributed to a deployment when it does not exist: both named ----
    Bad(
        "resource before its deployment signs up",
        [deployment("'dep-late'", "'2025-03-03 12:00'"), version(deployment="'dep-late'")],
        [
            "resource droplet:9 version valid_from 2025-03-03 08:00",
            "deployment 'dep-late' does not exist for all of its time",
            "arcadia.deployment_versions",
        ],
    ),
    Bad(
        "resource of a deployment signing up after the range",
        [deployment("'dep-late'", "'2025-04-01'"), version(deployment="'dep-late'")],
        ["resource droplet:9", "deployment 'dep-late' does not exist"],
    ),
    Bad(
        "resource older than the range, deployment signing up in it",
        [
            deployment("'dep-late'", "'2025-03-02 12:00'"),
            version(valid_from="'2025-02-01'", deployment="'dep-late'"),
        ],
        ["resource droplet:9 version valid_from 2025-02-01", "deployment 'dep-late' does not"],
        WHOLE_RANGE,
    ),
    Bad(
        "resource after its deployment churned",
        [
            deployment("'dep-gone'", valid_to="'2025-03-03 10:00'"),
            version(deployment="'dep-gone'"),
        ],
        [
            "resource droplet:9 version valid_from 2025-03-03 08:00",
            "deployment 'dep-gone' does not exist for all of its time",
            "arcadia.deployment_versions",
        ],
    ),
    Bad(
        "closed resource outliving its churned deployment",
        [
            deployment("'dep-gone'", valid_to="'2025-03-03 10:00'"),
            version(valid_to="'2025-03-03 12:00'", deployment="'dep-gone'"),
        ],
        ["resource droplet:9", "deployment 'dep-gone' does not exist for all of its time"],
    ),
    Bad(
        "resource of a deployment churned before the range",
        [
            deployment("'dep-gone'", valid_to="'2025-02-15'"),
            version(deployment="'dep-gone'"),
        ],
        ["resource droplet:9", "deployment 'dep-gone' does not exist for all of its time"],
    ),
    Bad(
        "resource across a gap between its deployment's versions",
        [
            deployment("'dep-x'", valid_to="'2025-03-03 09:00'"),
            deployment("'dep-x'", "'2025-03-03 10:00'", plan="'studio'"),
            version(deployment="'dep-x'"),
        ],
        ["resource droplet:9", "deployment 'dep-x' does not exist for all of its time"],
    ),
    Bad(
        "a kind change within a day",
        [
            version(valid_to="'2025-03-03 12:00'"),
            version(valid_from="'2025-03-03 12:00'", size="100", **BUCKET),
        ],
        [
            "resource droplet:9",
            "changes inventory_kind from 'droplet' to 'spaces_bucket'",
            "within one UTC day",
            "new resource_id",
        ],
    ),  # fmt: skip
    Bad(
        "a kind change on the same day after a gap",
        [
            version(valid_from="'2025-03-02'", valid_to="'2025-03-03 01:00'"),
            version(valid_from="'2025-03-03 23:00'", kind="'dns_zone'"),
        ],
        ["resource droplet:9", "from 'droplet' to 'dns_zone'", "within one UTC day"],
    ),
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda bad: bad.name)
def test_bad_input_fails_the_range_naming_the_row_and_writes_nothing(view_like_source, bad):
    with view_like_source.begin() as connection:
        for row in bad.rows:
            connection.execute(text(row))

    result = materialize_range(FIRST, LAST, raise_on_error=False)

    assert not result.success
    message = failure_messages(result)
    for word in bad.named:
        assert word in message
    assert f"cannot meter on {bad.days} of this run" in message
    assert "droplet:ok" not in message  # only the offending rows are named
    assert "Traceback" not in message.split("\n")[0]
    assert written_rows(view_like_source) == NOTHING_WRITTEN


@dataclass(frozen=True)
class Odd:
    name: str
    rows: list[str]
    qty_on_last_day: dict[str, Decimal] = field(default_factory=dict)


ODD_BUT_VALID = [
    Odd(
        "the largest size allowed",
        [version("spaces:big", size="1e7", **BUCKET)],
        {"spaces:big": Decimal(10**7) * 16 * 3600 / (31 * 86400)},
    ),
    Odd("a zero-sized bucket", [version("spaces:0", size="0", **BUCKET)], {"spaces:0": 0}),
    Odd("a droplet's size is ignored", [version(size="123.4")], {"droplet:9": 16}),
    Odd(
        "quotes and SQL in ids and names",
        [
            deployment("'dep''; DROP TABLE x; --'", name="'O''Brien & Co ☃'", plan="'studio'"),
            version("'droplet:''1'", deployment="'dep''; DROP TABLE x; --'"),
        ],
        {"droplet:'1": 16},
    ),
    Odd("an unattributed bucket of any size", [version(deployment="NULL", size="5", **BUCKET)]),
    Odd(
        "a plan change under a resource",
        [
            deployment("'dep-x'", valid_to="'2025-03-03 10:00'"),
            deployment("'dep-x'", "'2025-03-03 10:00'", plan="'studio'"),
            version(deployment="'dep-x'"),
        ],
        {"droplet:9": 16},
    ),
    Odd(
        "a rename under a resource",
        [
            deployment("'dep-x'", valid_to="'2025-03-02 10:00'"),
            deployment("'dep-x'", "'2025-03-02 10:00'", name="'Renamed'"),
            version(valid_from="'2025-03-01'", deployment="'dep-x'"),
        ],
        {"droplet:9": 24},
    ),
    Odd(
        "a deployment signing up when its resource starts",
        [deployment("'dep-x'", "'2025-03-03 08:00'"), version(deployment="'dep-x'")],
        {"droplet:9": 16},
    ),
    Odd(
        "a resource ending when its deployment churns",
        [
            deployment("'dep-x'", valid_to="'2025-03-03 12:00'"),
            version(valid_to="'2025-03-03 12:00'", deployment="'dep-x'"),
        ],
        {"droplet:9": 4},
    ),
    Odd(
        "a deployment churned and back, its resource only while it exists",
        [
            deployment("'dep-x'", valid_to="'2025-03-02'"),
            deployment("'dep-x'", "'2025-03-03 06:00'", plan="'agency'"),
            version(deployment="'dep-x'"),
        ],
        {"droplet:9": 16},
    ),
    Odd(
        "a resource older than its deployment, before the range",
        [
            deployment("'dep-x'", "'2025-02-01'"),
            version(valid_from="'2025-01-01'", deployment="'dep-x'"),
        ],
        {"droplet:9": 24},
    ),
    Odd(
        "a kind change at midnight",
        [
            version(valid_from="'2025-03-01'", valid_to="'2025-03-03'"),
            version(valid_from="'2025-03-03'", size="100", **BUCKET),
        ],
        {"droplet:9": Decimal(100) / 31},
    ),
]


@pytest.mark.parametrize("odd", ODD_BUT_VALID, ids=lambda odd: odd.name)
def test_odd_but_valid_input_is_metered_exactly(view_like_source, odd):
    with view_like_source.begin() as connection:
        for row in odd.rows:
            connection.execute(text(row))

    materialize_range(FIRST, LAST)

    last_day = {
        row["resource_id"]: row["qty"]
        for row in usage_rows(view_like_source, "period_start = '2025-03-03'")
    }
    assert last_day.pop("droplet:ok") == 24
    assert set(last_day) == set(odd.qty_on_last_day)
    for resource, qty in odd.qty_on_last_day.items():
        assert abs(last_day[resource] - Decimal(qty)) < Decimal("1e-17")
