"""The environment of a pipeline run against the API emulator, shared by ingestion and fault tests."""

from __future__ import annotations

import pytest

from spotify_assets_tests.support.windows import windows
from spotify_assets_tests.support.emulator import SpotifyEmulator


def api_env(monkeypatch: pytest.MonkeyPatch, emu: SpotifyEmulator, playlist_ids: list[str]) -> None:
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", emu.client_id)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", emu.client_secret)
    monkeypatch.setenv("SPOTIFY_API_URL", emu.api_url)
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", emu.accounts_url)
    monkeypatch.setenv("SPOTIFY_PLAYLISTS", ",".join(f"spotify:playlist:{pid}" for pid in playlist_ids))
    monkeypatch.setenv("SPOTIFY_MAX_ATTEMPTS", "2")


def current_window() -> str:
    """The window that closed most recently: the one a live API run may still stand for."""
    return windows().get_partition_keys()[-1]
