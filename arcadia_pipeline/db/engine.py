"""Engines for the warehouse and the source: every session runs in UTC."""

from functools import cache

from sqlalchemy import Engine, create_engine


@cache
def make_engine(url: str) -> Engine:
    """One pooled engine per URL per process; sessions in UTC so dates cut at UTC midnight,
    and ISO dates so timestamps COPYed as text between two servers read back the same."""
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"options": "-c timezone=UTC -c datestyle=ISO"},
    )
