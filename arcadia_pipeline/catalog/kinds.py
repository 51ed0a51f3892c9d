"""What the kind map and the metering config may say: the accrual rules, the statuses a
resource version can have, the granularities and the retention floor.

The rows themselves are data (`metering.kind_map`, `metering.metering_config`, written by the
migrations and changed by new ones); this module is the vocabulary they are checked against.
"""

from enum import StrEnum


class Accrual(StrEnum):
    """How a version accrues over the part of it inside a metering period
    (metering/accrual.py)."""

    ACTIVE_HOURS = "active_hours"  # s / 3600 while status = 'active', 0 when 'off'
    SIZE_MONTH = "size_month"  # size_gb * s / seconds_in_month
    UNIT_MONTH = "unit_month"  # s / seconds_in_month


STATUSES = ("active", "off")
GRANULARITIES = ("day", "hour")
# A billing kind without a metering_config row is metered per day.
DEFAULT_GRANULARITY = "day"
# The open month plus the whole previous one span at most 31 + 31 days: retention may never
# reach into them, so no kind may keep records for fewer days than this.
MIN_RETENTION_DAYS = 62
