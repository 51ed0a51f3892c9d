"""Column types the metering tables share (numeric precision is part of the schema)."""

from sqlalchemy import DateTime, Numeric

# Quantities: exact decimals with 18 fractional digits (accrual rounds to this scale).
QTY_SCALE = 18
QTY = Numeric(38, QTY_SCALE)
MONEY = Numeric(14, 2)
TSTZ = DateTime(timezone=True)
