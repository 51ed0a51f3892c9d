"""Whether schedules and sensors start running when the code location loads."""

import os

from dagster import DefaultScheduleStatus, DefaultSensorStatus


def _running() -> bool:
    value = os.getenv("ARCADIA_AUTOMATION", "running").lower()
    if value not in ("running", "stopped"):
        raise ValueError(f"ARCADIA_AUTOMATION must be 'running' or 'stopped', got {value!r}")
    return value == "running"


# Running by default: the nightly metering, catch-up, corrections and retention must not
# wait for someone to switch them on in the UI. ARCADIA_AUTOMATION=stopped leaves them off
# (a test instance that must only run what it launches, a staging copy).
SCHEDULE_STATUS = DefaultScheduleStatus.RUNNING if _running() else DefaultScheduleStatus.STOPPED
SENSOR_STATUS = DefaultSensorStatus.RUNNING if _running() else DefaultSensorStatus.STOPPED
