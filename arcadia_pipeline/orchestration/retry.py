"""Which failures a retry can heal, and the retry policy of every database step."""

from dagster import Backoff, Jitter, RetryPolicy
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# 3 attempts in all. A day's transaction rolls back with the failure, so a retry starts
# from a clean slate.
DATABASE_RETRY_POLICY = RetryPolicy(
    max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def is_transient(error: BaseException) -> bool:
    """A lost or refused connection, a deadlock, a serialization failure: the same work
    may succeed when tried again. Anything else (bad data past validation, a bug) fails
    the same way every time."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError)
