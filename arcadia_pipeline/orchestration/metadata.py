"""Materialisation metadata shared by the assets: numbers the UI plots per partition, and
markdown tables for people to read (money as pricing.rules.money_text writes it, quantities
rounded, numbers right-aligned)."""

from collections.abc import Collection, Mapping
from decimal import ROUND_HALF_UP, Decimal

from dagster import MetadataValue

from arcadia_pipeline.pricing.rules import decimal_text

# Quantities are shown to 4 decimals: enough to tell a change of a GB-month's fraction from
# none, few enough to read; the exports carry them in full.
QUANTITY_STEP = Decimal("0.0001")


def per_kind(prefix: str, values: Mapping[str, int | Decimal]) -> dict[str, MetadataValue]:
    """`{prefix}_{billing_kind}` for each kind of `values` (the domain gives every kind of
    the kind map, 0 where absent, so each plots a line)."""
    return {
        f"{prefix}_{kind}": MetadataValue.int(value)
        if isinstance(value, int)
        else MetadataValue.float(float(value))
        for kind, value in values.items()
    }


def quantity(qty: Decimal) -> str:
    """A quantity rounded to 4 decimals, trailing zeros dropped: Decimal('-336.000') ->
    '-336', Decimal('-75.463548387') -> '-75.4635'."""
    return decimal_text(Decimal(qty).quantize(QUANTITY_STEP, ROUND_HALF_UP))


def markdown_text(headers: list[str], rows: list[list[object]], right: Collection[int] = ()) -> str:
    """A GitHub-flavoured markdown table; the columns numbered in `right` (numbers) are
    right-aligned (`---:`)."""
    align = ["---:" if n in right else "---" for n in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(
    headers: list[str], rows: list[list[object]], right: Collection[int] = ()
) -> MetadataValue:
    return MetadataValue.md(markdown_text(headers, rows, right))
