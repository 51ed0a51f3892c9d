"""The one family of errors for input the pipeline cannot meter or price, and how many of
the offending rows a message names."""

# A message that names offending rows (bad source rows, unpriced deployments, a check's
# problems) lists at most this many; it always says how many there are in all.
MAX_LISTED = 20


class BadSourceData(Exception):
    """The source, or the catalog and config it refers to, holds rows the pipeline cannot
    meter or price: an unknown kind or plan, a missing size, overlapping versions, a billing
    kind without a price, a metering config past its bounds…

    Raised before the failing day or month writes anything; the message names the rows and
    the days. A retry would fail the same way, so the run fails at once: fix the data, re-run.
    Every such error of the package is this class or a subclass of it (the CLI prints it in
    one line, the assets never retry it).
    """
