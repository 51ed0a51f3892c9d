"""`arcadia-pipeline reconcile --from YYYY-MM-DD --to YYYY-MM-DD`: the metered days of the
range whose source, as it is now, differs from their snapshot, with the deployments that
differ, as JSON; writes nothing (inventory/reconciliation.py):

{"from": "2026-05-01", "to": "2026-05-31", "metered_days": 31,
 "differing": {"2026-05-14": ["dep-a", "dep-b"]}}

A deployment '' stands for the resources attributed to none. The reconciliation job records
such findings and the days are metered again; this command only looks.
"""

from __future__ import annotations

import json

from sqlalchemy import func, select

from arcadia_pipeline.cli.output import DATES_NOTE, CliError, add_day_range, not_after_today
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import inventory_snapshots
from arcadia_pipeline.inventory.reconciliation import differing_days
from arcadia_pipeline.settings import (
    WAREHOUSE_URL_VAR,
    source_url,
    source_url_var,
    warehouse_url,
)


def cmd_reconcile(args) -> None:
    if args.start > args.end:
        raise CliError(f"--from {args.start} is after --to {args.end}")
    not_after_today("--to", args.end)
    warehouse = make_engine(warehouse_url())
    same_database = source_url_var() == WAREHOUSE_URL_VAR
    source = None if same_database else make_engine(source_url())
    with warehouse.connect() as connection:
        s = inventory_snapshots.c
        metered = connection.execute(
            select(func.count()).where(s.day.between(args.start, args.end))
        ).scalar_one()
        found = differing_days(connection, source, args.start, args.end)
        connection.rollback()  # only temp tables were written: nothing is kept
    answer = {
        "from": args.start.isoformat(),
        "to": args.end.isoformat(),
        "metered_days": metered,
        "differing": {day.isoformat(): deployments for day, deployments in found.items()},
    }
    print(json.dumps(answer, indent=2))


def add_reconcile_command(commands) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="the metered days whose source now differs from their snapshot, as JSON",
        description="The metered days of the range whose source now differs from their "
        "snapshot, with the deployments that differ, as JSON; writes nothing.",
        epilog=DATES_NOTE,
    )
    add_day_range(reconcile)
    reconcile.set_defaults(handler=cmd_reconcile)
