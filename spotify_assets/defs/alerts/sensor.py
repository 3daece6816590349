"""The `asset_check_alerts` sensor: every failed asset check evaluation is announced once.

Each tick reads the check evaluations recorded since the last one, decides with
`lib/alerts/delivery.plan_alerts` which of them a person must hear about (a failure not already
announced, or a failing check passing again), and delivers those to the configured
destinations: a webhook, Slack, or with neither the alerts file in the data directory. The
cursor remembers the last evaluation handled and what is failing, so nothing is announced
twice across ticks and restarts. A destination that fails does not hold back the others: its
deliveries wait in the cursor and are retried with a backoff, then given up (logged as an
error and recorded in the alerts file). The sensor launches no runs. It runs by default
wherever the daemon runs (`dagster dev`).
"""

import time
from dataclasses import replace

import dagster as dg

from spotify_assets.defs.alerts.event_log import lookback_start, read_evaluations
from spotify_assets.lib.alerts import delivery as alerts
from spotify_assets.lib.alerts.delivery import Alert, AlertState, FileDestination


@dg.sensor(
    name="asset_check_alerts",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    required_resource_keys={"settings", "alert_destinations"},
    description=(
        "Announces each failed asset check evaluation once (and a failing check passing again) to "
        "the webhook in SPOTIFY_ASSETS_ALERT_WEBHOOK, the Slack channel in SPOTIFY_ASSETS_SLACK_CHANNEL, "
        "or, with neither, the alerts.jsonl file in the data directory. Launches no runs."
    ),
)
def check_alerts_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    settings = context.resources.settings
    instance = context.instance
    if context.cursor:
        state = AlertState.from_cursor(context.cursor)
    else:
        # First tick (or a cleared cursor): what is failing among the last day's evaluations
        # is announced; older history is not.
        start = lookback_start(instance, time.time() - alerts.REPLAY_LOOKBACK_S)
        state = AlertState(after=start, replay=True)

    evaluations, scanned_to = read_evaluations(instance, state.after)
    plan = alerts.plan_alerts(state, evaluations, scanned_to)
    if not plan.steps and not state.pending:
        context.update_cursor(replace(plan.final, gave_up=state.gave_up).to_cursor())
        return dg.SkipReason("no new failed check evaluation, and no failing check passed again")

    destinations = context.resources.alert_destinations.destinations(settings)
    if plan.steps and all(isinstance(d, FileDestination) for d in destinations):
        context.log.warning(alerts.unconfigured_warning(settings.alerts_file))

    # Each destination on its own: a failed delivery waits in the cursor for its retry (with a
    # backoff, then a recorded give-up) and the cursor moves on, so one dead destination holds
    # back neither the others nor the alerts after it.
    delivery = alerts.Delivery(
        destinations, state, record_path=settings.alerts_file, log=context.log, now=time.time()
    )
    delivery.retry_due()
    current = state
    for step in plan.steps:
        if delivery.out_of_time():
            break  # the tick's sending time is spent: this alert and the next ones go next tick
        alert = Alert.from_evaluation(step.evaluation, step.status, settings.alerts.webserver_url)
        # a cursor written before per-destination retries may name an alert half delivered
        already = state.delivered.to if state.delivered and state.delivered.alert_id == alert.id else ()
        delivery.send_new(alert, skip=already)
        current = step.state_after
    else:
        current = plan.final
    context.update_cursor(
        replace(current, pending=tuple(delivery.pending), gave_up=tuple(delivery.gave_up)).to_cursor()
    )
    return dg.SkipReason(delivery.summary() or "no delivery was due")
