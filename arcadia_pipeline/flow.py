"""The daily flow: each daily step declared once, in the order the steps run.

A day of the pipeline is these five steps: the inventory snapshot, the usage records metered
from it, the billing-month-to-date aggregates, the month-to-date quotes and their projections
to the month's end. Everything else is
derived from these declarations (days/steps.py): the assets' deps and checks, the daily job,
the catch-up order, the day locks and staleness, and what a month needs before it closes.
The monthly statements read the days of STATEMENT_READS.
"""

from arcadia_pipeline.billing.checks import (
    aggregate_mismatches,
    projection_differs_from_quote,
    projection_mismatches,
    quote_mismatches,
)
from arcadia_pipeline.days.steps import DailyCheck, DailyFlow, DailyStep, Read
from arcadia_pipeline.db import schema
from arcadia_pipeline.metering.checks import (
    incomplete_records,
    month_closure_problems,
    out_of_bounds_records,
)

RESOURCE_INVENTORY = DailyStep(
    asset="resource_inventory",
    writes=(
        schema.resource_inventory,
        schema.inventory_deployments,
        schema.inventory_snapshots,
        schema.day_fingerprints,
    ),
    terms=(schema.kind_map,),  # each version's billing kind and accrual
    reads_source=True,
    gates_close=True,
    description="Every resource version of the source that overlapped the day, clipped to it, "
    "with its billing kind from metering.kind_map, and every deployment version (plan, name) "
    "that overlapped the day, clipped to it.",
)

USAGE_RECORDS = DailyStep(
    asset="usage_records",
    writes=(schema.usage_records,),
    reads=(Read(RESOURCE_INVENTORY, "day"),),
    terms=(schema.metering_config,),  # each billing kind's granularity
    checks=(
        DailyCheck(
            "usage_records_complete",
            incomplete_records,
            "Every attributed billable version of the day's inventory has its record(s) for "
            "each period of its granularity, and no record exists that the inventory does "
            "not explain.",
        ),
        DailyCheck(
            "usage_records_within_bounds",
            out_of_bounds_records,
            "qty >= 0; droplet hours per resource <= 24 a day and <= 1 an hour; "
            "sub_attribution never written.",
        ),
        DailyCheck(
            "usage_records_month_closure",
            month_closure_problems,
            "When a month's last day is metered, every resource that existed all month with "
            "one kind and size sums to exactly its GB-months / 1 zone / hours-in-month.",
        ),
    ),
    gates_close=True,
    description="One record per (deployment, resource, period, granularity) with its exact "
    "qty, time-weighted by the second from the day's inventory snapshot.",
)

USAGE_PERIOD_AGGREGATES = DailyStep(
    asset="usage_period_aggregates",
    writes=(schema.usage_period_aggregates, schema.capped_resource_usage),
    reads=(Read(USAGE_RECORDS, "month_to_date"),),
    terms=(schema.billing_caps,),  # each resource's month of a capped kind
    checks=(
        DailyCheck(
            "aggregates_equal_usage_records",
            aggregate_mismatches,
            "Each aggregate equals SUM(qty) of usage_records over its billing period to date, "
            "and its billable qty the same sum with each resource capped (metering.billing_caps).",
        ),
    ),
    gates_close=True,
    description="Billing-period (UTC calendar month) to date SUM(qty) per (deployment, "
    "billing kind) as of each day: what usage_for_period(deployment, month start, day) "
    "returns; and the billable qty, each resource's month of a capped kind counted at most "
    "its cap.",
)

DEPLOYMENT_QUOTES = DailyStep(
    asset="deployment_quotes",
    writes=(schema.deployment_quotes, schema.deployment_quote_lines),
    reads=(
        Read(USAGE_PERIOD_AGGREGATES, "day"),
        # The deployment versions of the month to date: the prorated terms.
        Read(RESOURCE_INVENTORY, "month_to_date"),
    ),
    terms=(schema.plans, schema.plan_items, schema.overage_tiers),
    checks=(
        DailyCheck(
            "quote_totals_add_up",
            quote_mismatches,
            "Each quote's total equals its base plus its lines, each line priced by the rule.",
        ),
    ),
    gates_close=True,
    description="Month-to-date quote per deployment that existed in the month as of each day: "
    "its plans' base fees and inclusions prorated by the seconds each covers in the month, "
    "plus a line per billing kind, overage rounded half-up to the cent.",
)

PROJECTED_QUOTES = DailyStep(
    asset="projected_quotes",
    writes=(schema.projected_quotes, schema.projected_quote_lines),
    reads=(
        Read(DEPLOYMENT_QUOTES, "day"),  # what it projects, and equals on a month's last day
        Read(USAGE_PERIOD_AGGREGATES, "day"),  # each capped resource's month to date
        # The resource versions open at the day's end; and the deployment versions of the
        # month to date, which the quote's prorated terms were computed on.
        Read(RESOURCE_INVENTORY, "month_to_date"),
    ),
    terms=(schema.plans, schema.plan_items, schema.overage_tiers, schema.billing_caps),
    checks=(
        DailyCheck(
            "projection_totals_add_up",
            projection_mismatches,
            "Each projection's total equals its base plus its lines, each line priced by the rule.",
        ),
        DailyCheck(
            "projection_is_the_quote_on_month_end",
            projection_differs_from_quote,
            "On a month's last day each deployment's projection equals its quote to the cent: "
            "nothing is left of the month to project.",
        ),
    ),
    description="Each deployment's quote projected from the day to its month's end: the "
    "quote it will get on the month's last day if nothing changes after the day (each "
    "resource version open at the day's end accrues to the month's end, as metered), with "
    "caps, tiers and the minimum commitment.",
)

DAILY_FLOW = DailyFlow(
    (
        RESOURCE_INVENTORY,
        USAGE_RECORDS,
        USAGE_PERIOD_AGGREGATES,
        DEPLOYMENT_QUOTES,
        PROJECTED_QUOTES,
    )
)

# What a month's statements read of its days: the usage records, and the inventory's
# deployment versions (their prorated terms). The month holds these days shared while it is priced.
STATEMENT_READS = (USAGE_RECORDS, RESOURCE_INVENTORY)
