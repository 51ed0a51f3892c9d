"""Everything Dagster loads (`dg dev`, `dagster dev -w workspace.yaml`): read this first.

Each domain's assets, checks, jobs, schedules and sensors are in `defs/<domain>/`, loaded from
that folder; the daily flow they are built from is declared in `flow.py`. Settings are read
here, when the definitions are built: a bad one stops the code location with its name.
"""

from pathlib import Path

import dagster as dg

from arcadia_pipeline.settings import settings


@dg.definitions
def defs() -> dg.Definitions:
    settings()  # every ARCADIA_* variable, validated before anything is built
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # Steps run strictly one after another (each check blocks the next asset), so a
        # process per step would only add seconds of imports on a 2-core machine.
        dg.Definitions(executor=dg.in_process_executor),
    )
