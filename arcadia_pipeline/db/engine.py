"""Engines for the warehouse and the source: every session runs in UTC."""

from functools import cache

from sqlalchemy import Engine, create_engine, event

from arcadia_pipeline.settings import settings


def session_settings() -> dict[str, str]:
    """The server settings every session of the pipeline runs with, name -> value.

    timezone UTC, so dates cut at UTC midnight; datestyle ISO, so timestamps COPYed as text
    between two servers read back the same.

    JIT off: the planner's estimates for a day just written are far above the truth, so
    PostgreSQL JIT-compiled nearly every statement, for 0.3–0.7 s each and no gain on
    numeric arithmetic (a 1M-resource day: 58 s with it, 48 s without). work_mem
    (ARCADIA_PG_WORK_MEM, 128MB): at the default 4MB a day's GROUP BYs spill to disk
    (48 s; 42 s with it; benchmarks/README.md)."""
    return {
        "timezone": "UTC",
        "datestyle": "ISO",
        "jit": "off",
        "work_mem": settings().pg_work_mem,
    }


# What the workers of a Citus cluster need of them: they run the shards' statements over
# their own connections, which a coordinator session's options do not reach.
WORKER_SETTINGS = ("jit", "work_mem")


@cache
def make_engine(url: str) -> Engine:
    """One pooled engine per URL per process; every session with `session_settings()`.

    On a Citus coordinator each transaction also begins with SET LOCAL of WORKER_SETTINGS,
    which Citus sends to every worker the transaction touches
    (citus.propagate_set_commands = local): otherwise the shards' statements would run with
    the workers' own 4MB and JIT."""
    chosen = session_settings()
    engine = create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"options": " ".join(f"-c {k}={v}" for k, v in chosen.items())},
    )
    set_local = "; ".join(f"SET LOCAL {name} = '{chosen[name]}'" for name in WORKER_SETTINGS)

    @event.listens_for(engine, "connect")
    def _detect_citus(dbapi_connection, connection_record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')")
            on_citus = cursor.fetchone()[0]
            if on_citus:
                cursor.execute("SET citus.propagate_set_commands = local")
        dbapi_connection.commit()
        connection_record.info["citus"] = on_citus

    @event.listens_for(engine, "begin")
    def _settings_to_workers(connection):
        # The DBAPI cursor, not the Connection: the transaction is still being begun.
        pooled = connection.connection
        if pooled.info.get("citus") and not pooled.dbapi_connection.autocommit:
            with pooled.cursor() as cursor:
                cursor.execute(set_local)

    return engine
