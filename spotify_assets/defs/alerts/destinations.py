"""The `alert_destinations` resource: the secrets the alert destinations need, bound by
environment variable name (`dg.EnvVar`), so the UI shows the variable and never the value.

Which destinations exist is decided by the settings (`AlertSettings`: a webhook, a Slack
channel, or neither); this resource only carries their secrets to the sensor at tick time.
"""

from __future__ import annotations

import dagster as dg

from spotify_assets.lib.alerts.delivery import Destination, destinations_from_settings
from spotify_assets.lib.settings import AlertSettings, Settings


class AlertDestinations(dg.ConfigurableResource):
    webhook_url: str | None = None  # SPOTIFY_ASSETS_ALERT_WEBHOOK: the URL may embed a token
    slack_bot_token: str | None = None  # SLACK_BOT_TOKEN

    @classmethod
    def from_settings(cls, alerts: AlertSettings) -> AlertDestinations:
        # the settings have checked that each configured destination's variable is set
        return cls(
            webhook_url=dg.EnvVar("SPOTIFY_ASSETS_ALERT_WEBHOOK") if alerts.webhook else None,
            slack_bot_token=dg.EnvVar("SLACK_BOT_TOKEN") if alerts.slack_channel else None,
        )

    def destinations(self, settings: Settings) -> list[Destination]:
        """The webhook and/or Slack; with neither, the alerts file."""
        return destinations_from_settings(settings, self.webhook_url, self.slack_bot_token)
