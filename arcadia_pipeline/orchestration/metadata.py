"""Materialisation metadata shared by the assets: numbers the UI plots per partition."""

from collections.abc import Mapping
from decimal import Decimal

from dagster import MetadataValue


def per_kind(prefix: str, values: Mapping[str, int | Decimal]) -> dict[str, MetadataValue]:
    """`{prefix}_{billing_kind}` for each kind of `values` (the domain gives every kind of
    the kind map, 0 where absent, so each plots a line)."""
    return {
        f"{prefix}_{kind}": MetadataValue.int(value)
        if isinstance(value, int)
        else MetadataValue.float(float(value))
        for kind, value in values.items()
    }


def markdown_table(headers: list[str], rows: list[list[object]]) -> MetadataValue:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))
