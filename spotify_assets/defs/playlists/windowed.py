"""What is partitioned by window, built for the deployment's windows when the code location
loads: the raw snapshots, the six tables and their per-window checks.

The windows start at the settings' first window (SPOTIFY_ASSETS_FIRST_WINDOW), and an asset
check's partitions cannot be changed once it is declared, so these are built here from the
parsed settings (`definitions.build_definitions`) rather than declared when a module is
imported. The job and the schedules that run them are declared in their modules and take the
windows from the assets they select.
"""

import dagster as dg

from spotify_assets.defs.partitions import snapshot_windows
from spotify_assets.defs.playlists.checks import window_checks
from spotify_assets.defs.playlists.raw import raw_asset
from spotify_assets.defs.playlists.tables import tables_asset


def windowed_definitions(first_window: str) -> dg.Definitions:
    """The windowed assets and checks, the windows starting at `first_window` ('2026-01-01-00:00')."""
    windows = snapshot_windows(first_window)
    return dg.Definitions(assets=[raw_asset(windows), tables_asset(windows)], asset_checks=window_checks(windows))
