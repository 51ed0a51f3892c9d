"""The two databases every asset, check and sensor talks to, configured from the environment
(Dagster reads the variables when a run starts and shows their names, never their values)."""

import dagster as dg

from arcadia_pipeline.orchestration.resources import ArcadiaSourceResource, WarehouseResource
from arcadia_pipeline.settings import WAREHOUSE_URL_VAR, source_url_var


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "warehouse": WarehouseResource(database_url=dg.EnvVar(WAREHOUSE_URL_VAR)),
            "arcadia_source": ArcadiaSourceResource(database_url=dg.EnvVar(source_url_var())),
        }
    )
