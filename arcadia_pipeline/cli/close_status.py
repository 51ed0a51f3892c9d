"""`arcadia-pipeline close-status --month YYYY-MM`: whether a billing month can close, as
JSON, from the warehouse alone (days/verdicts.py):

{"month": "2025-02", "can_close": false, "missing_days": ["2025-02-17"],
 "failed_checks": {"usage_records_complete": ["2025-02-03"]}, "stale_days": []}

missing_days: days some gating daily step has not written; failed_checks: per check, the
written days it has not passed since they were written (failed, or not run since); stale_days:
days with a month-to-date figure older than what it read. can_close: none of these.
"""

from __future__ import annotations

import json

from arcadia_pipeline.cli.output import add_month_option, check_month
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.settings import warehouse_url
from arcadia_pipeline.statements.closing import month_status
from arcadia_pipeline.utc import month_text


def cmd_close_status(args) -> None:
    check_month(args.month)
    with make_engine(warehouse_url()).connect() as connection:
        status = month_status(connection, args.month)
    answer = {
        "month": month_text(status.month),
        "can_close": status.can_close,
        "missing_days": [day.isoformat() for day in status.missing_days],
        "failed_checks": {
            check: [day.isoformat() for day in days] for check, days in status.failed_checks.items()
        },
        "stale_days": [day.isoformat() for day in status.stale_days],
    }
    print(json.dumps(answer, indent=2))


def add_close_status_command(commands) -> None:
    close_status = commands.add_parser(
        "close-status", help="whether a billing month's days are final, as JSON"
    )
    add_month_option(close_status)
    close_status.set_defaults(handler=cmd_close_status)
