"""Which days a metering run covered, in the UI: the visible run tag `arcadia/days`, set at
launch by the schedule and the sensors (range_tags), and by the run itself when it starts for
a range launched with Dagster's hidden range tags only (the UI's Materialize, `dg launch`)."""

from __future__ import annotations

from datetime import date

from dagster import DagsterInstance

from arcadia_pipeline.orchestration.partitions import DAYS_TAG, days_tag, range_tags
from arcadia_pipeline_tests.support import add_deployment, add_version, defs, utc

FIRST, LAST = date(2025, 2, 27), date(2025, 3, 1)
JOB = "daily_metering_job"


def test_the_tag_names_one_day_or_a_range_as_dg_launch_takes_it():
    assert days_tag(FIRST, FIRST) == {DAYS_TAG: "2025-02-27"}
    assert days_tag(FIRST, LAST) == {DAYS_TAG: "2025-02-27...2025-03-01"}
    assert range_tags(FIRST, LAST) == {
        "dagster/asset_partition_range_start": "2025-02-27",
        "dagster/asset_partition_range_end": "2025-03-01",
        "arcadia/days": "2025-02-27...2025-03-01",
    }


def test_a_run_launched_with_dagsters_range_tags_only_carries_its_days(engine):
    """As `dg launch --job daily_metering_job --partition-range` and a one-run UI range
    launch it: Dagster's range tags, none of ours; the run tags itself when it starts."""
    add_deployment(engine, "dep-a", "starter")
    add_version(engine, "droplet:1", "dep-a", "droplet", utc(2025, 1, 1))
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_job_def(JOB)
    hidden = {key: value for key, value in range_tags(FIRST, LAST).items() if key != DAYS_TAG}

    ranged = job.execute_in_process(instance=instance, tags=hidden)
    one_day = job.execute_in_process(instance=instance, partition_key=LAST.isoformat())

    assert instance.get_run_by_id(ranged.run_id).tags[DAYS_TAG] == "2025-02-27...2025-03-01"
    assert instance.get_run_by_id(one_day.run_id).tags[DAYS_TAG] == "2025-03-01"
    assert ranged.dagster_run.job_name == one_day.dagster_run.job_name == JOB
