"""Every session the pipeline opens runs in UTC, without JIT, with its work_mem."""

from sqlalchemy import text


def test_sessions_have_the_pipelines_settings(engine):
    with engine.connect() as connection:
        shown = {
            name: connection.execute(text(f"SHOW {name}")).scalar_one()
            for name in ("timezone", "datestyle", "jit", "work_mem")
        }
    assert shown == {"timezone": "UTC", "datestyle": "ISO, MDY", "jit": "off", "work_mem": "128MB"}
