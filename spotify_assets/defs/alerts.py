"""The `asset_check_alerts` sensor: every failed asset check evaluation is announced once.

Each tick reads the check evaluations recorded since the last one, decides with
`lib/alerts.plan_alerts` which of them a person must hear about (a failure not already
announced, or a failing check passing again), and delivers those to the configured
destinations: a webhook, Slack, or with neither the alerts file in the data directory. The
cursor remembers the last evaluation handled and what is failing, so nothing is announced
twice across ticks and restarts; it moves past an alert only once it was delivered. The
sensor launches no runs. It runs by default wherever the daemon runs (`dagster dev`).
"""

import time
from dataclasses import replace

import dagster as dg

from spotify_assets.defs.resources import load_settings
from spotify_assets.lib import alerts
from spotify_assets.lib.alerts import Alert, AlertDeliveryError, AlertState, Delivered, FileDestination


@dg.sensor(
    name="asset_check_alerts",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Announces each failed asset check evaluation once (and a failing check passing again) to "
        "the webhook in SPOTIFY_ASSETS_ALERT_WEBHOOK, the Slack channel in SPOTIFY_ASSETS_SLACK_CHANNEL, "
        "or, with neither, the alerts.jsonl file in the data directory. Launches no runs."
    ),
)
def check_alerts_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    settings = load_settings()
    instance = context.instance
    if context.cursor:
        state = AlertState.from_cursor(context.cursor)
    else:
        # First tick (or a cleared cursor): what is failing among the last day's evaluations
        # is announced; older history is not.
        start = alerts.lookback_start(instance, time.time() - alerts.REPLAY_LOOKBACK_S)
        state = AlertState(after=start, replay=True)

    evaluations, scanned_to = alerts.read_evaluations(instance, state.after)
    plan = alerts.plan_alerts(state, evaluations, scanned_to)
    if not plan.steps:
        context.update_cursor(plan.final.to_cursor())
        return dg.SkipReason("no new failed check evaluation, and no failing check passed again")

    destinations = alerts.destinations_from_settings(settings)
    if all(isinstance(d, FileDestination) for d in destinations):
        context.log.warning(alerts.unconfigured_warning(settings.alerts_file))

    current = state
    sent: list[Alert] = []
    for step in plan.steps:
        alert = Alert.from_evaluation(step.evaluation, step.status, settings.alerts.webserver_url)
        already = current.delivered.to if current.delivered and current.delivered.alert_id == alert.id else ()
        delivered, errors = _deliver(context, alert, destinations, already)
        if errors:
            # Keep the cursor before this alert: the next tick retries it, only where it has not
            # arrived yet, and the alerts after it wait, so they arrive in order.
            current = replace(current, delivered=Delivered(alert.id, tuple(delivered)) if delivered else None)
            context.update_cursor(current.to_cursor())
            done = f"{_sent_summary(sent)}; " if sent else ""
            return dg.SkipReason(f"{done}delivery failed for {alert.label} ({'; '.join(errors)}); retried on the next tick")
        current = step.state_after
        sent.append(alert)
    context.update_cursor(plan.final.to_cursor())
    return dg.SkipReason(_sent_summary(sent))


def _deliver(
    context: dg.SensorEvaluationContext, alert: Alert, destinations: list[alerts.Destination], already: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """Send `alert` to every destination not `already` reached: the names reached, and the errors."""
    delivered = list(already)
    errors: list[str] = []
    for destination in destinations:
        if destination.name in already:
            continue
        try:
            destination.send(alert)
        except AlertDeliveryError as err:
            errors.append(str(err))
            context.log.warning(
                f"could not deliver the {alert.status} alert for {alert.label} to {destination.name}: "
                f"{err}. It is retried on the next tick."
            )
            continue
        delivered.append(destination.name)
        context.log.info(f"sent the {alert.status} alert for {alert.label} to {destination.name}")
    return delivered, errors


def _sent_summary(sent: list[Alert]) -> str:
    """`sent 1 alert (failed: songs/unique_key, window 2026-01-01-00:00)`."""
    shown = "; ".join(f"{a.status}: {a.label}" for a in sent[:3])
    more = f"; and {len(sent) - 3} more" if len(sent) > 3 else ""
    return f"sent {len(sent)} alert{'s' if len(sent) != 1 else ''} ({shown}{more})"
