"""The statements of a billing month for finance: a DataFrame, CSV and Parquet files.

One row per statement line, per base fee, per minimum true-up (a deployment with a minimum
commitment) and per adjustment (`row_type` line, base, minimum_true_up or adjustment; an
adjustment's `qty` is its quantity delta), so a deployment's `amount_usd` adds up to its
total with adjustments. Quantities and money are exact: Decimals in the
DataFrame, plain decimal strings in CSV, decimal128 in Parquet (38 digits, 18 after the
point for quantities and prices; 14 and 2 for money), read back equal to the statement rows
by read_statement_rows (a plain `pandas.read_csv` would make money float64).
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Numeric, String, cast, func, literal, null, select, union_all

from arcadia_pipeline.catalog.plans import BASE_FEE, MINIMUM_TRUE_UP
from arcadia_pipeline.db.schema import (
    monthly_statement_lines,
    monthly_statements,
    statement_adjustments,
    statement_months,
)
from arcadia_pipeline.db.types import QTY_SCALE, TSTZ

QUANTITY = pa.decimal128(38, QTY_SCALE)
MONEY = pa.decimal128(14, 2)
COLUMNS = {  # name: its Parquet type
    "row_type": pa.string(),
    "month": pa.string(),  # YYYY-MM
    "deployment_id": pa.string(),
    "plan_code": pa.string(),
    "status": pa.string(),
    "closed_at": pa.timestamp("us", tz="UTC"),
    "billing_kind": pa.string(),
    "qty": QUANTITY,
    "billable_qty": QUANTITY,  # qty with each resource's month capped (a line's only)
    "included_qty": QUANTITY,
    "overage_qty": QUANTITY,
    "unit_price_usd": QUANTITY,
    "amount_usd": MONEY,
    "adjustment_id": pa.int64(),
    "created_at": pa.timestamp("us", tz="UTC"),
    "run_id": pa.string(),
}
DECIMAL_COLUMNS = [name for name, kind in COLUMNS.items() if pa.types.is_decimal(kind)]
TEXT_COLUMNS = [name for name, kind in COLUMNS.items() if pa.types.is_string(kind)]
TIME_COLUMNS = ["closed_at", "created_at"]
ROW_ORDER = {"base": 0, "line": 1, "minimum_true_up": 2, "adjustment": 3}
FORMATS = ("csv", "parquet")
SUFFIXES = {".csv": "csv", ".parquet": "parquet"}  # what a file's name says it holds
PARQUET_MAGIC = b"PAR1"  # a Parquet file's first four bytes


def statement_rows(connection: Connection, month: date) -> pd.DataFrame:
    """Every deployment's statement rows of the month (first day), adjustments included:
    empty when the month was never priced."""
    s, line, adj = monthly_statements.c, monthly_statement_lines.c, statement_adjustments.c
    closed = (
        select(statement_months.c.closed_at)
        .where(statement_months.c.month == month)
        .scalar_subquery()
    )
    month_text = literal(f"{month:%Y-%m}")
    # PostgreSQL types a UNION's NULLs pairwise, branch by branch: say what each one is.
    no_number, no_text, no_time = cast(null(), Numeric), cast(null(), String), cast(null(), TSTZ)
    lines = select(
        literal("line").label("row_type"), month_text.label("month"), s.deployment_id,
        s.plan_code, s.status, s.closed_at, line.billing_kind, line.qty, line.billable_qty,
        line.included_qty, line.overage_qty, line.unit_price_usd, line.amount_usd,
        no_text.label("adjustment_id"), no_time.label("created_at"), s.run_id,
    ).join_from(
        monthly_statements,
        monthly_statement_lines,
        (line.month == s.month) & (line.deployment_id == s.deployment_id),
    ).where(s.month == month)  # fmt: skip
    bases = select(
        literal("base"), month_text, s.deployment_id, s.plan_code, s.status, s.closed_at,
        literal(BASE_FEE), literal(Decimal(1)), no_number, no_number, no_number, no_number,
        s.base_usd,
        no_text, no_time, s.run_id,
    ).where(s.month == month)  # fmt: skip
    true_ups = select(  # a deployment with a minimum commitment: its true-up, 0.00 or more
        literal("minimum_true_up"), month_text, s.deployment_id, s.plan_code, s.status,
        s.closed_at, literal(MINIMUM_TRUE_UP), literal(Decimal(1)), no_number, no_number,
        no_number, no_number, s.minimum_true_up_usd, no_text, no_time, s.run_id,
    ).where(s.month == month, s.minimum_usd.is_not(None))  # fmt: skip
    adjustments = select(
        literal("adjustment"), month_text, adj.deployment_id, s.plan_code,
        func.coalesce(s.status, "closed"), func.coalesce(s.closed_at, closed), adj.billing_kind,
        adj.qty_delta, no_number, no_number, no_number, no_number, adj.amount_usd,
        cast(adj.adjustment_id, String),
        adj.created_at, adj.run_id,
    ).outerjoin_from(
        statement_adjustments,
        monthly_statements,
        (s.month == adj.month) & (s.deployment_id == adj.deployment_id),
    ).where(adj.month == month)  # fmt: skip
    rows = connection.execute(union_all(lines, bases, true_ups, adjustments)).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(COLUMNS))
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable order and column types: pandas strings, Decimals (None where absent), UTC
    timestamps, nullable integer ids."""
    frame = frame.assign(_order=frame["row_type"].map(ROW_ORDER))
    frame = frame.sort_values(
        ["deployment_id", "_order", "billing_kind", "adjustment_id"], kind="stable"
    )
    frame = frame.drop(columns="_order").reset_index(drop=True)
    for name in TEXT_COLUMNS:
        frame[name] = frame[name].astype("str")
    for name in DECIMAL_COLUMNS:
        frame[name] = [None if pd.isna(v) else Decimal(v) for v in frame[name]]
        frame[name] = frame[name].astype(object)
    for name in TIME_COLUMNS:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    frame["adjustment_id"] = pd.array(
        [None if pd.isna(v) else int(v) for v in frame["adjustment_id"]], dtype="Int64"
    )
    return frame


def _plain(value: Decimal | None) -> str | None:
    """A Decimal as a plain string (never an exponent: 0E-18 is 0.000000000000000000)."""
    return None if value is None else format(value, "f")


def to_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.copy()
    for name in DECIMAL_COLUMNS:
        text[name] = text[name].map(_plain)
    text.to_csv(path, index=False)


def to_parquet(frame: pd.DataFrame, path: Path) -> None:
    schema = pa.schema([pa.field(name, kind) for name, kind in COLUMNS.items()])
    frame.to_parquet(path, engine="pyarrow", index=False, schema=schema)


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV export as statement_rows returns it."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    frame = frame.astype(object).where(frame.notna(), None)
    return _typed(frame)


def read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet export as statement_rows returns it."""
    return _typed(pd.read_parquet(path, engine="pyarrow"))


def read_statement_rows(path: Path | str) -> pd.DataFrame:
    """An export, CSV or Parquet (told apart by its first bytes, whatever its name), as
    statement_rows returned it: the same columns and order, Decimals for quantities, unit
    prices and money (None where a row has none), UTC timestamps, Int64 adjustment ids.
    Raises OSError when the file cannot be read."""
    with open(path, "rb") as file:
        parquet = file.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    return read_parquet(Path(path)) if parquet else read_csv(Path(path))


def format_of_name(path: Path) -> str | None:
    """The format a file's name says (.csv or .parquet, any case); None for another name."""
    return SUFFIXES.get(Path(path).suffix.lower())


def write_statements(frame: pd.DataFrame, file_format: str, output: Path) -> None:
    """Write the rows whole or not at all: a temporary file beside `output`, then renamed."""
    if file_format not in FORMATS:
        raise ValueError(f"unknown format {file_format!r} (one of {', '.join(FORMATS)})")
    output = Path(output)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        (to_csv if file_format == "csv" else to_parquet)(frame, temporary)
        os.replace(temporary, output)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
