"""The one place that decides the deployment and builds its resources.

`SPOTIFY_ASSETS_DEPLOYMENT=local` (the default): raw snapshots are files under the data
directory, tables in DuckDB. `production`: raw snapshots in S3, tables in Snowflake, built by
`spotify_assets/production.py`, which only that deployment imports. Every deployment binds
the same resource keys, so asset code never asks where it runs. Settings are validated when the definitions load.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Literal

import dagster as dg

from spotify_assets.defs.io_managers import (
    ModelFilesIOManager,
    WarehouseDuckDBIOManager,
)
# Warehouse: the resource type asset code asks for (the binding is made below).
from spotify_assets.defs.warehouse import DuckDBWarehouse, Warehouse  # noqa: F401
from spotify_assets.lib.spotify.extract import PlaylistSource
from spotify_assets.lib.samples.source import SampleSource
from spotify_assets.lib.settings import Settings
from spotify_assets.lib.raw.store import Backend, LocalBackend, SnapshotStore
from spotify_assets.lib.spotify.client import (
    DEFAULT_ACCOUNTS_URL,
    DEFAULT_API_URL,
    Credentials,
    RetryPolicy,
    SpotifyApi,
)


def load_settings() -> Settings:
    """The settings for this process, from its environment (raises SettingsError).

    Several modules ask while the definitions load; the environment is parsed once for as
    long as it stays the same.
    """
    return _settings_for(frozenset(os.environ.items()))


def warehouse_kind() -> str:
    """The warehouse the tables live in for this deployment, as the UI's kinds name it."""
    return "snowflake" if load_settings().deployment == "production" else "duckdb"


@functools.lru_cache(maxsize=1)
def _settings_for(env: frozenset[tuple[str, str]]) -> Settings:
    return Settings.from_env(dict(env))


class SpotifyResource(dg.ConfigurableResource):
    """Reads playlists from the Spotify Web API, or the bundled synthetic sample.

    With `source="sample"` (no credentials configured) every window is served from a
    deterministic synthetic catalogue through the same extraction code as real responses.
    """

    source: Literal["api", "sample"] = "sample"
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    playlists: list[str] = []
    api_url: str = DEFAULT_API_URL
    accounts_url: str = DEFAULT_ACCOUNTS_URL
    market: str | None = None
    max_retry_after_seconds: float = 60.0
    max_attempts: int = 5
    request_timeout_seconds: float = 10.0
    request_deadline_seconds: float = 30.0
    concurrency: int = 8
    max_window_lag_hours: float = 24.0

    @property
    def is_sample(self) -> bool:
        return self.source == "sample"

    def check_window(self, window_end: datetime, now: datetime | None = None) -> None:
        """Refuse to label today's API state with a window that closed long ago.

        The API only tells the present: a snapshot taken now of a window that closed days ago
        would be mislabelled, and would replace that window's real snapshot.
        """
        if self.is_sample:
            return  # the sample can produce any window's state
        now = now or datetime.now(timezone.utc)
        lag = now - window_end
        if lag > timedelta(hours=self.max_window_lag_hours):
            raise dg.Failure(
                description=(
                    f"The window ending {window_end:%Y-%m-%d %H:%M} UTC closed {lag.total_seconds() / 3600:.1f} h ago. "
                    "The Spotify API returns only the current state of a playlist, so a snapshot taken "
                    "now cannot stand for that window. Materialize recent windows only, or raise "
                    f"SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS (now {self.max_window_lag_hours:g})."
                )
            )

    def open_source(self, window_start: datetime, log: Callable[[str], None] | None = None) -> PlaylistSource:
        """The source for one run; `log` receives retries and token renewals as they happen."""
        if self.is_sample:
            return SampleSource(window_start)
        api = SpotifyApi(
            Credentials(self.client_id or "", self.client_secret or "", self.refresh_token),
            api_url=self.api_url,
            accounts_url=self.accounts_url,
            policy=RetryPolicy(
                max_attempts=self.max_attempts,
                max_retry_after_s=self.max_retry_after_seconds,
                timeout_s=self.request_timeout_seconds,
                deadline_s=self.request_deadline_seconds,
            ),
            pool_size=self.concurrency,
            log=log,
        )
        api.authenticate()
        return api

    def playlist_ids(self, source: PlaylistSource) -> list[str]:
        if isinstance(source, SampleSource):
            return source.playlist_ids
        return list(self.playlists)


class RawSnapshotStore(dg.ConfigurableResource):
    """Where raw files are kept: playlist snapshot documents (see `lib/raw/store.py`) and
    the listening-history exports people drop in (`listening/`)."""

    def backend(self) -> Backend:
        raise NotImplementedError

    def store(self) -> SnapshotStore:
        return SnapshotStore(self.backend())


class LocalRawSnapshotStore(RawSnapshotStore):
    """Raw files under a local directory."""

    base_dir: str

    def backend(self) -> Backend:
        return LocalBackend(self.base_dir)


def _env(name: str) -> str | dg.EnvVar | None:
    # Secrets go in as EnvVar: resolved at run time, shown in the UI by name, never by value.
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else None


def spotify_resource(settings: Settings) -> SpotifyResource:
    s = settings.spotify
    return SpotifyResource(
        source=s.source,
        client_id=_env("SPOTIFY_CLIENT_ID") if s.source == "api" else None,
        client_secret=_env("SPOTIFY_CLIENT_SECRET") if s.source == "api" else None,
        refresh_token=_env("SPOTIFY_REFRESH_TOKEN") if s.user_auth else None,
        playlists=list(s.playlist_ids),
        api_url=s.api_url,
        accounts_url=s.accounts_url,
        market=s.market,
        max_retry_after_seconds=s.max_retry_after_s,
        max_attempts=s.max_attempts,
        request_timeout_seconds=s.timeout_s,
        request_deadline_seconds=s.deadline_s,
        concurrency=s.concurrency,
        max_window_lag_hours=s.max_window_lag_hours,
    )


def local_resources(settings: Settings) -> dict[str, object]:
    """The local deployment: raw files and models under the data directory, tables in DuckDB."""
    wh = settings.warehouse
    return {
        "raw_store": LocalRawSnapshotStore(base_dir=str(settings.data_dir)),
        # pickles, one file per model asset, under <data dir>/models/
        "model_io_manager": ModelFilesIOManager(base_dir=str(settings.data_dir / "models")),
        "warehouse_io_manager": WarehouseDuckDBIOManager(database=str(wh.duckdb_path), schema=wh.schema),
        "warehouse": DuckDBWarehouse(
            database=str(wh.duckdb_path), schema_name=wh.schema, recent_release_days=wh.recent_release_days
        ),
    }


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource key bound for the selected deployment. Production's modules (S3,
    Snowflake: seconds to import) are imported only when it is the one selected."""
    if settings.deployment == "production":
        from spotify_assets import production

        return {"spotify": spotify_resource(settings), **production.resources(settings)}
    return {"spotify": spotify_resource(settings), **local_resources(settings)}
