"""Whether schedules and sensors start running when the code location loads.

Running by default: the nightly metering, catch-up, corrections and retention must not wait
for someone to switch them on in the UI. ARCADIA_AUTOMATION=stopped leaves them off (a test
instance that must only run what it launches, a staging copy).
"""

from dagster import DefaultScheduleStatus, DefaultSensorStatus

from arcadia_pipeline.settings import settings

_RUNNING = settings().automation_running
SCHEDULE_STATUS = DefaultScheduleStatus.RUNNING if _RUNNING else DefaultScheduleStatus.STOPPED
SENSOR_STATUS = DefaultSensorStatus.RUNNING if _RUNNING else DefaultSensorStatus.STOPPED
