"""The windowed assets and checks as the code location builds them (defs/playlists/windowed.py),
for this environment's settings: tests that materialize a subset of the graph use these."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from spotify_assets.defs.partitions import snapshot_windows
from spotify_assets.defs.playlists.checks import window_checks
from spotify_assets.defs.playlists.raw import raw_asset
from spotify_assets.defs.playlists.tables import tables_asset
from spotify_assets.lib.settings import load_settings


def windows() -> dg.TimeWindowPartitionsDefinition:
    """The windows from the settings' first window (SPOTIFY_ASSETS_FIRST_WINDOW)."""
    return snapshot_windows(load_settings().first_window)


@dataclass(frozen=True)
class Windowed:
    raw: dg.AssetsDefinition  # raw_playlist_snapshots
    tables: dg.AssetsDefinition  # normalized_tables
    raw_checks: dg.AssetChecksDefinition
    table_checks: dg.AssetChecksDefinition


def windowed() -> Windowed:
    w = windows()
    raw_checks, table_checks = window_checks(w)
    return Windowed(raw_asset(w), tables_asset(w), raw_checks, table_checks)
