"""How an asset fails: naming what failed and on which days, and never retried unless a
retry can heal it.

Bad data and bugs fail at once as a Dagster Failure that is not retried; only a transient
database error (a lost connection, a deadlock) becomes a TransientFailure, left to the
asset's retry policy, which outlasts a minute-long outage (orchestration/retry.py). Every
asset body runs inside `failures_named`, from its first line (the asset factories see to
it), so nothing raised before a day is named can slip through to the retry policy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date

from dagster import Failure

from arcadia_pipeline.orchestration.retry import is_transient
from arcadia_pipeline.utc import days_text


class TransientFailure(Exception):
    """Work that failed on something a retry may heal; the message names the days."""


@contextmanager
def failures_named(prefix: str) -> Iterator[None]:
    """Any failure inside starts with `prefix` (what failed, on which days): bad data and
    bugs as a Dagster Failure that is not retried, transient database errors as a
    TransientFailure that the retry policy retries."""
    try:
        yield
    except (Failure, TransientFailure):
        raise  # already named by an inner (per-day) scope
    except Exception as error:
        message = f"{prefix}: {error}"
        if is_transient(error):
            raise TransientFailure(message) from error
        raise Failure(description=message, allow_retries=False) from error


def failures_naming(asset: str, days: Sequence[date]):
    """failures_named for an asset's days: `usage_records failed on 2025-03-04: …`."""
    return failures_named(f"{asset} failed on {days_text(days)}")


def named_failures(name: str, compute: Callable) -> Callable:
    """`compute` (an asset's body) with every failure named after `name`, whatever raised
    it, so the retry policy only ever sees transient database errors."""

    @functools.wraps(compute)
    def run(*args, **kwargs):
        with failures_named(f"{name} failed"):
            return compute(*args, **kwargs)

    return run
