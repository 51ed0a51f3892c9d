"""The terms' history in the database (migration 0007, db/terms.py): a closed month's terms
never change, every other change is logged, and a month reads, per term, the row with the
latest effective_from on or before it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import upgrade
from arcadia_pipeline.db.schema import (
    kind_map,
    plan_items,
    plans,
)
from arcadia_pipeline.db.terms import TERM_KEYS, in_effect

JANUARY, MAY, JUNE, JULY = date(2026, 1, 1), date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)

# Per terms table: the shipped row (in effect since 1970-01) of one term, the same term with
# another value, and a term the shipped catalog does not have.
ROWS = {
    "kind_map": (
        {"inventory_kind": "droplet", "billing_kind": "droplet_hours", "accrual": "active_hours"},
        {"billing_kind": None, "accrual": None},
        {"inventory_kind": "volume", "billing_kind": "volume_gb_month", "accrual": "size_month"},
    ),
    "metering_config": (
        {"billing_kind": "droplet_hours", "granularity": "day", "retention_days": 400},
        {"granularity": "hour"},
        {"billing_kind": "volume_gb_month", "granularity": "day", "retention_days": 400},
    ),
    "plans": (
        {"plan_code": "starter", "base_usd": Decimal("20.00")},
        {"base_usd": Decimal("25.00")},
        {"plan_code": "pro", "base_usd": Decimal("99.00")},
    ),
    "plan_items": (
        {"plan_code": "starter", "billing_kind": "droplet_hours", "included_qty": 744},
        {"included_qty": 500},
        {"plan_code": "starter", "billing_kind": "volume_gb_month", "included_qty": 10},
    ),
    "overage_tiers": (  # the one open tier 0012 carried over from each price
        {
            "plan_code": "starter",
            "billing_kind": "droplet_hours",
            "unit_price_usd": Decimal("0.00893"),
        },
        {"unit_price_usd": Decimal("0.01")},
        {
            "plan_code": "starter",
            "billing_kind": "volume_gb_month",
            "unit_price_usd": Decimal("0.1"),
        },
    ),
}
TABLES = {table.name: table for table in TERM_KEYS}
SINCE_ALWAYS = date(1970, 1, 1)


def insert(connection, table: str, row: dict, effective_from) -> None:
    columns = {**row, "effective_from": effective_from}
    connection.execute(
        text(
            f"INSERT INTO metering.{table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(f':{c}' for c in columns)})"
        ),
        columns,
    )


def key_of(table: str, row: dict) -> str:
    """A WHERE clause naming the row's term (its key without effective_from)."""
    return " AND ".join(f"{column} = :{column}" for column in TERM_KEYS[TABLES[table]])


def close(engine, month: date) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO metering.statement_months (month, closed_at, repriced_at) "
                "VALUES (:m, now(), now())"
            ),
            {"m": month},
        )


def refused(engine, change) -> str:
    """The message of the IntegrityError a change raises (the change rolled back)."""
    with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
        change(connection)
    return str(raised.value.orig)


def changes(engine) -> list[tuple[str, date]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text("SELECT terms, effective_from FROM metering.terms_changes ORDER BY change_id")
            )
        ]


def closed_message(table: str, in_effect_from: str) -> str:
    return (
        f"metering.{table}: a row in effect from {in_effect_from} would change the terms of "
        "closed months (closed through 2026-05): a change names a billing month from 2026-06 on"
    )


@pytest.fixture
def may_closed(engine):
    close(engine, MAY)
    with engine.begin() as connection:  # the catalog reset's own inserts, logged: not ours
        connection.execute(text("TRUNCATE metering.terms_changes"))
    return engine


# ---- a closed month's terms never change ----------------------------------------------------


@pytest.mark.parametrize("table", ROWS)
def test_a_row_in_effect_from_the_closed_month_is_refused(may_closed, table):
    shipped, changed, _ = ROWS[table]
    message = refused(may_closed, lambda c: insert(c, table, {**shipped, **changed}, MAY))
    assert message.startswith(closed_message(table, "2026-05"))
    # ... and from any month before it.
    message = refused(may_closed, lambda c: insert(c, table, {**shipped, **changed}, JANUARY))
    assert message.startswith(closed_message(table, "2026-01"))
    assert changes(may_closed) == []


@pytest.mark.parametrize("table", ROWS)
def test_updating_a_row_the_closed_month_reads_is_refused(may_closed, table):
    shipped, changed, _ = ROWS[table]
    assignments = ", ".join(f"{column} = :new_{column}" for column in changed)
    params = {**shipped, **{f"new_{column}": value for column, value in changed.items()}}

    def update(connection, also: str = "") -> None:
        connection.execute(
            text(f"UPDATE metering.{table} SET {assignments}{also} WHERE {key_of(table, shipped)}"),
            params,
        )

    assert refused(may_closed, update).startswith(closed_message(table, "1970-01"))
    # Moving it past the close still takes it from the months it was in effect for.
    moved = refused(may_closed, lambda c: update(c, ", effective_from = DATE '2026-07-01'"))
    assert moved.startswith(closed_message(table, "1970-01"))
    assert changes(may_closed) == []


@pytest.mark.parametrize("table", ROWS)
def test_deleting_a_row_the_closed_month_reads_is_refused(may_closed, table):
    shipped, _, _ = ROWS[table]

    def delete(connection) -> None:
        connection.execute(
            text(f"DELETE FROM metering.{table} WHERE {key_of(table, shipped)}"), shipped
        )

    assert refused(may_closed, delete).startswith(closed_message(table, "1970-01"))
    with may_closed.connect() as connection:  # still there
        assert (
            connection.execute(
                text(f"SELECT count(*) FROM metering.{table} WHERE {key_of(table, shipped)}"),
                shipped,
            ).scalar_one()
            == 1
        )
    assert changes(may_closed) == []


@pytest.mark.parametrize("table", ROWS)
def test_moving_a_later_row_back_into_the_closed_month_is_refused(may_closed, table):
    shipped, changed, _ = ROWS[table]
    with may_closed.begin() as connection:
        insert(connection, table, {**shipped, **changed}, JULY)
    # Moving the July row back to May would reach the closed month.
    message = refused(
        may_closed,
        lambda c: c.execute(
            text(
                f"UPDATE metering.{table} SET effective_from = DATE '2026-05-01' "
                f"WHERE {key_of(table, shipped)} AND effective_from = DATE '2026-07-01'"
            ),
            shipped,
        ),
    )
    assert message.startswith(closed_message(table, "2026-05"))


# ---- malformed rows -------------------------------------------------------------------------


@pytest.mark.parametrize("table", ROWS)
def test_effective_from_must_be_the_first_day_of_a_month(engine, table):
    _, _, new = ROWS[table]
    message = refused(engine, lambda c: insert(c, table, new, date(2026, 6, 15)))
    assert f"{table}_effective_from_is_a_month" in message


@pytest.mark.parametrize("table", ROWS)
def test_a_row_without_effective_from_is_refused_by_the_trigger(engine, table):
    _, _, new = ROWS[table]
    message = refused(engine, lambda c: insert(c, table, new, None))
    assert message.startswith(
        f"metering.{table}: effective_from, the billing month the row applies from, is missing"
    )


# ---- open months' changes are accepted and logged -------------------------------------------


@pytest.mark.parametrize("table", ROWS)
def test_a_change_of_an_open_month_is_accepted_and_logged(may_closed, table):
    shipped, changed, new = ROWS[table]
    with may_closed.begin() as connection:
        insert(connection, table, {**shipped, **changed}, JUNE)  # a new version of a term
        insert(connection, table, new, JULY)  # a new term
        connection.execute(  # June is open: its row may be corrected in place
            text(f"UPDATE metering.{table} SET effective_from = DATE '2026-08-01' "
                 f"WHERE {key_of(table, new)}"),
            new,
        )  # fmt: skip
        connection.execute(
            text(
                f"DELETE FROM metering.{table} "
                f"WHERE {key_of(table, shipped)} AND effective_from = DATE '2026-06-01'"
            ),
            shipped,
        )
    # One entry a row changed, from the first month it reached (an update: the earlier one).
    assert changes(may_closed) == [(table, JUNE), (table, JULY), (table, JULY), (table, JUNE)]
    with may_closed.connect() as connection:
        assert connection.execute(
            text(f"SELECT effective_from FROM metering.{table} WHERE {key_of(table, new)}"), new
        ).scalar_one() == date(2026, 8, 1)


def test_with_no_month_closed_any_month_may_change(engine):
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE metering.terms_changes"))
        connection.execute(
            text(
                "UPDATE metering.plans SET base_usd = 21 "
                "WHERE plan_code = 'starter' AND effective_from = DATE '1970-01-01'"
            )
        )
    assert changes(engine) == [("plans", SINCE_ALWAYS)]


def test_the_guard_names_the_table_its_trigger_passes_not_the_relation_it_fires_on(may_closed):
    """On Citus a reference table's rows are changed in placements named like shards
    (kind_map_102138): the guard names and logs the table its trigger's argument names."""
    shard = "metering.kind_map_102138"
    with may_closed.begin() as connection:
        connection.execute(text(f"CREATE TABLE {shard} (LIKE metering.kind_map)"))
        connection.execute(
            text(
                f"CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE ON {shard} "
                "FOR EACH ROW EXECUTE FUNCTION metering.guard_terms('kind_map')"
            )
        )
    try:
        shipped, changed, _ = ROWS["kind_map"]
        row = {**shipped, **changed}
        message = refused(may_closed, lambda c: insert(c, "kind_map_102138", row, MAY))
        assert message.startswith(closed_message("kind_map", "2026-05"))
        with may_closed.begin() as connection:
            insert(connection, "kind_map_102138", row, JUNE)
        assert changes(may_closed) == [("kind_map", JUNE)]
    finally:
        with may_closed.begin() as connection:
            connection.execute(text(f"DROP TABLE {shard}"))


def test_on_a_citus_worker_the_guard_passes_every_row(scratch_database, admin_url):
    """A Citus worker's placement of a terms table (pg_dist_local_group.groupid <> 0) takes
    the row unguarded and unlogged: the coordinator's placement (groupid 0), changed in the
    same transaction, guards and logs it. Imitated on a plain PostgreSQL: a scratch database
    given the catalog table Citus makes (readable by all, as Citus grants it)."""
    upgrade(scratch_database)
    database = make_url(scratch_database).database
    with make_engine(make_url(admin_url).set(database=database)).begin() as connection:
        connection.execute(text("SET LOCAL allow_system_table_mods = on"))
        connection.execute(text("CREATE TABLE pg_catalog.pg_dist_local_group (groupid int)"))
        connection.execute(text("INSERT INTO pg_catalog.pg_dist_local_group VALUES (1)"))
        connection.execute(text("GRANT SELECT ON pg_catalog.pg_dist_local_group TO public"))
    engine = make_engine(scratch_database)
    close(engine, MAY)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE metering.terms_changes"))
    shipped, changed, _ = ROWS["kind_map"]
    with engine.begin() as connection:  # a worker: the closed month's row passes
        insert(connection, "kind_map", {**shipped, **changed}, MAY)
    assert changes(engine) == []
    with make_engine(make_url(admin_url).set(database=database)).begin() as connection:
        connection.execute(text("UPDATE pg_catalog.pg_dist_local_group SET groupid = 0"))
    message = refused(engine, lambda c: insert(c, "kind_map", {**shipped, **changed}, JANUARY))
    assert message.startswith(closed_message("kind_map", "2026-01"))  # the coordinator


# ---- in_effect ------------------------------------------------------------------------------


def rows_in_effect(engine, table, month: date, *columns: str) -> dict:
    """{term key: columns} of the rows in effect for `month`."""
    chosen = in_effect(table, month)
    keys = [chosen.c[c] for c in TERM_KEYS[table]]
    with engine.connect() as connection:
        rows = connection.execute(select(*keys, *(chosen.c[c] for c in columns))).all()
    n = len(keys)
    return {
        (row[0] if n == 1 else tuple(row[:n])): tuple(row[n:]) if len(columns) > 1 else row[n]
        for row in rows
    }


def test_in_effect_picks_the_latest_row_per_term_on_or_before_the_month(engine):
    with engine.begin() as connection:
        insert(connection, "plans", {"plan_code": "starter", "base_usd": 25}, JUNE)
        insert(connection, "plans", {"plan_code": "starter", "base_usd": 30}, date(2026, 9, 1))
        insert(connection, "plans", {"plan_code": "pro", "base_usd": 99}, JULY)

    def base(month: date) -> dict:
        return rows_in_effect(engine, plans, month, "base_usd")

    assert base(MAY) == {"starter": 20, "studio": 50, "agency": 150}  # pro not yet
    assert base(JUNE) == {"starter": 25, "studio": 50, "agency": 150}
    # Any day of a month reads that month's terms.
    assert base(date(2026, 6, 30)) == base(JUNE)
    assert base(date(2026, 7, 15)) == {"starter": 25, "studio": 50, "agency": 150, "pro": 99}
    assert base(date(2026, 9, 1))["starter"] == 30
    assert base(date(1969, 12, 31)) == {}  # before every row: no term at all


def test_in_effect_keys_a_term_by_every_column_naming_it(engine):
    with engine.begin() as connection:
        insert(
            connection,
            "plan_items",
            {"plan_code": "starter", "billing_kind": "droplet_hours", "included_qty": 500},
            JUNE,
        )
        insert(connection, "kind_map", {"inventory_kind": "spaces_bucket"}, JUNE)
    included = rows_in_effect(engine, plan_items, JUNE, "included_qty")
    # Only starter's droplet hours moved: its other kinds and the other plans keep theirs.
    assert included["starter", "droplet_hours"] == 500
    assert included["starter", "spaces_gb_month"] == 50
    assert included["studio", "droplet_hours"] == 2232
    assert (
        rows_in_effect(engine, plan_items, MAY, "included_qty")["starter", "droplet_hours"] == 744
    )
    kinds = rows_in_effect(engine, kind_map, JUNE, "billing_kind", "accrual")
    assert kinds["spaces_bucket"] == (None, None)  # known, no longer billable
    assert kinds["droplet"] == ("droplet_hours", "active_hours")
    assert rows_in_effect(engine, kind_map, MAY, "billing_kind", "accrual")["spaces_bucket"] == (
        "spaces_gb_month",
        "size_month",
    )


def test_in_effect_serves_every_terms_table(engine):
    for table in TERM_KEYS:
        chosen = in_effect(table, MAY)
        assert [c.name for c in chosen.c] == [c.name for c in table.c]
        with engine.connect() as connection:
            shipped = connection.execute(select(table)).all()
            assert sorted(connection.execute(select(chosen)).all()) == sorted(shipped)
