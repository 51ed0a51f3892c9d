"""`spend_alert_sensor`: tells the operators of each spend alert threshold a deployment's
quote, or its projection to the month's end, reached (billing/spend.py records them with the
day's quotes and projections), once per deployment, threshold and billing month (incident
`spend:<deployment>:<threshold>:<YYYY-MM>`)."""

import dagster as dg
from dagster import SensorEvaluationContext, SkipReason

from arcadia_pipeline.alerts.notify import SPEND_THRESHOLD, alert, incident_text
from arcadia_pipeline.billing.spend import PROJECTED, SpendCrossing, mark_told, untold_crossings
from arcadia_pipeline.defs.alerts.incidents import PREFIX
from arcadia_pipeline.flow import DEPLOYMENT_QUOTES, PROJECTED_QUOTES
from arcadia_pipeline.orchestration.automation import sensor_status
from arcadia_pipeline.orchestration.resources import WarehouseResource
from arcadia_pipeline.pricing.rules import money_text
from arcadia_pipeline.settings import settings
from arcadia_pipeline.utc import month_text

# Crossings told per tick; the next tick goes on with the rest.
TOLD_PER_TICK = 200


def crossing_text(crossing: SpendCrossing) -> tuple[str, str]:
    """(subject, body) of one crossing's alert: reached by the month to date, or projected
    to be reached by the month's end."""
    month, threshold = month_text(crossing.month), money_text(crossing.threshold_usd)
    total = money_text(crossing.total_usd)
    projected = crossing.basis == PROJECTED
    body = incident_text(
        {
            "deployment": crossing.deployment_id,
            "asset": (PROJECTED_QUOTES if projected else DEPLOYMENT_QUOTES).asset,
            "days": str(crossing.as_of_date),
            "threshold": f"{threshold} USD in {month}",
            "quote": f"{total} USD ({crossing.basis.replace('_', '-')}) as of "
            f"{crossing.as_of_date}",
        }
    )
    reached = "is projected to reach" if projected else "reached"
    subject = (
        f"{PREFIX} {crossing.deployment_id} {reached} {threshold} USD in {month}:"
        f" {total} USD as of {crossing.as_of_date}"
    )
    return subject, body


def tell_spend_crossings(context: SensorEvaluationContext, warehouse: WarehouseResource):
    """Tell the operators of each spend alert threshold reached and not told yet, once each
    (metering.spend_alert_events, in the order recorded)."""
    with warehouse.engine.connect() as connection:
        crossings = untold_crossings(connection, TOLD_PER_TICK)
    sent = 0
    for crossing in crossings:
        subject, body = crossing_text(crossing)
        # The alert's record and the event's stamp commit together.
        with warehouse.engine.begin() as connection:
            sent += alert(connection, crossing.incident, SPEND_THRESHOLD, subject, body)
            mark_told(connection, crossing)
    if sent:
        context.log.info(f"{sent} spend threshold(s) told")
    return SkipReason(f"{len(crossings)} spend threshold(s) reached, {sent} told now")


@dg.definitions
def defs() -> dg.Definitions:
    @dg.sensor(
        name="spend_alert_sensor",
        minimum_interval_seconds=60,
        default_status=sensor_status(settings()),
        description=tell_spend_crossings.__doc__,
    )
    def spend_alert_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
        return tell_spend_crossings(context, warehouse)

    return dg.Definitions(sensors=[spend_alert_sensor])
