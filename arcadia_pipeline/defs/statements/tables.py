"""The statements' tables in the UI (markdown metadata): a month's largest statements, every
adjustment of the month (who got a credit), and every billing month's standing (which are
closed). Money in USD with two decimals, quantities rounded, numbers right-aligned."""

from datetime import date, datetime

from dagster import MetadataValue

from arcadia_pipeline.orchestration.metadata import markdown_text, quantity
from arcadia_pipeline.pricing.rules import money_text
from arcadia_pipeline.statements.ledger import MonthSummary
from arcadia_pipeline.statements.overview import BillingMonth
from arcadia_pipeline.utc import month_text


def _stamp(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "-"


def largest_statements(summary: MonthSummary) -> MetadataValue:
    """The month's ten largest statements (by their total with adjustments)."""
    return MetadataValue.md(
        markdown_text(
            ["deployment", "plan", "status", "total USD", "adjustments USD",
             "total with adjustments USD"],
            [
                [r["deployment_id"], r["plan_code"], r["status"], money_text(r["total_usd"]),
                 money_text(r["adjustments_usd"]), money_text(r["total_with_adjustments_usd"])]
                for r in summary.top
            ],
            right={3, 4, 5},
        )
    )  # fmt: skip


def adjustments_text(month: date, listed: list[dict], count: int) -> str:
    """Every adjustment of the month, `listed` (month_adjustments' rows) out of `count`, and
    how to export the rest when there are more."""
    if not count:
        return f"{month_text(month)} has no adjustments."
    table = markdown_text(
        ["deployment", "billing kind", "quantity", "amount USD", "booked (UTC)"],
        [
            [a["deployment_id"], a["billing_kind"], quantity(a["qty_delta"]),
             money_text(a["amount_usd"]), _stamp(a["created_at"])]
            for a in listed
        ],
        right={2, 3},
    )  # fmt: skip
    more = count - len(listed)
    if more <= 0:
        return table
    return (
        f"{table}\n\n… and {more} more ({count} in all; the first {len(listed)} by deployment "
        f"are listed). Every one: `arcadia-pipeline statements --month {month_text(month)} "
        f"--format csv --output {month_text(month)}.csv`"
    )


def all_adjustments(summary: MonthSummary) -> MetadataValue:
    return MetadataValue.md(adjustments_text(summary.month, summary.listed, summary.adjustments))


def billing_months_text(months: list[BillingMonth]) -> str:
    """Every billing month, newest first: status (draft, closed, not priced), when priced
    and closed, statements, totals and adjustments."""
    return markdown_text(
        ["billing month", "status", "priced at (UTC)", "closed at (UTC)", "statements",
         "total USD", "adjustments", "adjustments USD", "total with adjustments USD"],
        [
            [month_text(m.month), m.status, _stamp(m.priced_at), _stamp(m.closed_at),
             m.statements, money_text(m.total_usd), m.adjustments, money_text(m.adjustments_usd),
             money_text(m.total_with_adjustments_usd)]
            for m in months
        ],
        right={4, 5, 6, 7, 8},
    )  # fmt: skip


def billing_months_table(months: list[BillingMonth]) -> MetadataValue:
    return MetadataValue.md(billing_months_text(months))
