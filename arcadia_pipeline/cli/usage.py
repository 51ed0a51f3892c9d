"""`arcadia-pipeline usage`, `quote` and `quotes`: what the quote engine reads, looked up.

usage DEPLOYMENT --from YYYY-MM-DD --to YYYY-MM-DD [--billable]
                                                     usage_for_period as JSON (--billable:
                                                     each resource's month capped)
quote DEPLOYMENT --as-of YYYY-MM-DD [--projected]    the month-to-date quote, priced live
                                                     (--projected: the materialised
                                                     projection to the month's end)
quotes --as-of YYYY-MM-DD                            the materialised quotes, as a table

The quote's lines use the statement's names (`qty`, `billable_qty`, `included_qty`,
`overage_qty`, `unit_price_usd`, `amount_usd`, `tiers`), so either can be checked by hand the
same way. `quote` and
`quotes` share one rule: a day with nothing to show (not metered, or not over yet) is one
line on stderr and exit 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, Table, select

from arcadia_pipeline import utc
from arcadia_pipeline.billing.projection import projected_quote
from arcadia_pipeline.cli.deployments import UNKNOWN, known_deployment
from arcadia_pipeline.cli.output import (
    DATES_NOTE,
    CliError,
    add_day_option,
    add_day_range,
    not_after_today,
)
from arcadia_pipeline.cli.stale import warn_if_stale
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.db.schema import deployment_quotes, projected_quotes
from arcadia_pipeline.flow import DEPLOYMENT_QUOTES, PROJECTED_QUOTES, USAGE_RECORDS
from arcadia_pipeline.pricing.reference import Quote, month_to_date_quote
from arcadia_pipeline.pricing.rules import decimal_text, money_text
from arcadia_pipeline.pricing.tiers import TierCharge
from arcadia_pipeline.pricing.usage import billable_usage_for_period, usage_for_period
from arcadia_pipeline.settings import warehouse_url
from arcadia_pipeline.utc import DAY, days_text, iter_days, month_start


def require_known(deployment_id: str) -> None:
    with make_engine(warehouse_url()).connect() as connection:
        if not known_deployment(connection, deployment_id):
            raise CliError(f"unknown deployment {deployment_id!r} ({UNKNOWN})")


def tiers_json(charges: Iterable[TierCharge]) -> list[dict]:
    """A line's overage cut into its graduated tiers (pricing/tiers.py), exact decimal
    strings: from_qty, up_to_qty (None: the open tier), qty, unit_price_usd, amount_usd
    (unrounded: the line rounds their sum once)."""
    return [
        {
            "from_qty": decimal_text(c.from_qty),
            "up_to_qty": None if c.up_to_qty is None else decimal_text(c.up_to_qty),
            "qty": decimal_text(c.qty),
            "unit_price_usd": decimal_text(c.unit_price_usd),
            "amount_usd": decimal_text(c.amount_usd),
        }
        for c in charges
    ]


def minimum_json(minimum_usd: Decimal | None, true_up_usd: Decimal) -> dict:
    """The minimum commitment (prorated; None: none) and its true-up, as money strings."""
    return {
        "minimum_usd": None if minimum_usd is None else money_text(minimum_usd),
        "minimum_true_up_usd": money_text(true_up_usd),
    }


def quote_json(quote: Quote, projected: bool = False) -> dict:
    """The quote as `quote` prints it, a statement line's keys for its lines: base_usd,
    amount_usd and total_usd as two-decimal strings, quantities and unit_price_usd as exact
    decimal strings; per line amount_usd = round_half_up(Σ tiers' amount_usd, 0.01), its
    unit_price_usd the price of the tier its last unit falls in (tiers_json); total_usd =
    base_usd + the lines + minimum_true_up_usd; `projected`: the quote is the projection to
    the month's end as of as_of (billing/projection.py), not the month to date."""
    return {
        "deployment_id": quote.deployment_id,
        "plan_code": quote.plan_code,
        "period_start": quote.period_start.isoformat(),
        "as_of": quote.as_of.isoformat(),
        "base_usd": money_text(quote.base_usd),
        "lines": [
            {
                "billing_kind": line.billing_kind,
                "qty": decimal_text(line.usage),
                "billable_qty": decimal_text(line.billable),
                "included_qty": decimal_text(line.included),
                "overage_qty": decimal_text(line.overage_qty),
                "unit_price_usd": decimal_text(line.unit_price_usd),
                "amount_usd": money_text(line.overage_usd),
                "tiers": tiers_json(line.tiers),
            }
            for line in quote.lines
        ],
        **minimum_json(quote.minimum_usd, quote.minimum_true_up_usd),
        "total_usd": money_text(quote.total_usd),
        "projected": projected,
    }


def unmetered_days(
    connection: Connection, first: date, last: date, quotes: Table = deployment_quotes
) -> list[date]:
    """Days of [first, last] without materialised quotes (or projections: `quotes`)."""
    q = quotes.c
    metered = set(
        connection.execute(
            select(q.as_of_date).distinct().where(q.as_of_date.between(first, last))
        ).scalars()
    )
    return [day for day in iter_days(first, last) if day not in metered]


def require_metered(connection: Connection, day: date, quotes: Table = deployment_quotes) -> None:
    """Raise CliError unless `day` has materialised quotes (or projections: `quotes`); today
    (UTC) is named as not over yet, since no run can meter it before its end."""
    if not unmetered_days(connection, day, day, quotes):
        return
    if day == utc.now().date():
        raise CliError(
            f"{day} is not over yet (UTC): the last day that can be metered is {day - DAY}"
        )
    raise CliError(f"{day} is not metered (no {quotes.name} as of that day): materialise it first")


def cmd_usage(args) -> None:
    if args.start > args.end:
        raise CliError(f"--from {args.start} is after --to {args.end}")
    not_after_today("--to", args.end)
    require_known(args.deployment)
    with make_engine(warehouse_url()).connect() as connection:
        sums = billable_usage_for_period if args.billable else usage_for_period
        usage = sums(connection, args.deployment, args.start, args.end)
        missing = unmetered_days(connection, args.start, args.end)
        warn_if_stale(connection, args.start, args.end, USAGE_RECORDS, "the usage")
    if missing:  # the figures are printed, but never silently short
        print(
            f"arcadia-pipeline: warning: {len(missing)} day(s) of the range are not metered "
            f"({days_text(missing)}); the usage leaves them out",
            file=sys.stderr,
        )
    print(json.dumps({kind: decimal_text(qty) for kind, qty in usage.items()}, indent=2))


def cmd_quote(args) -> None:
    not_after_today("--as-of", args.as_of)
    with make_engine(warehouse_url()).connect() as connection:
        require_metered(connection, args.as_of)
    require_known(args.deployment)
    if args.projected:
        print_projection(args)
        return
    with make_engine(warehouse_url()).connect() as connection:
        quote = month_to_date_quote(connection, args.deployment, args.as_of)
        warn_if_stale(connection, month_start(args.as_of), args.as_of, USAGE_RECORDS, "the quote")
    if quote is None:
        raise CliError(
            f"{args.deployment} did not exist in {args.as_of:%Y-%m} through {args.as_of} "
            "(no version in that month's inventory snapshots): it has no quote"
        )
    print(json.dumps(quote_json(quote), indent=2))


def print_projection(args) -> None:
    """`quote --projected`: the materialised projection to the month's end as of --as-of."""
    with make_engine(warehouse_url()).connect() as connection:
        require_metered(connection, args.as_of, projected_quotes)
        quote = projected_quote(connection, args.deployment, args.as_of)
        warn_if_stale(
            connection, month_start(args.as_of), args.as_of, PROJECTED_QUOTES, "the projection"
        )
    if quote is None:
        raise CliError(
            f"{args.deployment} has no projection as of {args.as_of} (it did not exist in "
            f"{args.as_of:%Y-%m} through that day)"
        )
    print(json.dumps(quote_json(quote, projected=True), indent=2))


def quotes_table(connection: Connection, as_of: date) -> str:
    """The day's materialised quotes, one row per deployment and a grand total (a day that
    require_metered accepts has at least one)."""
    q = deployment_quotes.c
    rows = connection.execute(
        select(q.deployment_id, q.plan_code, q.base_usd, q.overage_usd, q.total_usd)
        .where(q.as_of_date == as_of)
        .order_by(q.deployment_id)
    ).all()
    header = f"{'deployment':<14}{'plan':<10}{'base USD':>12}{'overage USD':>14}{'total USD':>12}"
    lines = [f"Month-to-date quotes as of {as_of}", header, "-" * len(header)]
    lines += [f"{d:<14}{p:<10}{b:>12}{o:>14}{t:>12}" for d, p, b, o, t in rows]
    total = sum((row.total_usd for row in rows), Decimal(0))
    lines += ["-" * len(header), f"{'total':<24}{'':>12}{'':>14}{total:>12}"]
    return "\n".join(lines)


def cmd_quotes(args) -> None:
    not_after_today("--as-of", args.as_of)
    with make_engine(warehouse_url()).connect() as connection:
        require_metered(connection, args.as_of)
        print(quotes_table(connection, args.as_of))
        first = month_start(args.as_of)
        warn_if_stale(connection, first, args.as_of, DEPLOYMENT_QUOTES, "the quotes")


def add_usage_commands(commands) -> None:
    """Add `usage`, `quote` and `quotes` to the CLI's subcommands (argparse subparsers)."""
    usage = commands.add_parser(
        "usage",
        help="usage_for_period as JSON",
        description="A deployment's usage per billing kind over the days, as JSON.",
        epilog=DATES_NOTE,
    )
    usage.add_argument("deployment")
    add_day_range(usage)
    usage.add_argument(
        "--billable",
        action="store_true",
        help="each resource's usage of a capped billing kind counted at most its monthly cap "
        "(metering.billing_caps), each billing month of the range on its own caps",
    )
    usage.set_defaults(handler=cmd_usage)

    quote = commands.add_parser(
        "quote",
        help="month-to-date quote as JSON",
        description="A deployment's quote from its month's first day through --as-of, priced "
        "live, as JSON.",
    )
    quote.add_argument("deployment")
    add_day_option(quote, "--as-of", "last day of the quote, included", required=True)
    quote.add_argument(
        "--projected",
        action="store_true",
        help="the materialised projection to the month's end as of --as-of (projected_quotes): "
        "the quote the month will get if nothing changes after that day",
    )
    quote.set_defaults(handler=cmd_quote)

    quotes = commands.add_parser(
        "quotes",
        help="materialised month-to-date quotes as a table",
        description="Every deployment's materialised quote as of the day, as a table.",
    )
    add_day_option(quotes, "--as-of", "day of the quotes", required=True)
    quotes.set_defaults(handler=cmd_quotes)
