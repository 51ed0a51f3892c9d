"""`arcadia-pipeline db upgrade` and `db roles`: the warehouse's schema and its roles."""

from __future__ import annotations

from arcadia_pipeline.cli.output import CliError
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.settings import warehouse_url


def cmd_db_upgrade(args) -> None:
    from arcadia_pipeline.db.migrate import upgrade

    upgrade(warehouse_url())
    print("metering schema is at the latest migration")


def cmd_db_roles(args) -> None:
    from arcadia_pipeline.db.roles import ANALYST_ROLE, PIPELINE_ROLE, RolesError, apply_roles

    try:
        with make_engine(args.database_url or warehouse_url()).begin() as connection:
            summary = apply_roles(
                connection,
                pipeline_logins=args.pipeline_login,
                analyst_logins=args.analyst_login,
            )
    except RolesError as error:
        raise CliError(str(error)) from error
    created = ", ".join(summary.created) or "none (both existed)"
    print(f"database {summary.database}: roles created: {created}")
    print(
        f"{PIPELINE_ROLE} owns schema metering and its {summary.owned} relations and routines "
        f"({summary.handed_over} handed over now); {ANALYST_ROLE} may read them"
    )
    if summary.source_schema:
        print(f"{PIPELINE_ROLE} may read schema arcadia and write nothing in it")
    else:
        print(
            "no schema arcadia in this database: grant the pipeline's login read access where "
            "the source lives (ARCADIA_SOURCE_DATABASE_URL)"
        )
    for role, login in summary.granted:
        print(f"granted {role} to {login}")


def add_db_commands(commands) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations to ARCADIA_DATABASE_URL").set_defaults(
        handler=cmd_db_upgrade
    )
    roles = db.add_parser(
        "roles", help="create the arcadia_pipeline and arcadia_analyst roles and grant them"
    )
    roles.add_argument(
        "--pipeline-login",
        action="append",
        default=[],
        metavar="ROLE",
        help="a login role to grant arcadia_pipeline (repeatable)",
    )
    roles.add_argument(
        "--analyst-login",
        action="append",
        default=[],
        metavar="ROLE",
        help="a login role to grant arcadia_analyst (repeatable)",
    )
    roles.add_argument(
        "--database-url",
        metavar="URL",
        help="the warehouse, as a superuser (default: ARCADIA_DATABASE_URL)",
    )
    roles.set_defaults(handler=cmd_db_roles)
