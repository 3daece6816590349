"""The 8-hour windows every partitioned asset shares (00:00, 08:00, 16:00 UTC)."""

import dagster as dg

from spotify_assets.defs.resources import load_settings

WINDOW_CRON = "0 */8 * * *"

# Keys use Dagster's hourly format ('2026-11-21-08:00'); a window is named by its start and
# exists once it has closed, so the newest key is always the window that just ended.
snapshot_windows = dg.TimeWindowPartitionsDefinition(
    cron_schedule=WINDOW_CRON,
    start=load_settings().first_window,
    fmt="%Y-%m-%d-%H:%M",
    timezone="UTC",
)
