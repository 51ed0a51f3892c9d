"""Which failures a retry can heal, and the retry policy of every database step."""

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
