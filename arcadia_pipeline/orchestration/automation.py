"""Whether schedules and sensors start running when the code location loads.

Running by default: the nightly metering, catch-up, corrections and retention must not wait
for someone to switch them on in the UI. ARCADIA_AUTOMATION=stopped leaves them off (a test
instance that must only run what it launches, a staging copy).
"""

from dagster import DefaultScheduleStatus, DefaultSensorStatus

from arcadia_pipeline.settings import Settings


def schedule_status(settings: Settings) -> DefaultScheduleStatus:
    running = settings.automation_running
    return DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED


def sensor_status(settings: Settings) -> DefaultSensorStatus:
    running = settings.automation_running
    return DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED
