"""`arcadia-pipeline`: database set-up, demo data, usage and quote look-ups, statements.

arcadia-pipeline db upgrade
arcadia-pipeline db roles [--pipeline-login ROLE]... [--analyst-login ROLE]... [--database-url URL]
arcadia-pipeline demo seed [--deployments N] [--days D] [--seed S] [--end-date YYYY-MM-DD]
arcadia-pipeline demo delete-resource RESOURCE_ID --at YYYY-MM-DDTHH:MM:SSZ   (back-dated)
arcadia-pipeline usage DEPLOYMENT --from YYYY-MM-DD --to YYYY-MM-DD
arcadia-pipeline quote DEPLOYMENT --as-of YYYY-MM-DD
arcadia-pipeline quotes --as-of YYYY-MM-DD      (the materialised quotes, as a table)
arcadia-pipeline statement DEPLOYMENT --month YYYY-MM
arcadia-pipeline statements --month YYYY-MM [--format csv|parquet] --output PATH
arcadia-pipeline close-status --month YYYY-MM    (whether a month can close, as JSON)
arcadia-pipeline reconcile --from YYYY-MM-DD --to YYYY-MM-DD   (days the source now changes)

Dates are UTC days (YYYY-MM-DD), months UTC billing months (YYYY-MM); --from/--to include
both days.

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
so) and refuses, writing nothing, when arcadia.deployment_versions or arcadia.resource_versions
exist without that mark: they are then someone else's data. `demo delete-resource` (a late,
back-dated deletion of a resource, as the walk-through of README "Month close" uses) refuses
such tables alike.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from arcadia_pipeline.cli.close_status import add_close_status_command
from arcadia_pipeline.cli.db import add_db_commands
from arcadia_pipeline.cli.demo import add_demo_commands
from arcadia_pipeline.cli.output import DATES_NOTE, CliError
from arcadia_pipeline.cli.reconcile import add_reconcile_command
from arcadia_pipeline.cli.statements import add_statement_commands
from arcadia_pipeline.cli.usage import add_usage_commands
from arcadia_pipeline.errors import BadSourceData
from arcadia_pipeline.settings import SettingsError


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr (not the usage block) and exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="arcadia-pipeline", description=__doc__.split("\n")[0], epilog=DATES_NOTE
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_db_commands(commands)
    add_demo_commands(commands)
    add_usage_commands(commands)
    add_statement_commands(commands)
    add_close_status_command(commands)
    add_reconcile_command(commands)
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
