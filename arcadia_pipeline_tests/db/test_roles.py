"""`arcadia-pipeline db roles` on the real server: what a pipeline login and an analyst login
may and may not do afterwards.

One database for the module, owned by the session's login (as `scripts/pg-cluster.sh` makes
`arcadia`): migrated, with source rows and January's partitions created by that owner, then
`db roles` run as the superuser through the console script, granting arcadia_pipeline to the
owner and to a fresh pipeline login, arcadia_analyst to a fresh analyst login.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.migrate import downgrade, upgrade
from arcadia_pipeline.db.partitions import ensure_month_partitions
from arcadia_pipeline.db.roles import ANALYST_ROLE, PIPELINE_ROLE
from arcadia_pipeline.db.source import create_source_tables
from arcadia_pipeline_tests.cli.test_cli import assert_one_line_error, cli, ok
from arcadia_pipeline_tests.conftest import create_database, drop_database
from arcadia_pipeline_tests.support import add_deployment, add_version, materialize_range, utc

NAME = f"arcadia_roles_{os.getpid()}"
PIPELINE_LOGIN = f"arcadia_test_pipeline_{os.getpid()}"
ANALYST_LOGIN = f"arcadia_test_analyst_{os.getpid()}"
DAY = date(2025, 3, 4)
SOURCE_TABLES = ("arcadia.deployment_versions", "arcadia.resource_versions")
WRITES = (
    "INSERT INTO {t} SELECT * FROM {t} LIMIT 1",
    "UPDATE {t} SET {c} = {c}",
    "DELETE FROM {t}",
    "TRUNCATE {t}",
)
KEY_COLUMN = {
    "arcadia.deployment_versions": "deployment_id",
    "arcadia.resource_versions": "resource_id",
    "metering.usage_records": "resource_id",
    "metering.plans": "plan_code",
    "metering.alembic_version": "version_num",
}


@dataclass
class Logins:
    admin: str  # the superuser, on the module's database
    owner: str  # the session's login: owns the database and schema arcadia
    pipeline: str  # a login granted arcadia_pipeline only
    analyst: str  # a login granted arcadia_analyst only


def url_as(base: str, user: str, password: str | None = None) -> str:
    url = make_url(base).set(username=user, database=NAME)
    if password is not None:
        url = url.set(password=password)
    return url.render_as_string(hide_password=False)


def roles_cli(url: str, *logins: str):
    return cli("db", "roles", *logins, url=url)


def denied(engine: Engine, sql: str) -> bool:
    """True when PostgreSQL refuses `sql` for lack of privilege (rolled back either way)."""
    with engine.connect() as connection:
        try:
            connection.execute(text(sql))
        except ProgrammingError as error:
            return type(error.orig).__name__ == "InsufficientPrivilege"
        finally:
            connection.rollback()
    return False


def privileges(engine: Engine) -> list:
    """Owners and ACLs of the two schemas and their relations, default ACLs, memberships."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT 'schema', nspname, pg_get_userbyid(nspowner), nspacl::text "
                "FROM pg_namespace WHERE nspname IN ('arcadia', 'metering') "
                "UNION ALL SELECT 'relation', c.oid::regclass::text, "
                "pg_get_userbyid(c.relowner), c.relacl::text FROM pg_class c "
                "WHERE c.relnamespace IN ('arcadia'::regnamespace, 'metering'::regnamespace) "
                "UNION ALL SELECT 'default', defaclnamespace::regnamespace::text, "
                "pg_get_userbyid(defaclrole), defaclacl::text FROM pg_default_acl "
                "UNION ALL SELECT 'member', r.rolname, m.rolname, NULL FROM pg_auth_members a "
                "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                "WHERE r.rolname IN (:p, :a) "
                "UNION ALL SELECT 'database', datname, pg_get_userbyid(datdba), datacl::text "
                "FROM pg_database WHERE datname = current_database() ORDER BY 1, 2, 3"
            ),
            {"p": PIPELINE_ROLE, "a": ANALYST_ROLE},
        ).all()


@pytest.fixture(scope="module")
def logins(server_url, admin_url):
    with make_engine(admin_url).connect() as connection:
        superuser = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        if not connection.execute(text(superuser)).scalar():
            pytest.fail("these tests create roles: ARCADIA_ADMIN_DATABASE_URL must be a superuser")
    owner = make_url(server_url).username
    create_database(admin_url, NAME, owner)
    owner_url = url_as(server_url, owner)
    upgrade(owner_url)
    owner_engine = make_engine(owner_url)
    with owner_engine.begin() as connection:
        create_source_tables(connection)
        ensure_month_partitions(connection, date(2025, 1, 1), date(2025, 1, 1))  # Jan-Mar
        # What a migration may add besides tables: a trigger function, an enum, a domain.
        connection.execute(
            text(
                "CREATE FUNCTION metering.roles_test_guard() RETURNS trigger "
                "LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"
            )
        )
        connection.execute(text("CREATE TYPE metering.roles_test_state AS ENUM ('a', 'b')"))
        connection.execute(
            text("CREATE DOMAIN metering.roles_test_qty AS numeric CHECK (VALUE >= 0)")
        )
    add_deployment(owner_engine, "dep-1", "starter")
    add_version(owner_engine, "droplet:1", "dep-1", "droplet", utc(2025, 3, 1), size_gb=25)
    add_version(owner_engine, "spaces:1", "dep-1", "spaces_bucket", utc(2025, 3, 4, 6), size_gb=40)

    passwords = {login: secrets.token_urlsafe(16) for login in (PIPELINE_LOGIN, ANALYST_LOGIN)}
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # Memberships are the cluster's: the owner's is undone afterwards unless it was there.
        owner_was_member = connection.execute(
            text(
                "SELECT to_regrole(:p) IS NOT NULL AND EXISTS (SELECT FROM pg_auth_members "
                "WHERE roleid = to_regrole(:p) AND member = to_regrole(:o))"
            ),
            {"p": PIPELINE_ROLE, "o": owner},
        ).scalar()
        for login, password in passwords.items():
            connection.execute(text(f"DROP ROLE IF EXISTS {login}"))
            connection.execute(text(f"CREATE ROLE {login} LOGIN PASSWORD '{password}'"))
    result = roles_cli(
        url_as(admin_url, make_url(admin_url).username),  # the superuser, on NAME
        *("--pipeline-login", owner, "--pipeline-login", PIPELINE_LOGIN),
        *("--analyst-login", ANALYST_LOGIN),
    )
    assert f"granted {PIPELINE_ROLE} to {PIPELINE_LOGIN}" in ok(result)
    urls = Logins(
        admin=url_as(admin_url, make_url(admin_url).username),
        owner=owner_url,
        pipeline=url_as(admin_url, PIPELINE_LOGIN, passwords[PIPELINE_LOGIN]),
        analyst=url_as(admin_url, ANALYST_LOGIN, passwords[ANALYST_LOGIN]),
    )
    yield urls
    for url in (urls.admin, urls.owner, urls.pipeline, urls.analyst):
        make_engine(url).dispose()
    drop_database(admin_url, NAME)  # its grants and default privileges go with it
    with admin.connect() as connection:
        for login in passwords:
            connection.execute(text(f"DROP ROLE IF EXISTS {login}"))
        if not owner_was_member:
            connection.execute(text(f'REVOKE {PIPELINE_ROLE} FROM "{owner}"'))


def test_the_group_roles_cannot_log_in_and_the_pipeline_owns_metering(logins):
    with make_engine(logins.admin).connect() as connection:
        can_login = dict(
            connection.execute(
                text("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN (:p, :a)"),
                {"p": PIPELINE_ROLE, "a": ANALYST_ROLE},
            ).all()
        )
        owners = connection.execute(
            text(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                "WHERE relnamespace = 'metering'::regnamespace AND relkind IN ('r', 'p', 'S') "
                "UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                "WHERE nspname = 'metering' "
                "UNION SELECT pg_get_userbyid(proowner) FROM pg_proc "
                "WHERE pronamespace = 'metering'::regnamespace "
                "UNION SELECT pg_get_userbyid(typowner) FROM pg_type "
                "WHERE typnamespace = 'metering'::regnamespace "
                "UNION SELECT pg_get_userbyid(stxowner) FROM pg_statistic_ext "
                "WHERE stxnamespace = 'metering'::regnamespace"
            )
        ).scalars()
        assert can_login == {PIPELINE_ROLE: False, ANALYST_ROLE: False}
        # Including January's partitions and their statistics objects, alembic_version, the
        # function, enum and domain (and every table's row type), made by the owner before.
        assert set(owners) == {PIPELINE_ROLE}


def test_running_it_again_changes_nothing(logins):
    args = ("--pipeline-login", PIPELINE_LOGIN, "--analyst-login", ANALYST_LOGIN)
    ok(roles_cli(logins.admin, *args))  # hands over whatever other tests created since
    before = privileges(make_engine(logins.admin))
    printed = ok(roles_cli(logins.admin, *args))
    assert privileges(make_engine(logins.admin)) == before
    assert "roles created: none" in printed and "(0 handed over now)" in printed
    assert "granted" not in printed


def test_a_pipeline_login_meters_a_day(logins, monkeypatch):
    monkeypatch.setenv("ARCADIA_DATABASE_URL", logins.pipeline)
    monkeypatch.delenv("ARCADIA_SOURCE_DATABASE_URL", raising=False)
    result = materialize_range(DAY, DAY)
    assert result.success
    pipeline = make_engine(logins.pipeline)
    with pipeline.connect() as connection:
        records = connection.execute(
            text("SELECT resource_id, qty FROM metering.usage_records ORDER BY 1")
        ).all()
        # The run created the months ahead itself (the login owns them until a re-run of
        # `db roles` hands them to the group role).
        may_owner = connection.execute(
            text(
                "SELECT pg_get_userbyid(relowner) FROM pg_class "
                "WHERE oid = 'metering.usage_records_2025_05'::regclass"
            )
        ).scalar_one()
    assert [r.resource_id for r in records] == ["droplet:1", "spaces:1"]
    assert may_owner in (PIPELINE_LOGIN, PIPELINE_ROLE)
    # What the statistics and retention do to partitions the owner created before `db roles`:
    # ANALYZE (a non-owner only gets a "skipping" warning) and DROP.
    with pipeline.connect() as connection:
        notices = connection.connection.dbapi_connection.notices
        notices.clear()
        connection.execute(text("ANALYZE metering.usage_records_2025_03"))
        connection.execute(text("DROP TABLE metering.resource_inventory_2025_01"))
        connection.rollback()
    assert not [notice for notice in notices if "skipping" in notice], notices


def test_a_pipeline_login_cannot_write_the_source(logins):
    pipeline = make_engine(logins.pipeline)
    with pipeline.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM arcadia.deployment_versions")).scalar()
    for table in SOURCE_TABLES:
        for sql in WRITES:
            statement = sql.format(t=table, c=KEY_COLUMN[table])
            assert denied(pipeline, statement), statement
    assert denied(pipeline, "CREATE TABLE arcadia.extra (x int)")
    assert denied(pipeline, "ALTER TABLE arcadia.deployment_versions ADD COLUMN x int")
    assert denied(pipeline, "CREATE SCHEMA elsewhere")


def test_an_analyst_reads_metering_and_writes_nothing(logins, monkeypatch):
    monkeypatch.setenv("ARCADIA_DATABASE_URL", logins.pipeline)
    monkeypatch.delenv("ARCADIA_SOURCE_DATABASE_URL", raising=False)
    assert materialize_range(DAY, DAY).success  # partitions and rows the pipeline login made
    analyst = make_engine(logins.analyst)
    with analyst.connect() as connection:
        relations = connection.execute(
            text(
                "SELECT oid::regclass::text FROM pg_class WHERE relkind IN ('r', 'p') "
                "AND relnamespace = 'metering'::regnamespace ORDER BY 1"
            )
        ).scalars()
        relations = list(relations)
        assert "metering.usage_records_2025_05" in relations
        for relation in relations:  # every table and partition, whoever created it
            connection.execute(text(f"SELECT count(*) FROM {relation}"))
        assert connection.execute(text("SELECT count(*) FROM metering.usage_records")).scalar()
    for table in ("metering.usage_records", "metering.plans", "metering.alembic_version"):
        for sql in WRITES:
            statement = sql.format(t=table, c=KEY_COLUMN[table])
            assert denied(analyst, statement), statement
    assert denied(analyst, "CREATE TABLE metering.extra (x int)")
    assert denied(analyst, "SELECT count(*) FROM arcadia.deployment_versions")
    for table in SOURCE_TABLES:
        assert denied(analyst, f"DELETE FROM {table}")


def test_the_owner_in_the_pipeline_role_migrates_and_a_rerun_hands_over_new_tables(logins):
    # 0010 alters resource_inventory, which recurses to every partition: only their owner
    # may. The partitions a pipeline login made since are handed over first, as before any
    # `db upgrade` (README, Least privilege).
    ok(roles_cli(logins.admin))
    downgrade(logins.owner, "0002")  # drops day_writes, which arcadia_pipeline owned
    upgrade(logins.owner)
    admin = make_engine(logins.admin)
    with admin.connect() as connection:
        owner_of = "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(:t)"
        new_owner = connection.execute(text(owner_of), {"t": "metering.day_writes"}).scalar()
    assert new_owner == make_url(logins.owner).username
    # Readable at once by analysts (default privileges of the members), owned after a re-run.
    with make_engine(logins.analyst).connect() as connection:
        connection.execute(text("SELECT count(*) FROM metering.day_writes"))
    ok(roles_cli(logins.admin))
    with admin.connect() as connection:
        new_owner = connection.execute(text(owner_of), {"t": "metering.day_writes"}).scalar()
    assert new_owner == PIPELINE_ROLE


def test_a_pipeline_login_that_does_not_own_the_database_migrates(logins):
    upgrade(logins.pipeline)


def test_bad_uses_fail_with_one_line(logins, admin_url):
    assert_one_line_error(
        roles_cli(logins.analyst), "superuser or the owner", f"database {NAME}", ANALYST_LOGIN
    )
    assert_one_line_error(
        roles_cli(logins.admin, "--pipeline-login", "no_such_login"), "'no_such_login'"
    )
    assert_one_line_error(
        roles_cli(logins.admin, "--analyst-login", PIPELINE_ROLE), PIPELINE_ROLE, "group role"
    )
    elsewhere = make_url(admin_url).set(database="postgres").render_as_string(hide_password=False)
    assert_one_line_error(roles_cli(elsewhere), "schema metering does not exist", "db upgrade")
