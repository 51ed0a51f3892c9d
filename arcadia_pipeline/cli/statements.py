"""`arcadia-pipeline statement` and `statements`: a month's statements for the quote engine
(JSON) and for finance (CSV or Parquet).

arcadia-pipeline statement DEPLOYMENT --month YYYY-MM
arcadia-pipeline statements --month YYYY-MM [--format csv|parquet] --output PATH

Both read what monthly_usage_statements wrote (a draft or the closed statement, with every
adjustment since); bad arguments write nothing and exit non-zero with one line on stderr.
`statements` takes its format from the output's name (.csv, .parquet) when --format is not
given, and refuses a --format the name contradicts (Parquet in oct.csv).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, select

from arcadia_pipeline.cli.deployments import UNKNOWN, known_deployment
from arcadia_pipeline.cli.output import (
    CliError,
    add_month_option,
    check_month,
)
from arcadia_pipeline.cli.stale import warn_if_stale
from arcadia_pipeline.cli.usage import minimum_json, tiers_json
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import (
    monthly_statement_lines,
    monthly_statements,
    statement_adjustments,
    statement_months,
)
from arcadia_pipeline.flow import USAGE_RECORDS
from arcadia_pipeline.pricing.proration import plan_periods
from arcadia_pipeline.pricing.rules import decimal_text, money_text
from arcadia_pipeline.pricing.terms import load_tiers
from arcadia_pipeline.pricing.tiers import tier_charges
from arcadia_pipeline.settings import warehouse_url
from arcadia_pipeline.statements.export import (
    FORMATS,
    format_of_name,
    statement_rows,
    write_statements,
)
from arcadia_pipeline.utc import month_end


def priced(connection: Connection, month: date) -> bool:
    m = statement_months.c
    return connection.execute(select(m.month).where(m.month == month)).first() is not None


def _plan_periods(connection: Connection, deployment_id: str, month: date) -> list | None:
    """The deployment's plan periods of the month from its snapshots, on the month's terms
    (what its adjustments were priced on)."""
    periods = plan_periods(month_end(month)).subquery("periods")
    return connection.execute(
        select(periods.c.plan_periods).where(periods.c.deployment_id == deployment_id)
    ).scalar_one_or_none()


def statement_json(connection: Connection, deployment_id: str, month: date) -> dict | None:
    """The deployment's statement of the month with its adjustments; None if it has neither."""
    s, line, adj = monthly_statements.c, monthly_statement_lines.c, statement_adjustments.c
    statement = connection.execute(
        select(monthly_statements).where(s.month == month, s.deployment_id == deployment_id)
    ).first()
    adjustments = connection.execute(
        select(adj.billing_kind, adj.qty_delta, adj.amount_usd, adj.created_at)
        .where(adj.month == month, adj.deployment_id == deployment_id)
        .order_by(adj.adjustment_id)
    ).all()
    if statement is None and not adjustments:
        return None
    lines = connection.execute(
        select(monthly_statement_lines)
        .where(line.month == month, line.deployment_id == deployment_id)
        .order_by(line.billing_kind)
    ).all()
    exact = decimal_text
    if statement is None:  # billed by adjustments alone: it appeared after the close
        closed_at = connection.execute(
            select(statement_months.c.closed_at).where(statement_months.c.month == month)
        ).scalar_one()
        periods = _plan_periods(connection, deployment_id, month)
        plan_code = periods[-1]["plan_code"] if periods else None
    else:
        closed_at, periods, plan_code = (
            statement.closed_at,
            statement.plan_periods,
            statement.plan_code,
        )
    tiers = load_tiers(connection, plan_code, month) if plan_code else {}
    total = statement.total_usd if statement else Decimal("0.00")
    adjusted = sum((a.amount_usd for a in adjustments), Decimal("0.00"))
    return {
        "deployment_id": deployment_id,
        "month": f"{month:%Y-%m}",
        "plan_code": plan_code,
        "plan_periods": periods,
        "status": statement.status if statement else "closed",
        "closed_at": closed_at.isoformat() if closed_at else None,
        "base_usd": money_text(statement.base_usd if statement else Decimal(0)),
        "lines": [
            {
                "billing_kind": r.billing_kind,
                "qty": exact(r.qty),
                "billable_qty": exact(r.billable_qty),
                "included_qty": exact(r.included_qty),
                "overage_qty": exact(r.overage_qty),
                "unit_price_usd": exact(r.unit_price_usd),
                "amount_usd": money_text(r.amount_usd),
                # The closed month's tiers never change (migration 0007's guard).
                "tiers": tiers_json(
                    tier_charges(r.overage_qty, tiers[r.billing_kind])
                    if r.billing_kind in tiers
                    else []
                ),
            }
            for r in lines
        ],
        **minimum_json(
            statement.minimum_usd if statement else None,
            statement.minimum_true_up_usd if statement else Decimal("0.00"),
        ),
        "total_usd": money_text(total),
        "adjustments": [
            {
                "billing_kind": a.billing_kind,
                "qty_delta": exact(a.qty_delta),
                "amount_usd": money_text(a.amount_usd),
                "created_at": a.created_at.isoformat(),
            }
            for a in adjustments
        ],
        "total_with_adjustments_usd": money_text(total + adjusted),
    }


def cmd_statement(args) -> None:
    check_month(args.month)
    with make_engine(warehouse_url()).connect() as connection:
        if not known_deployment(connection, args.deployment):
            raise CliError(f"unknown deployment {args.deployment!r} ({UNKNOWN})")
        statement = statement_json(connection, args.deployment, args.month)
        if statement is not None:  # a draft may change; a closed month gets adjustments
            last = month_end(args.month)
            warn_if_stale(connection, args.month, last, USAGE_RECORDS, "the statement")
        if statement is None:
            if not priced(connection, args.month):
                raise CliError(
                    f"{args.month:%Y-%m} has no statements yet: materialise "
                    f"monthly_usage_statements for {args.month:%Y-%m}-01 first"
                )
            raise CliError(
                f"{args.deployment} has no statement for {args.month:%Y-%m} (no inventory or "
                "usage that month)"
            )
    print(json.dumps(statement, indent=2))


def output_format(file_format: str | None, output: Path) -> str:
    """The format to write: --format, else the one the output's name says; CliError when
    neither says one or they disagree."""
    named = format_of_name(output)
    if file_format is None:
        if named is None:
            raise CliError(
                f"cannot tell the format of --output {output} from its name: give "
                f"--format {'|'.join(FORMATS)}, or name it .csv or .parquet"
            )
        return named
    if named is not None and named != file_format:
        raise CliError(
            f"--format {file_format} does not match --output {output} (a .{named} name): "
            f"give --format {named} or a .{file_format} name"
        )
    return file_format


def cmd_statements(args) -> None:
    check_month(args.month)
    file_format = output_format(args.format, args.output)
    with make_engine(warehouse_url()).connect() as connection:
        if not priced(connection, args.month):
            raise CliError(
                f"{args.month:%Y-%m} has no statements yet: materialise "
                f"monthly_usage_statements for {args.month:%Y-%m}-01 first"
            )
        frame = statement_rows(connection, args.month)
    try:
        write_statements(frame, file_format, args.output)
    except OSError as error:
        raise CliError(f"cannot write {args.output}: {error.strerror or error}") from error
    adjustments = int((frame["row_type"] == "adjustment").sum())
    print(
        f"wrote {len(frame)} rows ({frame['deployment_id'].nunique()} deployments, "
        f"{adjustments} adjustments) of {args.month:%Y-%m} to {args.output}"
    )


def add_statement_commands(commands) -> None:
    """Add `statement` and `statements` to the CLI's subcommands (argparse subparsers)."""
    statement = commands.add_parser(
        "statement", help="a deployment's monthly statement with its adjustments, as JSON"
    )
    statement.add_argument("deployment")
    add_month_option(statement)
    statement.set_defaults(handler=cmd_statement)

    statements = commands.add_parser(
        "statements", help="every statement line and adjustment of a month, as CSV or Parquet"
    )
    add_month_option(statements)
    statements.add_argument(
        "--format", choices=FORMATS, help="default: from the --output name (.csv, .parquet)"
    )
    statements.add_argument("--output", type=Path, required=True, metavar="PATH")
    statements.set_defaults(handler=cmd_statements)
