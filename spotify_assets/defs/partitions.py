"""The 8-hour windows every partitioned asset shares (00:00, 08:00, 16:00 UTC).

A window is named by its start and exists once it has closed, so the newest key is always the
window that just ended (`lib/window.py` defines the window). The windows begin at the settings'
first window (SPOTIFY_ASSETS_FIRST_WINDOW), so the partitioned assets and checks are built when
the code location loads (`defs/playlists/windowed.py`), not when a module is imported.
"""

import dagster as dg

from spotify_assets.lib.window import KEY_FORMAT, WINDOW_CRON


def snapshot_windows(first_window: str) -> dg.TimeWindowPartitionsDefinition:
    """The windows from `first_window` ('2026-01-01-00:00') to the one that closed last."""
    return dg.TimeWindowPartitionsDefinition(cron_schedule=WINDOW_CRON, start=first_window, fmt=KEY_FORMAT, timezone="UTC")
