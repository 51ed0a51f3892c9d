"""The one exception for input the pipeline cannot meter or price."""


class BadSourceData(Exception):
    """The source, or the catalog it refers to, holds rows the pipeline cannot meter or
    price (an unknown kind or plan, a missing size, overlapping versions…).

    Raised before the failing day writes anything; the message names the rows and days.
    A retry would fail the same way, so the run fails at once: fix the data, re-run.
    """
