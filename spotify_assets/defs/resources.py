"""The one place that decides the deployment and builds its resources.

`SPOTIFY_ASSETS_DEPLOYMENT=local` (the default): raw snapshots are files under the data
directory, tables in DuckDB. `production`: raw snapshots in S3, tables in Snowflake, built by
`spotify_assets/production.py`, which only that deployment imports. Every deployment binds
the same resource keys, so asset code never asks where it runs. Every resource is built from the
`Settings` parsed once in `definitions.py`, which is also bound as the `settings` resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import dagster as dg

from spotify_assets.defs.io_managers import (
    ModelFilesIOManager,
    WarehouseDuckDBIOManager,
)
from spotify_assets.lib.spotify.extract import PlaylistSource
from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.samples.source import SampleSource
from spotify_assets.lib.settings import Settings, SpotifySettings
from spotify_assets.lib.raw.store import Backend, LocalBackend, SnapshotStore
from spotify_assets.lib.spotify.client import Credentials, SpotifyApi
from spotify_assets.lib.warehouse.duckdb import (
    AppendResult,
    DuckDBDatabase,
    WriteResult,
    duckdb_append_new,
    duckdb_replace,
    duckdb_replace_window,
    duckdb_rewrite_table,
    transaction,
)
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


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


class Warehouse(dg.ConfigurableResource):
    """The SQL warehouse the tables live in, for what is not a DataFrame: views, previews."""

    schema_name: str
    recent_release_days: int = 365

    @property
    def dialect(self) -> str:
        raise NotImplementedError

    @property
    def schema_ref(self) -> str:
        """How SQL names the schema (`analytics`; `DATABASE.SCHEMA` in Snowflake)."""
        return self.schema_name

    def qualified(self, name: str) -> str:
        return f"{self.schema_ref}.{name}"

    def execute(self, statements: list[str]) -> None:
        """Run the statements, in one transaction where the warehouse allows it."""
        raise NotImplementedError

    def reader(self) -> AbstractContextManager[Callable[[str], pd.DataFrame]]:
        """One connection for many queries: yields `query(sql)` -> frame, lower-case columns."""
        raise NotImplementedError

    def query(self, sql: str) -> pd.DataFrame:
        """The result of one query, with lower-case column names."""
        with self.reader() as read:
            return read(sql)

    def replace_rows(self, table: str, frame: pd.DataFrame, where: str) -> WriteResult:
        """In one transaction, delete the rows of declared `table` that `where` selects and
        insert `frame` (the table is created from its declaration if missing)."""
        raise NotImplementedError

    def replace_window(self, frames: dict[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        """In ONE transaction, replace `window` of every table in `frames` (name -> rows; each
        table created from its declaration if missing): all of them change, or none."""
        raise NotImplementedError

    def append_new(self, frames: dict[str, pd.DataFrame], fill: dict[str, tuple[str, str]]) -> dict[str, AppendResult]:
        """In ONE transaction, insert the rows of each table in `frames` whose key is not yet
        present (`fill`: a column set to how many rows another table's insert added)."""
        raise NotImplementedError

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        """Replace every row of declared `table` by `frame` (its declared columns), in one step."""
        raise NotImplementedError

    @property
    def catalog(self) -> tuple[str, str]:
        """Where the schema's tables are listed, and the schema's name there."""
        raise NotImplementedError

    def tables(self) -> set[str]:
        """The names (lower case) of the tables and views in the schema."""
        listing, schema = self.catalog
        found = self.query(f"SELECT table_name FROM {listing} WHERE table_schema = '{schema}'")
        return {str(name).lower() for name in found["table_name"]}


def _lower_case(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c).lower() for c in frame.columns]
    return frame


class DuckDBWarehouse(Warehouse):
    """The embedded warehouse: a DuckDB file under the data directory."""

    database: str
    schema_name: str = "analytics"
    lock_timeout_seconds: float = 600.0

    @property
    def dialect(self) -> str:
        return "duckdb"

    def _db(self) -> DuckDBDatabase:
        return DuckDBDatabase(self.database, lock_timeout_s=self.lock_timeout_seconds)

    def execute(self, statements: list[str]) -> None:
        with self._db().connect(write=True) as conn, transaction(conn):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name}")
            for statement in statements:
                conn.execute(statement)

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], pd.DataFrame]]:
        with self._db().connect(write=False) as conn:
            yield lambda sql: _lower_case(conn.execute(sql).fetchdf())

    def replace_rows(self, table: str, frame: pd.DataFrame, where: str) -> WriteResult:
        with self._db().connect(write=True) as conn:
            return duckdb_replace(conn, self.schema_name, table, frame, None, where=where)

    def replace_window(self, frames: dict[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        with self._db().connect(write=True) as conn:
            return duckdb_replace_window(conn, self.schema_name, frames, window)

    def append_new(self, frames: dict[str, pd.DataFrame], fill: dict[str, tuple[str, str]]) -> dict[str, AppendResult]:
        with self._db().connect(write=True) as conn:
            return duckdb_append_new(conn, self.schema_name, frames, fill)

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        with self._db().connect(write=True) as conn:
            return duckdb_rewrite_table(conn, self.schema_name, table, frame)

    @property
    def catalog(self) -> tuple[str, str]:
        return "information_schema.tables", self.schema_name


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

        return {"settings": settings, "spotify": SpotifyResource.from_settings(settings.spotify), **production.resources(settings)}
    # `settings`: the parsed Settings themselves, for the checks and sensors that need a value
    return {"settings": settings, "spotify": SpotifyResource.from_settings(settings.spotify), **local_resources(settings)}
