"""`arcadia-pipeline db roles`: the least-privilege group roles of the warehouse, in one
transaction, idempotent.

`arcadia_pipeline` (NOLOGIN) reads the source and writes only the metering schema:
  - USAGE on schema `arcadia` and SELECT on its tables, now and (default privileges of the
    roles owning it) in future; no write privilege there, nor CREATE in it;
  - OWNER of schema `metering` and of every table, partition, sequence, routine, type and
    statistics object in it: the pipeline creates monthly partitions, ANALYZEs them and
    drops expired ones, which only an owner may; a login granted the role (with INHERIT)
    gets all of that;
  - CONNECT and TEMPORARY on the database (the inventory is staged in temp tables).
`arcadia_analyst` (NOLOGIN) reads the metering schema and nothing else: USAGE on it and
SELECT on its tables now and in future (default privileges of `arcadia_pipeline` and of
each role in it, since a table belongs to whichever login created it).

Run it as a superuser (or as the database owner once the roles exist and it is a member of
`arcadia_pipeline`), after `db upgrade`: relations a migration or a login creates later are
owned by that login; running it again hands them to `arcadia_pipeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from arcadia_pipeline.db.schema import SCHEMA
from arcadia_pipeline.db.source import SOURCE_SCHEMA

PIPELINE_ROLE = "arcadia_pipeline"
ANALYST_ROLE = "arcadia_analyst"
GROUP_ROLES = (PIPELINE_ROLE, ANALYST_ROLE)
# Every table privilege but SELECT: what the read-only grants take away again.
WRITE_PRIVILEGES = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
_ALTER = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}


class RolesError(ValueError):
    """The roles cannot be set up from this connection; one line for the user."""


@dataclass(frozen=True)
class RolesSummary:
    database: str
    created: tuple[str, ...]  # group roles created by this run
    granted: tuple[tuple[str, str], ...]  # (group role, login) memberships granted now
    handed_over: int  # metering relations, routines and types whose owner this run changed
    owned: int  # metering relations and routines owned by arcadia_pipeline afterwards
    source_schema: bool  # schema arcadia is in this database (and was granted)


def _scalar(connection: Connection, sql: str, **params):
    return connection.execute(text(sql), params).scalar()


def _exists(connection: Connection, role: str) -> bool:
    return bool(_scalar(connection, "SELECT count(*) FROM pg_roles WHERE rolname = :r", r=role))


def _check_logins(connection: Connection, logins: Sequence[str]) -> None:
    for login in logins:
        if login in GROUP_ROLES:
            raise RolesError(f"{login} is one of the group roles, not a login to grant it to")
        row = connection.execute(
            text("SELECT rolinherit FROM pg_roles WHERE rolname = :r"), {"r": login}
        ).one_or_none()
        if row is None:
            raise RolesError(
                f"role {login!r} does not exist: create the login first "
                f"(CREATE ROLE {login} LOGIN PASSWORD '...')"
            )
        if not row.rolinherit:
            raise RolesError(
                f"role {login!r} is NOINHERIT: it would not have the group role's privileges"
            )


def apply_roles(
    connection: Connection,
    *,
    pipeline_logins: Sequence[str] = (),
    analyst_logins: Sequence[str] = (),
) -> RolesSummary:
    """Create and grant the group roles in the connection's database (the caller commits)."""
    q = connection.dialect.identifier_preparer.quote
    me = connection.execute(
        text(
            "SELECT current_user AS name, current_database() AS database, r.rolsuper, "
            "r.rolcreaterole, pg_has_role(current_user, d.datdba, 'MEMBER') AS owns_database "
            "FROM pg_roles r, pg_database d "
            "WHERE r.rolname = current_user AND d.datname = current_database()"
        )
    ).one()
    if not (me.rolsuper or me.owns_database):
        raise RolesError(
            f"db roles needs a superuser or the owner of database {me.database} "
            f"(connected as {me.name})"
        )
    if _scalar(connection, "SELECT to_regnamespace(:s)", s=SCHEMA) is None:
        raise RolesError(
            f"schema {SCHEMA} does not exist in database {me.database}: "
            "run `arcadia-pipeline db upgrade` first"
        )
    _check_logins(connection, [*pipeline_logins, *analyst_logins])
    source_owners: list[str] = []
    if _scalar(connection, "SELECT to_regnamespace(:s)", s=SOURCE_SCHEMA) is not None:
        # Who may grant on the source: its schema's owner and the owners of its relations.
        source_owners = list(
            connection.execute(
                text(
                    "SELECT DISTINCT pg_get_userbyid(owner) FROM ("
                    " SELECT nspowner AS owner FROM pg_namespace WHERE nspname = :s"
                    " UNION SELECT relowner FROM pg_class"
                    " WHERE relnamespace = to_regnamespace(:s)) o ORDER BY 1"
                ),
                {"s": SOURCE_SCHEMA},
            ).scalars()
        )
        foreign = [
            owner
            for owner in source_owners
            if not _scalar(connection, "SELECT pg_has_role(current_user, :o, 'MEMBER')", o=owner)
        ]
        if foreign:  # GRANT would only warn, leaving the pipeline unable to read
            raise RolesError(
                f"schema {SOURCE_SCHEMA} belongs to {', '.join(foreign)}, not {me.name}: "
                "run db roles as a superuser"
            )

    created = []
    for role in GROUP_ROLES:
        if _exists(connection, role):
            continue
        if not (me.rolsuper or me.rolcreaterole):
            raise RolesError(
                f"role {role} does not exist and {me.name} may not create roles: "
                "run db roles as a superuser"
            )
        connection.execute(text(f"CREATE ROLE {q(role)} NOLOGIN"))
        created.append(role)

    granted = []
    for role, logins in ((PIPELINE_ROLE, pipeline_logins), (ANALYST_ROLE, analyst_logins)):
        for login in dict.fromkeys(logins):
            # USAGE: has the role's privileges (directly or through another role).
            if not _scalar(connection, "SELECT pg_has_role(:l, :r, 'USAGE')", l=login, r=role):
                connection.execute(text(f"GRANT {q(role)} TO {q(login)}"))
                granted.append((role, login))

    database = q(me.database)
    connection.execute(text(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {PIPELINE_ROLE}"))
    connection.execute(text(f"GRANT CONNECT ON DATABASE {database} TO {ANALYST_ROLE}"))

    # The pipeline owns the metering schema and everything in it. A sequence owned by a
    # column (bigserial) follows its table and cannot be given away on its own.
    handed_over = 0
    if _scalar(
        connection,
        "SELECT pg_get_userbyid(nspowner) <> :r FROM pg_namespace WHERE nspname = :s",
        r=PIPELINE_ROLE,
        s=SCHEMA,
    ):
        connection.execute(text(f"ALTER SCHEMA {SCHEMA} OWNER TO {PIPELINE_ROLE}"))
    relations = connection.execute(
        text(
            "SELECT c.relname, c.relkind FROM pg_class c "
            "WHERE c.relnamespace = to_regnamespace(:s) "
            "AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') "
            "AND pg_get_userbyid(c.relowner) <> :r "
            "AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
            " AND d.objid = c.oid AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')) "
            "ORDER BY c.relname"
        ),
        {"s": SCHEMA, "r": PIPELINE_ROLE},
    ).all()
    objects = [
        ("SEQUENCE" if kind == "S" else _ALTER[kind], f"{SCHEMA}.{q(name)}")
        for name, kind in relations
    ]
    # Routines (trigger functions a migration made), free-standing types and the partitions'
    # statistics objects: a later migration that replaces or drops them needs to own them
    # too, and a retired login that still owned one could not be dropped.
    others = connection.execute(
        text(
            "SELECT 'ROUTINE', format('%I.%I(%s)', :s, proname, "
            " pg_get_function_identity_arguments(oid)) FROM pg_proc "
            "WHERE pronamespace = to_regnamespace(:s) AND pg_get_userbyid(proowner) <> :r "
            "UNION ALL SELECT CASE typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, "
            " format('%I.%I', :s, typname) FROM pg_type t "
            "WHERE typnamespace = to_regnamespace(:s) AND pg_get_userbyid(typowner) <> :r "
            "AND typtype IN ('c', 'd', 'e', 'r') AND typcategory <> 'A' AND (typrelid = 0 "
            " OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') "
            "UNION ALL SELECT 'STATISTICS', format('%I.%I', :s, stxname) FROM pg_statistic_ext "
            "WHERE stxnamespace = to_regnamespace(:s) AND pg_get_userbyid(stxowner) <> :r"
        ),
        {"s": SCHEMA, "r": PIPELINE_ROLE},
    ).all()
    for what, name in [*objects, *others]:
        connection.execute(text(f"ALTER {what} {name} OWNER TO {PIPELINE_ROLE}"))
        handed_over += 1
    owned = _scalar(
        connection,
        "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace(:s) "
        " AND relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND pg_get_userbyid(relowner) = :r) "
        "+ (SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace(:s) "
        " AND pg_get_userbyid(proowner) = :r)",
        s=SCHEMA,
        r=PIPELINE_ROLE,
    )

    # Analysts: read the metering schema, write nothing in it.
    connection.execute(text(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {ANALYST_ROLE}"))
    connection.execute(text(f"REVOKE CREATE ON SCHEMA {SCHEMA} FROM {ANALYST_ROLE}"))
    connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {ANALYST_ROLE}"))
    connection.execute(
        text(f"REVOKE {WRITE_PRIVILEGES} ON ALL TABLES IN SCHEMA {SCHEMA} FROM {ANALYST_ROLE}")
    )
    # Future tables (partitions, migrations) belong to whoever creates them: the group
    # role, or one of its members; set their defaults too, where this connection may.
    creators = [PIPELINE_ROLE] + list(
        connection.execute(
            text(
                "SELECT DISTINCT pg_get_userbyid(m.member) FROM pg_auth_members m "
                "WHERE m.roleid = to_regrole(:r) "
                "AND pg_has_role(current_user, m.member, 'MEMBER') ORDER BY 1"
            ),
            {"r": PIPELINE_ROLE},
        ).scalars()
    )
    for creator in creators:
        connection.execute(
            text(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(creator)} IN SCHEMA {SCHEMA} "
                f"GRANT SELECT ON TABLES TO {ANALYST_ROLE}"
            )
        )

    # The pipeline: read the source, never write it.
    if source_owners:
        connection.execute(text(f"GRANT USAGE ON SCHEMA {SOURCE_SCHEMA} TO {PIPELINE_ROLE}"))
        connection.execute(text(f"REVOKE CREATE ON SCHEMA {SOURCE_SCHEMA} FROM {PIPELINE_ROLE}"))
        connection.execute(
            text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SOURCE_SCHEMA} TO {PIPELINE_ROLE}")
        )
        connection.execute(
            text(
                f"REVOKE {WRITE_PRIVILEGES} ON ALL TABLES IN SCHEMA {SOURCE_SCHEMA} "
                f"FROM {PIPELINE_ROLE}"
            )
        )
        for owner in source_owners:
            connection.execute(
                text(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(owner)} IN SCHEMA {SOURCE_SCHEMA} "
                    f"GRANT SELECT ON TABLES TO {PIPELINE_ROLE}"
                )
            )

    return RolesSummary(
        database=me.database,
        created=tuple(created),
        granted=tuple(granted),
        handed_over=handed_over,
        owned=owned,
        source_schema=bool(source_owners),
    )
