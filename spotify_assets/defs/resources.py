"""The one place that decides the deployment and builds its resources.

Two choices, made independently. `SPOTIFY_ASSETS_DEPLOYMENT` puts raw snapshots and models
under the data directory (`local`, the default) or in S3 (`production`).
`SPOTIFY_ASSETS_WAREHOUSE` puts the tables, views and checks in DuckDB (the local default),
Snowflake (the production default, `spotify_assets/production.py`), MySQL
(`defs/mysql_warehouse.py`) or the Iceberg lake (`defs/lake.py`); each target's module, and its
driver, is imported only when it is the one selected. Every pair binds the same resource keys,
so asset code never asks where it runs. Every resource is built from the
`Settings` parsed once in `definitions.py`, which is also bound as the `settings` resource.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg

from spotify_assets.defs.alerts.destinations import AlertDestinations
from spotify_assets.defs.io_managers import (
    ModelFilesIOManager,
    WarehouseDuckDBIOManager,
)
# Warehouse: the resource type asset code asks for (the binding is made below).
from spotify_assets.defs.warehouse import DuckDBWarehouse, Warehouse  # noqa: F401
from spotify_assets.lib.spotify.extract import PlaylistSource
from spotify_assets.lib.samples.source import SampleSource
from spotify_assets.lib.settings import Settings, SpotifySettings
from spotify_assets.lib.raw.store import Backend, LocalBackend, S3Backend, SnapshotStore
from spotify_assets.lib.spotify.client import Credentials, SpotifyApi


class SpotifyResource(dg.ConfigurableResource):
    """Reads playlists from the Spotify Web API, or the bundled synthetic sample.

    With `source="sample"` (no credentials configured) every window is served from a
    deterministic synthetic catalogue through the same extraction code as real responses.
    Built by `from_settings`: its config is `SpotifySettings` (declared in lib/settings.py) as
    plain values, and the secrets, bound by environment variable name, never by value.
    """

    spotify: dict[str, Any]  # SpotifySettings.as_dict()
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None

    @classmethod
    def from_settings(cls, spotify: SpotifySettings) -> SpotifyResource:
        # Secrets go in as EnvVar: resolved at run time, shown in the UI by name. The settings
        # have checked that they are set: the API source needs both, user auth the token.
        api = spotify.source == "api"
        return cls(
            spotify=spotify.as_dict(),
            client_id=dg.EnvVar("SPOTIFY_CLIENT_ID") if api else None,
            client_secret=dg.EnvVar("SPOTIFY_CLIENT_SECRET") if api else None,
            refresh_token=dg.EnvVar("SPOTIFY_REFRESH_TOKEN") if spotify.user_auth else None,
        )

    @property
    def settings(self) -> SpotifySettings:
        return SpotifySettings.from_dict(self.spotify)

    @property
    def is_sample(self) -> bool:
        return self.settings.source == "sample"

    def check_window(self, window_end: datetime, now: datetime | None = None) -> None:
        """Refuse to label today's API state with a window that closed long ago.

        The API only tells the present: a snapshot taken now of a window that closed days ago
        would be mislabelled, and would replace that window's real snapshot.
        """
        if self.is_sample:
            return  # the sample can produce any window's state
        now = now or datetime.now(timezone.utc)
        lag = now - window_end
        max_lag = self.settings.max_window_lag_hours
        if lag > timedelta(hours=max_lag):
            raise dg.Failure(
                description=(
                    f"The window ending {window_end:%Y-%m-%d %H:%M} UTC closed {lag.total_seconds() / 3600:.1f} h ago. "
                    "The Spotify API returns only the current state of a playlist, so a snapshot taken "
                    "now cannot stand for that window. Materialize recent windows only, or raise "
                    f"SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS (now {max_lag:g})."
                )
            )

    def open_source(self, window_start: datetime, log: Callable[[str], None] | None = None) -> PlaylistSource:
        """The source for one run; `log` receives retries and token renewals as they happen."""
        if self.is_sample:
            return SampleSource(window_start)
        settings = self.settings
        api = SpotifyApi(
            Credentials(self.client_id or "", self.client_secret or "", self.refresh_token),
            api_url=settings.api_url,
            accounts_url=settings.accounts_url,
            policy=settings.retry,
            pool_size=settings.concurrency,
            log=log,
        )
        api.authenticate()
        return api

    def playlist_ids(self, source: PlaylistSource) -> list[str]:
        if isinstance(source, SampleSource):
            return source.playlist_ids
        return list(self.settings.playlist_ids)


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


class S3RawSnapshotStore(RawSnapshotStore):
    """Raw files as objects under an S3 bucket and prefix (the AWS_* variables honoured:
    region, endpoint, credentials from the AWS chain). boto3 is imported when the store is
    first used, not when the code location loads."""

    bucket: str
    prefix: str = ""

    def backend(self) -> Backend:
        import boto3
        from botocore.config import Config

        # retried as dagster-aws's S3Resource retries (5 attempts)
        client = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}))
        return S3Backend(client, self.bucket, self.prefix)


def local_stores(settings: Settings) -> dict[str, object]:
    """Raw files and models under the data directory (SPOTIFY_ASSETS_DEPLOYMENT=local)."""
    return {
        "raw_store": LocalRawSnapshotStore(base_dir=str(settings.data_dir)),
        # pickles, one file per model asset, under <data dir>/models/
        "model_io_manager": ModelFilesIOManager(base_dir=str(settings.data_dir / "models")),
    }


def s3_stores(settings: Settings) -> dict[str, object]:
    """Raw snapshots and models in S3 (SPOTIFY_ASSETS_DEPLOYMENT=production)."""
    from dagster_aws.s3 import S3PickleIOManager, S3Resource

    assert settings.s3 is not None
    models_prefix = "/".join(p for p in (settings.s3.prefix.strip("/"), "models") if p)
    return {
        "raw_store": S3RawSnapshotStore(bucket=settings.s3.bucket, prefix=settings.s3.prefix),
        "model_io_manager": S3PickleIOManager(s3_resource=S3Resource(), s3_bucket=settings.s3.bucket, s3_prefix=models_prefix),
    }


def duckdb_resources(settings: Settings) -> dict[str, object]:
    """The warehouse keys bound to the DuckDB file (SPOTIFY_ASSETS_DUCKDB_PATH)."""
    wh = settings.warehouse
    return {
        "warehouse_io_manager": WarehouseDuckDBIOManager(database=str(wh.duckdb_path), schema=wh.schema),
        "warehouse": DuckDBWarehouse(
            database=str(wh.duckdb_path), schema_name=wh.schema, recent_release_days=wh.recent_release_days
        ),
    }


def local_resources(settings: Settings) -> dict[str, object]:
    """The local deployment with the DuckDB warehouse: everything under the data directory."""
    return {**local_stores(settings), **duckdb_resources(settings)}


def warehouse_resources(settings: Settings) -> dict[str, object]:
    """The `warehouse` and `warehouse_io_manager` keys of the selected target."""
    target = settings.warehouse_target
    if target == "duckdb":
        return duckdb_resources(settings)
    if target == "snowflake":
        from spotify_assets import production  # dagster-snowflake: seconds to import

        return production.snowflake_resources(settings)
    if target == "mysql":
        from spotify_assets.defs import mysql_warehouse

        return mysql_warehouse.resources(settings)
    if target == "iceberg":
        from spotify_assets.defs import lake

        return lake.resources(settings)
    raise ValueError(f"SPOTIFY_ASSETS_WAREHOUSE={target} is not a warehouse target")


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource key bound for the selected deployment and warehouse."""
    # `settings`: the parsed Settings themselves, for the checks and sensors that need a value
    shared = {
        "settings": settings,
        "spotify": SpotifyResource.from_settings(settings.spotify),
        "alert_destinations": AlertDestinations.from_settings(settings.alerts),
    }
    stores = s3_stores(settings) if settings.deployment == "production" else local_stores(settings)
    return {**shared, **stores, **warehouse_resources(settings)}
