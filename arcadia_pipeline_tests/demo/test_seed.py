"""The demo inventory generator, against the session's real PostgreSQL database.

Every test runs inside a transaction that is rolled back, so the shared database keeps its data.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.source import DEMO_MARK, source_metadata
from arcadia_pipeline.demo.seed import KINDS, PLANS, STORAGE_KINDS, ForeignSource, seed_demo
from arcadia_pipeline.inventory.staging import stage_source
from arcadia_pipeline.inventory.validation import find_invalid_rows

END = date(2025, 3, 15)  # last complete month: February 2025
SMALL = {"deployments": 3, "days": 10}


@pytest.fixture(scope="module")
def engine(database_url):
    """The session's database (conftest fails, not skips, when there is none)."""
    return make_engine(database_url)


@pytest.fixture
def connection(engine):
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


def read_rows(connection):
    versions = connection.execute(
        sa.text("SELECT * FROM arcadia.resource_versions ORDER BY resource_id, valid_from")
    ).mappings()
    deployments = connection.execute(
        sa.text("SELECT * FROM arcadia.deployment_versions ORDER BY deployment_id, valid_from")
    ).mappings()
    return [dict(r) for r in versions], [dict(r) for r in deployments]


def histories(versions, key="resource_id"):
    """resource_id (or another key) -> its versions in time order."""
    by_resource = defaultdict(list)
    for v in versions:
        by_resource[v[key]].append(v)
    return by_resource


def deployment_histories(deployments):
    """deployment_id -> its versions in time order."""
    return histories(deployments, "deployment_id")


def changes(deployments):
    """(before, after) of every version of a deployment that the next one replaced."""
    return [
        (a, b)
        for h in deployment_histories(deployments).values()
        for a, b in zip(h, h[1:], strict=False)
    ]


def midday(instant):
    return instant.astimezone(UTC).time() != time()


OVERLAPS = """
    SELECT count(*) FROM arcadia.{table} a
    JOIN arcadia.{table} b ON a.{key} = b.{key} AND a.ctid <> b.ctid
     AND tstzrange(a.valid_from, a.valid_to) && tstzrange(b.valid_from, b.valid_to)
"""
# Attributed resource versions not wholly inside the union of their deployment's versions.
UNHOSTED = """
    SELECT count(*) FROM arcadia.resource_versions r
    WHERE r.deployment_id IS NOT NULL
      AND NOT tstzrange(r.valid_from, r.valid_to) <@ coalesce(
          (SELECT range_agg(tstzrange(d.valid_from, d.valid_to))
           FROM arcadia.deployment_versions d WHERE d.deployment_id = r.deployment_id),
          '{}'::tstzmultirange)
"""


def source_checks(connection, summary) -> dict:
    """What a seeded source must pass: no overlapping versions (of a resource, of a
    deployment), no resource attributed to a deployment when it does not exist, and nothing
    the pipeline's own validation refuses, over the window and the two days after it (open
    versions go on)."""
    count = {
        "resource_overlaps": OVERLAPS.format(table="resource_versions", key="resource_id"),
        "deployment_overlaps": OVERLAPS.format(table="deployment_versions", key="deployment_id"),
        "unhosted": UNHOSTED,
    }
    checks = {
        name: connection.execute(sa.text(query)).scalar_one() for name, query in count.items()
    }
    window_end = summary.end + timedelta(days=2)
    stage_source(connection, None, summary.start, window_end)
    checks["invalid"] = find_invalid_rows(connection, summary.start, window_end)
    return checks


# One seeded data set per case, read back and shared by the content tests.
def seed_and_read(engine, **arguments):
    """Seed in a transaction that is rolled back; return what was written."""
    with engine.connect() as connection, connection.begin() as transaction:
        summary = seed_demo(connection, end_date=END, **arguments)
        versions, deployments = read_rows(connection)
        checks = source_checks(connection, summary)
        transaction.rollback()
    assert summary.start == summary.end - timedelta(days=arguments.get("days", 75))
    return summary, versions, deployments, checks


@pytest.fixture(
    scope="module",
    params=[
        {},
        SMALL,
        {**SMALL, "seed": 8},
        {**SMALL, "seed": 2024},
        {"deployments": 3, "days": 1},
    ],
    ids=["default", "small", "small-seed8", "small-seed2024", "one-day"],
)
def seeded(request, engine):
    return seed_and_read(engine, **request.param)


def test_summary_matches_the_rows(seeded):
    summary, versions, deployments, _ = seeded
    by_resource = histories(versions)
    by_deployment = deployment_histories(deployments)
    assert summary.deployments == len(by_deployment)
    assert summary.deployment_versions == len(deployments)
    assert summary.sign_ups == sum(
        h[0]["valid_from"] > summary.start for h in by_deployment.values()
    )
    assert summary.churns == sum(h[-1]["valid_to"] is not None for h in by_deployment.values())
    pairs = changes(deployments)
    assert summary.plan_changes == sum(a["plan_code"] != b["plan_code"] for a, b in pairs)
    assert summary.renames == sum(a["plan_code"] == b["plan_code"] for a, b in pairs)
    assert summary.resources == len(by_resource)
    assert summary.versions == len(versions)
    assert summary.unattributed_resources == sum(
        all(v["deployment_id"] is None for v in h) for h in by_resource.values()
    )
    assert summary.end == datetime.combine(END, time(), UTC)
    assert min(v["valid_from"] for v in versions) == summary.start  # some exist all along


def test_every_kind_and_plan_is_present(seeded):
    _, versions, deployments, _ = seeded
    assert {v["inventory_kind"] for v in versions} == set(KINDS)
    assert {d["plan_code"] for d in deployments} == set(PLANS)
    ids = list(deployment_histories(deployments))
    assert ids == [f"dep-{i:04d}" for i in range(1, len(ids) + 1)]
    assert all(d["name"] for d in deployments)


def test_versions_are_contiguous_and_never_overlap(seeded):
    summary, versions, _, checks = seeded
    assert checks["resource_overlaps"] == 0
    for history in histories(versions).values():
        for before, after in zip(history, history[1:], strict=False):
            assert before["valid_to"] == after["valid_from"]
            # Each version records a change; no version repeats its predecessor's state.
            state = ("deployment_id", "size_gb", "status")
            assert [before[k] for k in state] != [after[k] for k in state]
        for v in history:
            assert summary.start <= v["valid_from"] < summary.end
            assert v["valid_to"] is None or v["valid_from"] < v["valid_to"] < summary.end
        assert all(v["valid_to"] is not None for v in history[:-1])


def test_deployment_versions_are_contiguous_and_never_overlap(seeded):
    summary, _, deployments, checks = seeded
    assert checks["deployment_overlaps"] == 0
    for history in deployment_histories(deployments).values():
        for before, after in zip(history, history[1:], strict=False):
            # A plan change or a rename closes a version and opens the next at one instant.
            assert before["valid_to"] == after["valid_from"]
            assert (before["name"], before["plan_code"]) != (after["name"], after["plan_code"])
        for v in history:
            assert summary.start <= v["valid_from"] < summary.end
            assert v["valid_to"] is None or v["valid_from"] < v["valid_to"] < summary.end
        assert all(v["valid_to"] is not None for v in history[:-1])
    # dep-0001 exists all window: it hosts the resource tour and takes moved resources.
    first = deployment_histories(deployments)["dep-0001"]
    assert first[0]["valid_from"] == summary.start and first[-1]["valid_to"] is None


def test_no_resource_is_attributed_to_a_deployment_when_it_does_not_exist(seeded):
    summary, versions, deployments, checks = seeded
    assert checks["unhosted"] == 0
    assert checks["invalid"] == (0, [])  # the pipeline's own validation agrees
    # The same in Python: a churned deployment's resources end (or leave it) by the churn,
    # a signed-up one's start after the sign-up.
    lives = {
        d: (h[0]["valid_from"], h[-1]["valid_to"])
        for d, h in deployment_histories(deployments).items()
    }
    for v in versions:
        if v["deployment_id"] is None:
            continue
        born, died = lives[v["deployment_id"]]
        assert born <= v["valid_from"], v
        assert died is None or (v["valid_to"] is not None and v["valid_to"] <= died), v


def test_every_deployment_case_is_present(seeded):
    summary, versions, deployments, _ = seeded
    by_deployment = deployment_histories(deployments).values()
    signed_up = [h for h in by_deployment if h[0]["valid_from"] > summary.start]
    assert any(midday(h[0]["valid_from"]) for h in signed_up), "sign-up mid-day"
    churned = [h for h in by_deployment if h[-1]["valid_to"] is not None]
    assert any(midday(h[-1]["valid_to"]) for h in churned), "churn mid-day"
    pairs = changes(deployments)
    assert any(a["plan_code"] != b["plan_code"] and midday(b["valid_from"]) for a, b in pairs), (
        "plan change"
    )
    assert any(a["plan_code"] == b["plan_code"] and a["name"] != b["name"] for a, b in pairs), (
        "rename keeping the plan"
    )
    # A signed-up deployment has resources from its sign-up on; a churned one had some.
    attributed = {v["deployment_id"] for v in versions}
    assert all(h[0]["deployment_id"] in attributed for h in signed_up + churned)


def test_timestamps_are_whole_utc_seconds_recorded_minutes_later(seeded):
    _, versions, deployments, _ = seeded
    for v in versions + deployments:
        for instant in (v["valid_from"], v["valid_to"], v["recorded_at"]):
            assert instant is None or (instant.utcoffset() is not None and instant.microsecond == 0)
        assert timedelta(0) < v["recorded_at"] - v["valid_from"] <= timedelta(minutes=15)


def test_sizes_and_statuses_follow_the_contract(seeded):
    _, versions, _, _ = seeded
    for v in versions:
        if v["inventory_kind"] in STORAGE_KINDS:
            assert v["size_gb"] is not None and v["size_gb"] > 0
            assert v["size_gb"] == round(v["size_gb"], 2)
        if v["inventory_kind"] == "dns_zone":
            assert v["size_gb"] is None
        assert v["status"] in ("active", "off")
        assert v["status"] == "active" or v["inventory_kind"] == "droplet"


def test_every_history_case_is_present(seeded):
    summary, versions, _, _ = seeded
    by_resource = histories(versions).values()
    pairs = [(a, b) for h in by_resource for a, b in zip(h, h[1:], strict=False)]
    assert any(midday(h[0]["valid_from"]) for h in by_resource), "creation mid-day"
    assert any(h[-1]["valid_to"] is not None for h in by_resource), "deletion"
    assert any(v["status"] == "off" for v in versions), "power off"
    assert any(a["status"] == "off" and b["status"] == "active" for a, b in pairs), "power on"
    assert any(
        a["size_gb"] != b["size_gb"] and a["inventory_kind"] in STORAGE_KINDS for a, b in pairs
    ), "resize"
    assert any(
        None not in (a["deployment_id"], b["deployment_id"])
        and a["deployment_id"] != b["deployment_id"]
        and midday(b["valid_from"])
        for a, b in pairs
    ), "mid-day re-attribution"
    assert summary.unattributed_resources >= 1, "unattributed for the whole life"
    assert any(a["deployment_id"] is None and b["deployment_id"] is not None for a, b in pairs), (
        "unattributed for a while"
    )
    assert any(
        h[0]["valid_from"] == summary.start and h[-1]["valid_to"] is None for h in by_resource
    ), "exists for the whole window"


def test_defaults_give_a_realistic_volume_with_overage_last_month(engine):
    summary, versions, deployments, _ = seed_and_read(engine)
    assert 200 <= summary.resources <= 600
    assert 35 <= summary.deployment_versions <= 80
    assert summary.sign_ups >= 3 and summary.churns >= 2 and summary.plan_changes >= 3
    # A resource outlives its churned deployment, unattributed from the churn on.
    churned = {
        d: h[-1]["valid_to"]
        for d, h in deployment_histories(deployments).items()
        if h[-1]["valid_to"] is not None
    }
    pairs = [(a, b) for h in histories(versions).values() for a, b in zip(h, h[1:], strict=False)]
    assert any(
        a["deployment_id"] in churned
        and b["deployment_id"] is None
        and b["valid_from"] == churned[a["deployment_id"]]
        for a, b in pairs
    ), "left behind by a churned deployment"
    month_start, month_end = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    month_seconds = (month_end - month_start).total_seconds()
    usage = defaultdict(float)  # (deployment, billing kind) -> usage in February
    for v in versions:
        lo = max(v["valid_from"], month_start)
        hi = min(v["valid_to"] or month_end, month_end)
        if v["deployment_id"] is None or hi <= lo:
            continue
        seconds, deployment = (hi - lo).total_seconds(), v["deployment_id"]
        if v["inventory_kind"] == "droplet" and v["status"] == "active":
            usage[deployment, "droplet_hours"] += seconds / 3600
        elif v["inventory_kind"] == "spaces_bucket":
            usage[deployment, "spaces_gb_month"] += float(v["size_gb"]) * seconds / month_seconds
    # Starters all February (a version on another plan, or none, would prorate the terms).
    starters = [
        d
        for d, h in deployment_histories(deployments).items()
        if all(v["plan_code"] == "starter" for v in h)
        and h[0]["valid_from"] <= month_start
        and (h[-1]["valid_to"] is None or h[-1]["valid_to"] >= month_end)
    ]
    over = {
        d for d in starters if usage[d, "droplet_hours"] > 744 or usage[d, "spaces_gb_month"] > 50
    }
    assert len(over) >= 3, usage
    assert len(over) < len(deployments)


def test_same_arguments_give_identical_rows_and_replace_previous_data(connection):
    first = (seed_demo(connection, end_date=END), read_rows(connection))
    seed_demo(connection, **SMALL, seed=99, end_date=END)  # something else in between
    again = (seed_demo(connection, end_date=END), read_rows(connection))
    assert first == again
    seed_demo(connection, seed=8, end_date=END)
    assert read_rows(connection) != first[1]


def test_creates_the_source_tables_when_missing(connection):
    connection.execute(sa.text("DROP SCHEMA IF EXISTS arcadia CASCADE"))
    summary = seed_demo(connection, **SMALL, end_date=END)
    count = connection.execute(sa.text("SELECT count(*) FROM arcadia.resource_versions"))
    assert count.scalar_one() == summary.versions


def test_the_tables_it_creates_carry_the_demo_mark(connection):
    connection.execute(sa.text("DROP SCHEMA IF EXISTS arcadia CASCADE"))
    seed_demo(connection, **SMALL, end_date=END)
    comments = connection.execute(
        sa.text(
            "SELECT obj_description(to_regclass(t), 'pg_class') "
            "FROM unnest(ARRAY['arcadia.deployment_versions', 'arcadia.resource_versions']) t"
        )
    ).scalars()
    assert list(comments) == [DEMO_MARK, DEMO_MARK]


def foreign_source(connection):
    """Source tables someone else made (no demo mark), holding one deployment of theirs."""
    connection.execute(sa.text("DROP SCHEMA IF EXISTS arcadia CASCADE"))
    connection.execute(sa.text("CREATE SCHEMA arcadia"))
    source_metadata.create_all(connection)
    connection.execute(
        sa.text(
            "INSERT INTO arcadia.deployment_versions (deployment_id, name, plan_code, valid_from) "
            "VALUES ('theirs', 'Their customer', 'agency', '2024-01-01')"
        )
    )


def test_refuses_to_replace_a_source_it_did_not_create(connection):
    foreign_source(connection)
    before = read_rows(connection)
    with pytest.raises(ForeignSource) as refused:
        seed_demo(connection, **SMALL, end_date=END)
    message = str(refused.value)
    assert "\n" not in message  # the CLI prints it as its one line
    assert "arcadia.deployment_versions and arcadia.resource_versions" in message
    assert read_rows(connection) == before and before[1][0]["deployment_id"] == "theirs"


def test_refuses_when_one_source_relation_is_not_its_own(connection):
    # A view over the app's tables, beside a resource_versions the demo made.
    connection.execute(sa.text("DROP SCHEMA IF EXISTS arcadia CASCADE"))
    seed_demo(connection, **SMALL, end_date=END)
    before = read_rows(connection)
    connection.execute(sa.text("DROP TABLE arcadia.deployment_versions"))
    connection.execute(
        sa.text(
            "CREATE VIEW arcadia.deployment_versions AS SELECT 'theirs'::text AS deployment_id, "
            "'Their customer'::text AS name, 'agency'::text AS plan_code, "
            "'2024-01-01'::timestamptz AS valid_from, NULL::timestamptz AS valid_to, "
            "'2024-01-01'::timestamptz AS recorded_at"
        )
    )
    with pytest.raises(ForeignSource, match="the rows of arcadia.deployment_versions:"):
        seed_demo(connection, **SMALL, seed=8, end_date=END)
    assert read_rows(connection)[0] == before[0]  # resource_versions untouched


def test_a_single_deployment_still_has_every_kind(connection):
    summary = seed_demo(connection, deployments=1, days=1, end_date=END)
    versions, deployments = read_rows(connection)
    assert summary.deployments == 1 and deployments[0]["deployment_id"] == "dep-0001"
    assert {v["inventory_kind"] for v in versions} == set(KINDS)
    # dep-0001 never signs up or churns; the rest of the tour still happens to it.
    assert (summary.sign_ups, summary.churns) == (0, 0)
    assert (summary.plan_changes, summary.renames) == (1, 1)
    assert source_checks(connection, summary) == {
        "resource_overlaps": 0,
        "deployment_overlaps": 0,
        "unhosted": 0,
        "invalid": (0, []),
    }


@pytest.mark.parametrize("deployments", [2, 3, 4])
def test_a_few_deployments_still_show_a_sign_up_a_churn_and_a_plan_change(connection, deployments):
    summary = seed_demo(connection, deployments=deployments, days=10, end_date=END)
    assert summary.deployments == deployments
    assert summary.sign_ups >= 1 and summary.churns >= 1
    assert summary.plan_changes >= 1 and summary.renames >= 1
    assert source_checks(connection, summary)["invalid"] == (0, [])


def test_end_date_defaults_to_today_utc(connection):
    summary = seed_demo(connection, deployments=1, days=1)
    today = datetime.combine(datetime.now(UTC).date(), time(), UTC)
    assert summary.end == today and summary.start == today - timedelta(days=1)


@pytest.mark.parametrize(
    "bad", [{"deployments": 0}, {"deployments": -3}, {"days": 0}, {"days": -1}]
)
def test_bad_arguments_raise(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"{name} must be >= 1"):
        seed_demo(None, **bad)  # validated before the database is touched
