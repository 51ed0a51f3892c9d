"""`arcadia-pipeline`: database set-up, demo data and ad-hoc usage/quote look-ups.

arcadia-pipeline db upgrade
arcadia-pipeline db roles [--pipeline-login ROLE]... [--analyst-login ROLE]... [--database-url URL]
arcadia-pipeline demo seed [--deployments N] [--days D] [--seed S] [--end-date YYYY-MM-DD]
arcadia-pipeline usage DEPLOYMENT --from YYYY-MM-DD --to YYYY-MM-DD
arcadia-pipeline quote DEPLOYMENT --as-of YYYY-MM-DD
arcadia-pipeline quotes --as-of YYYY-MM-DD      (the materialised quotes, as a table)
arcadia-pipeline statement DEPLOYMENT --month YYYY-MM
arcadia-pipeline statements --month YYYY-MM --format csv|parquet --output PATH

`db roles` sets up least privilege in the warehouse (ARCADIA_DATABASE_URL, or --database-url),
idempotently and in one transaction (arcadia_pipeline/db/roles.py says exactly what):
  arcadia_pipeline  NOLOGIN group role: reads schema `arcadia` (no write privilege on it) and
                    owns schema `metering` and everything in it (tables, partitions,
                    sequences, routines, types);
  arcadia_analyst   NOLOGIN group role: SELECT on the metering tables, now and in future.
--pipeline-login / --analyst-login grant them to existing login roles (repeatable). Connect as
a superuser (scripts/pg-cluster.sh prints ARCADIA_ADMIN_DATABASE_URL), after `db upgrade`, and
run it again after a later `db upgrade` so that new tables belong to arcadia_pipeline too:

    ARCADIA_DATABASE_URL="$ARCADIA_ADMIN_DATABASE_URL" arcadia-pipeline db roles \\
        --pipeline-login warehouse --analyst-login analyst

(the variable rather than --database-url keeps the password off the process list).

`demo seed` replaces the rows of source tables it created itself (they carry a comment saying
so) and refuses, writing nothing, when arcadia.deployments or arcadia.resource_versions exist
without that mark: they are then someone else's data.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from arcadia_pipeline.billing.pricing import Quote
from arcadia_pipeline.billing.usage import month_to_date_quote, usage_for_period
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import deployment_quotes, inventory_deployments
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.inventory.source import deployments
from arcadia_pipeline.settings import SettingsError, source_url, warehouse_url
from arcadia_pipeline.statements.commands import add_statement_commands
from arcadia_pipeline.utc import iter_days


class CliError(Exception):
    """A one-line message for the user; the command exits non-zero."""


def decimal_str(value: Decimal) -> str:
    """Exact decimal without exponent or trailing zeros ('24', '0.032258064516129032')."""
    text_value = format(value, "f")
    if "." in text_value:
        text_value = text_value.rstrip("0").rstrip(".")
    return text_value or "0"


def iso_date(value: str) -> date:
    # fromisoformat alone also takes 20250219 and 2025-W08-3.
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def plan_of(deployment_id: str, day: date | None = None) -> str:
    """The deployment's plan: as the day's inventory snapshot has it (what its materialised
    quote used), else from the source now; an unknown deployment is an error."""
    if day is not None:
        with make_engine(warehouse_url()).connect() as warehouse:
            plan = warehouse.execute(
                select(inventory_deployments.c.plan_code).where(
                    inventory_deployments.c.day == day,
                    inventory_deployments.c.deployment_id == deployment_id,
                )
            ).scalar_one_or_none()
        if plan is not None:
            return plan
    with make_engine(source_url()).connect() as source:
        plan = source.execute(
            select(deployments.c.plan_code).where(deployments.c.deployment_id == deployment_id)
        ).scalar_one_or_none()
    if plan is None:
        raise CliError(f"unknown deployment {deployment_id!r} (not in arcadia.deployments)")
    return plan


def quote_json(quote: Quote) -> dict:
    return {
        "deployment_id": quote.deployment_id,
        "plan_code": quote.plan_code,
        "period_start": quote.period_start.isoformat(),
        "as_of": quote.as_of.isoformat(),
        "base_usd": str(quote.base_usd),
        "lines": [
            {
                "billing_kind": line.billing_kind,
                "usage": decimal_str(line.usage),
                "included": decimal_str(line.included),
                "overage_qty": decimal_str(line.overage_qty),
                "overage_usd": str(line.overage_usd),
            }
            for line in quote.lines
        ],
        "total_usd": str(quote.total_usd),
    }


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


def cmd_demo_seed(args) -> None:
    from arcadia_pipeline.demo.seed import seed_demo

    try:
        with make_engine(source_url()).begin() as connection:
            summary = seed_demo(
                connection,
                deployments=args.deployments,
                days=args.days,
                seed=args.seed,
                end_date=args.end_date,
            )
    except ValueError as error:
        raise CliError(str(error)) from error
    print(
        f"seeded {summary.deployments} deployments, {summary.resources} resources, "
        f"{summary.versions} versions ({summary.unattributed_resources} never attributed) "
        f"from {summary.start:%Y-%m-%d} to {summary.end:%Y-%m-%d}"
    )


def not_after_today(option: str, day: date) -> None:
    """Nothing after today (UTC) can have been metered."""
    today = datetime.now(UTC).date()
    if day > today:
        raise CliError(f"{option} {day} is after today ({today}, UTC): nothing is metered yet")


def unmetered_days(connection: Connection, first: date, last: date) -> list[date]:
    """Days of [first, last] without materialised quotes: the last asset of a metered day."""
    q = deployment_quotes.c
    metered = set(
        connection.execute(
            select(q.as_of_date).distinct().where(q.as_of_date.between(first, last))
        ).scalars()
    )
    return [day for day in iter_days(first, last) if day not in metered]


def cmd_usage(args) -> None:
    if args.start > args.end:
        raise CliError(f"--from {args.start} is after --to {args.end}")
    not_after_today("--to", args.end)
    plan_of(args.deployment)
    with make_engine(warehouse_url()).connect() as connection:
        usage = usage_for_period(connection, args.deployment, args.start, args.end)
        missing = unmetered_days(connection, args.start, args.end)
    if missing:  # the figures are printed, but never silently short
        print(
            f"arcadia-pipeline: warning: {len(missing)} day(s) of the range are not metered "
            f"({missing[0]} to {missing[-1]}); the usage leaves them out",
            file=sys.stderr,
        )
    print(json.dumps({kind: decimal_str(qty) for kind, qty in usage.items()}, indent=2))


def cmd_quote(args) -> None:
    not_after_today("--as-of", args.as_of)
    with make_engine(warehouse_url()).connect() as connection:
        if unmetered_days(connection, args.as_of, args.as_of):
            raise CliError(
                f"{args.as_of} is not metered (no deployment_quotes as of that day): "
                "materialise it first"
            )
    plan = plan_of(args.deployment, args.as_of)
    with make_engine(warehouse_url()).connect() as connection:
        quote = month_to_date_quote(connection, args.deployment, plan, args.as_of)
    print(json.dumps(quote_json(quote), indent=2))


def quotes_table(connection: Connection, as_of: date) -> str:
    q = deployment_quotes.c
    rows = connection.execute(
        select(q.deployment_id, q.plan_code, q.base_usd, q.overage_usd, q.total_usd)
        .where(q.as_of_date == as_of)
        .order_by(q.deployment_id)
    ).all()
    if not rows:
        return f"no materialised quotes as of {as_of} (materialise deployment_quotes first)"
    header = f"{'deployment':<14}{'plan':<10}{'base USD':>12}{'overage USD':>14}{'total USD':>12}"
    lines = [f"Month-to-date quotes as of {as_of}", header, "-" * len(header)]
    lines += [f"{d:<14}{p:<10}{b:>12}{o:>14}{t:>12}" for d, p, b, o, t in rows]
    total = sum((row.total_usd for row in rows), Decimal(0))
    lines += ["-" * len(header), f"{'total':<24}{'':>12}{'':>14}{total:>12}"]
    return "\n".join(lines)


def cmd_quotes(args) -> None:
    not_after_today("--as-of", args.as_of)
    with make_engine(warehouse_url()).connect() as connection:
        print(quotes_table(connection, args.as_of))


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr (not the usage block) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="arcadia-pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

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

    demo = commands.add_parser("demo", help="demo data").add_subparsers(
        dest="demo_command", required=True
    )
    seed = demo.add_parser("seed", help="create and fill the arcadia source tables")
    seed.add_argument("--deployments", type=int, default=40)
    seed.add_argument("--days", type=int, default=75)
    seed.add_argument("--seed", type=int, default=7)
    seed.add_argument("--end-date", type=iso_date, default=None, help="default: today (UTC)")
    seed.set_defaults(handler=cmd_demo_seed)

    usage = commands.add_parser("usage", help="usage_for_period as JSON")
    usage.add_argument("deployment")
    usage.add_argument("--from", dest="start", type=iso_date, required=True)
    usage.add_argument("--to", dest="end", type=iso_date, required=True)
    usage.set_defaults(handler=cmd_usage)

    quote = commands.add_parser("quote", help="month-to-date quote as JSON")
    quote.add_argument("deployment")
    quote.add_argument("--as-of", type=iso_date, required=True)
    quote.set_defaults(handler=cmd_quote)

    quotes = commands.add_parser("quotes", help="materialised month-to-date quotes as a table")
    quotes.add_argument("--as-of", type=iso_date, required=True)
    quotes.set_defaults(handler=cmd_quotes)

    add_statement_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # bad arguments: argparse prints one line and exits 2
    try:
        args.handler(args)
    except (CliError, SettingsError, BadSourceData) as error:
        # BadSourceData: data the command cannot price (a plan or price missing from the
        # catalog), said in one line like a bad argument.
        print(f"arcadia-pipeline: error: {error}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        first_line = str(error.orig if getattr(error, "orig", None) else error).splitlines()[0]
        print(f"arcadia-pipeline: database error: {first_line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
