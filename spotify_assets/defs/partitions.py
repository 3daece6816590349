"""The 8-hour windows every partitioned asset shares (00:00, 08:00, 16:00 UTC).

A window is named by its start and exists once it has closed, so the newest key is always the
window that just ended (`lib/window.py` defines the window). The one import-time read of the
settings left in `defs/`: the partitions start at SPOTIFY_ASSETS_FIRST_WINDOW, and the asset
checks' partitions cannot be rebound at load as the assets' kinds are (`definitions.bind`).
"""

import dagster as dg

from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.window import KEY_FORMAT, WINDOW_CRON

snapshot_windows = dg.TimeWindowPartitionsDefinition(
    cron_schedule=WINDOW_CRON,
    start=load_settings().first_window,
    fmt=KEY_FORMAT,
    timezone="UTC",
)
