"""Asset checks on the billing assets: aggregates equal the records, quotes add up."""

from datetime import date

from dagster import AssetCheckExecutionContext, AssetCheckResult
from sqlalchemy import Connection, and_, func, or_, select

from arcadia_pipeline.billing.assets import deployment_quotes as deployment_quotes_asset
from arcadia_pipeline.billing.assets import (
    usage_period_aggregates as usage_period_aggregates_asset,
)
from arcadia_pipeline.billing.pricing import lines_per_deployment, unbalanced_text
from arcadia_pipeline.db.schema import (
    deployment_quote_lines,
    deployment_quotes,
    usage_period_aggregates,
    usage_records,
)
from arcadia_pipeline.metering.sql import records_of_days
from arcadia_pipeline.orchestration.check_results import check_each_day
from arcadia_pipeline.orchestration.partitions import daily_check
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.utc import month_start


def aggregate_mismatches(connection: Connection, day: date) -> list[str]:
    """(deployment, kind) whose aggregate differs from SUM(usage_records) month to date."""
    u = usage_records.c
    sums = (
        select(u.deployment_id, u.resource_kind.label("billing_kind"), func.sum(u.qty).label("qty"))
        .where(records_of_days(month_start(day), day))
        .group_by(u.deployment_id, u.resource_kind)
    ).subquery("sums")
    a = (
        select(usage_period_aggregates)
        .where(usage_period_aggregates.c.as_of_date == day)
        .subquery("a")
    )
    joined = sums.join(
        a,
        and_(a.c.deployment_id == sums.c.deployment_id, a.c.billing_kind == sums.c.billing_kind),
        full=True,
    )
    rows = connection.execute(
        select(
            func.coalesce(sums.c.deployment_id, a.c.deployment_id).label("deployment_id"),
            func.coalesce(sums.c.billing_kind, a.c.billing_kind).label("billing_kind"),
            a.c.qty.label("aggregate"),
            sums.c.qty.label("records"),
        )
        .select_from(joined)
        .where(a.c.qty.is_distinct_from(sums.c.qty))
        .limit(20)
    ).all()
    return [
        f"{r.deployment_id}/{r.billing_kind}: aggregate {r.aggregate}, records sum {r.records}"
        for r in rows
    ]


def quote_mismatches(connection: Connection, day: date) -> list[str]:
    """Quotes whose total is not base + lines, or whose lines do not follow the rule."""
    q, ql = deployment_quotes.c, deployment_quote_lines.c
    lines = lines_per_deployment(
        ql.as_of_date == day, ql.deployment_id, ql.usage, ql.included, ql.unit_price_usd,
        ql.overage_qty, ql.overage_usd,
    )  # fmt: skip
    overage = func.coalesce(lines.c.amount, 0)
    rows = connection.execute(
        select(q.deployment_id, q.base_usd, q.overage_usd, q.total_usd, overage, lines.c.mispriced)
        .outerjoin(lines, lines.c.deployment_id == q.deployment_id)
        .where(
            q.as_of_date == day,
            or_(
                q.total_usd != q.base_usd + overage,
                q.overage_usd != overage,
                lines.c.mispriced > 0,
            ),
        )
        .limit(20)
    ).all()
    return [
        unbalanced_text(r.deployment_id, r.total_usd, r.base_usd, r[4], r.mispriced) for r in rows
    ]


@daily_check(usage_period_aggregates_asset)
def aggregates_equal_usage_records(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Each aggregate equals SUM(qty) of usage_records over its billing period to date."""
    return check_each_day(context, warehouse, aggregate_mismatches)


@daily_check(deployment_quotes_asset)
def quote_totals_add_up(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Each quote's total equals its base plus its lines, each line priced by the rule."""
    return check_each_day(context, warehouse, quote_mismatches)
