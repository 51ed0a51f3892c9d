"""Advisory locks that serialise writers of the same unit of replacement."""

from datetime import date

from sqlalchemy import Connection, text


def lock_day(connection: Connection, table: str, day: date) -> None:
    """Hold (table, day) until the transaction ends: two runs of a day at once then leave
    the rows of one run, never a mix or a duplicate."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:table), :day)"),
        {"table": table, "day": day.toordinal()},
    )
