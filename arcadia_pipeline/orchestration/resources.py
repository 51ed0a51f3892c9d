"""The two databases the pipeline talks to, as Dagster resources configured from the env."""

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from arcadia_pipeline.db.engine import make_engine


class WarehouseResource(ConfigurableResource):
    """The PostgreSQL database the pipeline writes: schema `metering` (ARCADIA_DATABASE_URL)."""

    database_url: str = Field(description="SQLAlchemy URL of the warehouse database.")

    @property
    def engine(self) -> Engine:
        return make_engine(self.database_url)


class ArcadiaSourceResource(ConfigurableResource):
    """The Arcadia app's `arcadia.deployment_versions` / `arcadia.resource_versions` (read-only).

    ARCADIA_SOURCE_DATABASE_URL; when it is the warehouse's own database the inventory is
    copied with one INSERT … SELECT, otherwise streamed across with COPY.
    """

    database_url: str = Field(description="SQLAlchemy URL of the Arcadia source database.")

    @property
    def engine(self) -> Engine:
        return make_engine(self.database_url)
