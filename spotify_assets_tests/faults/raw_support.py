"""Shared by the raw-store fault tests: materialize windows as the schedule would, against the
API emulator and real local files, and count what the tables hold."""

from __future__ import annotations

import duckdb
import dagster as dg
import pytest

from spotify_assets.defs.playlists.raw import RAW_KEY
from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.raw.store import LocalBackend, SnapshotStore
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist
from spotify_assets_tests.support.pipeline_env import api_env, current_window
from spotify_assets_tests.support.windows import windowed


def run(partition_key: str, *, tables: bool = True, checks: bool = False, raise_on_error: bool = True):
    w = windowed()
    assets: list = [w.raw]
    if tables:
        assets.append(w.tables)
    if checks:
        assets.append(w.raw_checks)
    return dg.materialize(
        assets, resources=build_resources(load_settings()), partition_key=partition_key, raise_on_error=raise_on_error
    )


def only_tables(partition_key: str, raise_on_error: bool = True):
    return dg.materialize(
        [windowed().tables], resources=build_resources(load_settings()), partition_key=partition_key, raise_on_error=raise_on_error
    )


def raw_metadata(result) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == RAW_KEY:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError("raw_playlist_snapshots was not materialized")


def store() -> SnapshotStore:
    return SnapshotStore(LocalBackend(load_settings().data_dir))


def rows_by_playlist(table: str = "playlist_tracks") -> dict[str, int]:
    """Rows per playlist in the warehouse (every window)."""
    wh = load_settings().warehouse
    with duckdb.connect(str(wh.duckdb_path), read_only=True) as conn:
        return dict(conn.execute(f"select playlist_id, count(*) from {wh.schema}.{table} group by 1").fetchall())


def playlist_statuses() -> dict[str, str]:
    wh = load_settings().warehouse
    with duckdb.connect(str(wh.duckdb_path), read_only=True) as conn:
        return dict(conn.execute(f"select playlist_id, status from {wh.schema}.playlists").fetchall())


def playlist_errors() -> dict[str, str | None]:
    wh = load_settings().warehouse
    with duckdb.connect(str(wh.duckdb_path), read_only=True) as conn:
        return dict(conn.execute(f"select playlist_id, error_message from {wh.schema}.playlists").fetchall())


def captured_window(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator, sizes: dict[str, int]
) -> tuple[str, list[str]]:
    """Serve playlists of `sizes` (label -> rows), configure them, and run the newest window
    once: the window and the playlist ids, in the order of `sizes`."""
    ids = []
    for label, n in sizes.items():
        meta, rows = playlist(label, n)
        emulator.add_playlist(meta, rows)
        ids.append(meta["id"])
    api_env(monkeypatch, emulator, ids)
    window = current_window()
    run(window)
    return window, ids
