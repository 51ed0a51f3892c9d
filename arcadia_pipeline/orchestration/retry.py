"""Which failures a retry can heal, the retry policy of every database step, and when a
sensor asks again for a run that failed."""

from datetime import UTC, datetime, timedelta

from dagster import Backoff, Jitter, RetryPolicy
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# Retries at about +3, +12, +33, +78 and +171 s (exponential, each ±3 s of jitter so runs
# that failed together do not return together): a database outage of two minutes or more is
# ridden out. A day's transaction rolls back with the failure, so a retry starts clean.
DATABASE_RETRY_POLICY = RetryPolicy(
    max_retries=5, delay=3, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def is_transient(error: BaseException) -> bool:
    """A lost or refused connection, a deadlock, a serialization failure: the same work
    may succeed when tried again. Anything else (bad data past validation, a bug) fails
    the same way every time."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError)


# A sensor's run that failed is asked for again in the next such period: not on every tick
# (bad data fails the same way; the steps already retry transient errors) nor never (a run
# key Dagster has seen is not launched again).
RETRY_EVERY = timedelta(hours=6)


def retry_period(now: datetime) -> str:
    """The RETRY_EVERY period `now` is in ("2025-03-05T00"), for a run key: the same all
    through the period, another in the next, so a failed run is requested once a period."""
    period = RETRY_EVERY.total_seconds()
    return f"{datetime.fromtimestamp(now.timestamp() // period * period, UTC):%Y-%m-%dT%H}"
