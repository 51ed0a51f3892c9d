"""The Dagster UI in Debian's Chromium: usage_records' partitions view shows the days the
backfill test metered.

Leaves test-artifacts/ui-usage-records-backfill.png (the README's screenshot is the demo's:
test_browser_billing.py).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pytest
from dagster import AssetKey

from arcadia_pipeline.demo.seed import seed_demo
from arcadia_pipeline.utc import iter_days
from arcadia_pipeline_tests.e2e.browser import chromium_page, visible
from arcadia_pipeline_tests.e2e.conftest import DagsterServer
from arcadia_pipeline_tests.support import materialize_range

pytestmark = pytest.mark.browser

# The range the backfill test meters; metered here too when this test runs on its own.
FIRST, LAST = date(2025, 2, 20), date(2025, 3, 5)
DAYS = [day.isoformat() for day in iter_days(FIRST, LAST)]
PARTITION_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Feb..Mar in the status bar (the full 2025-01-01..yesterday span makes the metered block a
# sliver), materialised partitions only in the list, and March 1st's details opened.
PAGE_QUERY = {
    "view": "partitions",
    "default_range": "[2025-02-01...2025-03-31]",
    "status": "MATERIALIZED",
    "partition": "2025-03-01",
}


def ensure_metered_range(server: DagsterServer, request: pytest.FixtureRequest) -> None:
    """Without the backfill test before it, meter the range in this process, recording the
    run in the server's instance (as the UI would show any run)."""
    with server.instance() as instance:
        if instance.get_materialized_partitions(AssetKey("usage_records")):
            return
        engine = request.getfixturevalue("engine")
        with engine.begin() as connection:
            seed_demo(connection, deployments=5, days=60, seed=11, end_date=date(2025, 4, 1))
        materialize_range(FIRST, LAST, instance=instance)


def test_usage_records_partitions_page_shows_the_metered_days(
    dagster_server: DagsterServer, artifacts_dir: Path, request: pytest.FixtureRequest
):
    ensure_metered_range(dagster_server, request)
    screenshot = artifacts_dir / "ui-usage-records-backfill.png"
    screenshot.unlink(missing_ok=True)

    with chromium_page() as page:
        page.goto(f"{dagster_server.url}/assets/usage_records?{urlencode(PAGE_QUERY)}")

        # The status filter's counts: the 14 metered days of Feb..Mar, nothing else.
        visible(page.get_by_text("Materialized (14)"))
        visible(page.get_by_text("Missing (45)"))
        visible(page.get_by_text("14 Partitions Selected"))
        # The partition list (materialised ones): exactly the range's days. Its rows (and
        # the open partition's heading) carry their partition key as their tooltip.
        for day in DAYS:
            visible(page.locator(f'[data-tooltip="{day}"]').first)
        tooltips = page.locator("[data-tooltip]").evaluate_all(
            "rows => rows.map(row => row.dataset.tooltip)"
        )
        assert {key for key in tooltips if PARTITION_KEY.match(key)} == set(DAYS)
        # March 1st's latest materialisation, with the metadata the asset reports.
        visible(page.get_by_text("unattributed_resources_skipped"))
        visible(page.get_by_text("deployments_metered"))
        page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
