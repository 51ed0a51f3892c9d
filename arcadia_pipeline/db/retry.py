"""The retry policy of every asset that touches the database."""

from dagster import Backoff, Jitter, RetryPolicy

# 3 attempts in all; a transient connection error or a deadlock heals on a retry, and a
# day's transaction rolled back with it so a retry starts from a clean slate.
DATABASE_RETRY_POLICY = RetryPolicy(
    max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
