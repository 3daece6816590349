"""The six normalized tables: their columns, types and keys (each warehouse's DDL: lib/warehouse/).

One declaration serves every use: the frames the normalizer builds are conformed to it, the
warehouses create their tables from it (so an empty window still has a typed table), and the
UI shows it as each asset's column schema.

Every row carries `window_start`, the start of its 8-hour snapshot window (UTC); each table's
key is unique within a window. Timestamps are `TIMESTAMPTZ` / `TIMESTAMP_TZ` holding UTC.
Release dates are kept as the API gives them (`'2002'`, `'2002-05'`, `'2002-05-17'`) with
their precision; the period they denote is spelled out in `release_period_start/_end`, so
nothing invents a day and nothing becomes 1970.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spotify_assets.lib.lazy import lazy

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


PARTITION_COLUMN = "window_start"

# declared column type -> pandas dtype (each target's SQL types: its `Dialect` in lib/warehouse/)
TYPES: dict[str, str] = {
    "string": "object",
    "int": "Int32",
    "bigint": "Int64",
    "bool": "boolean",
    "double": "float64",
    "date": "datetime64[s]",
    "timestamp": "datetime64[us, UTC]",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # unique per window, with window_start (in the model's tables: unique)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def empty_frame(self) -> pd.DataFrame:
        return pd.DataFrame({c.name: pd.Series([], dtype=TYPES[c.type]) for c in self.columns})

    def conform(self, frame: pd.DataFrame, *, partial: bool = False) -> pd.DataFrame:
        """The frame with this table's columns, in order, with their dtypes.

        Raises ValueError naming the columns that are missing or unexpected. With `partial`
        (a frame read back with a column selection), missing columns are allowed.
        """
        names = self.column_names
        missing = [] if partial else [n for n in names if n not in frame.columns]
        extra = [str(n) for n in frame.columns if n not in names]
        if missing or extra:
            raise ValueError(
                f"table {self.name}: frame does not match the declared columns "
                f"(missing: {missing or 'none'}; unexpected: {extra or 'none'})"
            )
        out = {}
        for column in self.columns:
            if column.name not in frame.columns:
                continue
            series = frame[column.name]
            if str(series.dtype) != TYPES[column.type]:
                series = _cast(series, column)
            out[column.name] = series
        return pd.DataFrame(out, index=frame.index)


def _cast(series: pd.Series, column: Column) -> pd.Series:
    kind = column.type
    if kind == "timestamp":
        return pd.to_datetime(series, utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    if kind == "date":
        return pd.to_datetime(series).astype("datetime64[s]")
    if kind == "string":
        return series.astype(object).where(series.notna(), None)
    return series.astype(TYPES[kind])


def _window() -> Column:
    return Column(PARTITION_COLUMN, "timestamp", "start of the 8-hour snapshot window (UTC)", nullable=False)


SONGS = Table(
    "songs",
    "One row per song (track) listed in any playlist in the window, as the API described it then.",
    (
        _window(),
        Column("song_id", "string", "Spotify track id", nullable=False),
        Column("name", "string", "track name"),
        Column("duration_ms", "bigint", "length in milliseconds"),
        Column("url", "string", "open.spotify.com link"),
        Column("popularity", "int", "0-100 at snapshot time; null where the API no longer returns it"),
        Column("added_date", "timestamp", "earliest added_at of the song across the window's playlists (UTC)"),
        Column("album_id", "string", "the track's album"),
        Column("artist_id", "string", "the track's first artist (not the album's)"),
        Column("artist_count", "int", "number of artists credited on the track"),
        Column("explicit", "bool", "explicit lyrics"),
        Column("track_number", "int", "position on its disc"),
        Column("disc_number", "int", "disc of the album"),
        Column("isrc", "string", "International Standard Recording Code, where returned"),
        Column("is_playable", "bool", "playable in the requested market (null without a market)"),
        Column("uri", "string", "spotify:track:… uri"),
        Column("playlist_appearances", "int", "rows across the window's playlists that list the song"),
    ),
    ("song_id",),
)

ARTISTS = Table(
    "artists",
    "One row per artist credited on a song or album in the window.",
    (
        _window(),
        Column("artist_id", "string", "Spotify artist id", nullable=False),
        Column("name", "string", "artist name"),
        Column("url", "string", "open.spotify.com link"),
        Column("uri", "string", "spotify:artist:… uri"),
        Column("popularity", "int", "0-100; null: not in playlist responses, removed in Development Mode"),
        Column("followers", "bigint", "null: not in playlist responses, removed in Development Mode"),
        Column("genres", "string", "JSON array of genres; null: not in playlist responses"),
    ),
    ("artist_id",),
)

ALBUMS = Table(
    "albums",
    "One row per album of a song in the window.",
    (
        _window(),
        Column("album_id", "string", "Spotify album id", nullable=False),
        Column("name", "string", "album name"),
        Column("release_date", "string", "as the API gives it: 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'"),
        Column("release_date_precision", "string", "year, month or day"),
        Column("release_year", "int", "year of release (null if the API gave none or '0000')"),
        Column("release_period_start", "date", "first day of the release period (its precision)"),
        Column("release_period_end", "date", "last day of the release period (its precision)"),
        Column("total_tracks", "int", "tracks on the album"),
        Column("url", "string", "open.spotify.com link"),
        Column("uri", "string", "spotify:album:… uri"),
        Column("album_type", "string", "album, single or compilation"),
        Column("artist_id", "string", "the album's first artist"),
        Column("popularity", "int", "null where the API no longer returns it"),
        Column("label", "string", "null where the API no longer returns it"),
    ),
    ("album_id",),
)

SONG_ARTISTS = Table(
    "song_artists",
    "Every artist of every song, in credit order (position 0 is the song's artist_id).",
    (
        _window(),
        Column("song_id", "string", "Spotify track id", nullable=False),
        Column("artist_position", "int", "0-based order of the credit", nullable=False),
        Column("artist_id", "string", "Spotify artist id", nullable=False),
    ),
    ("song_id", "artist_position"),
)

PLAYLISTS = Table(
    "playlists",
    "One row per configured playlist per window, including those that could not be read.",
    (
        _window(),
        Column("playlist_id", "string", "Spotify playlist id", nullable=False),
        Column("name", "string", "playlist name"),
        Column("description", "string", "playlist description"),
        Column("owner_id", "string", "owner's user id"),
        Column("owner_name", "string", "owner's display name"),
        Column("public", "bool", "public playlist"),
        Column("collaborative", "bool", "collaborative playlist"),
        Column("snapshot_id", "string", "Spotify's version id of the playlist"),
        Column("followers", "bigint", "followers at snapshot time"),
        Column("url", "string", "open.spotify.com link"),
        Column("status", "string", "ok; failed (the API refused or gave up); unreadable (stored document is malformed)", nullable=False),
        Column("error_kind", "string", "why it is not ok (forbidden, not_found, rate_limited, too_large, …)"),
        Column("error_message", "string", "what went wrong and what to do"),
        Column("rows_total", "int", "rows the API reported for the playlist"),
        Column("rows_read", "int", "rows read and stored"),
        Column("song_rows", "int", "rows loaded into playlist_tracks"),
        Column("episode_rows", "int", "podcast episodes: counted, not songs"),
        Column("local_rows", "int", "local files: counted, not songs"),
        Column("unavailable_rows", "int", "rows whose track the API returned as null"),
        Column("other_rows", "int", "rows of an unknown type or without an id"),
        Column("repeated_song_rows", "int", "rows listing a song already listed earlier in the playlist"),
        Column("extracted_at", "timestamp", "when reading the playlist started (UTC)"),
    ),
    ("playlist_id",),
)

PLAYLIST_TRACKS = Table(
    "playlist_tracks",
    "One row per song row of each playlist: a song listed twice is two rows.",
    (
        _window(),
        Column("playlist_id", "string", "Spotify playlist id", nullable=False),
        Column("position", "int", "0-based position in the playlist (gaps are rows that are not songs)", nullable=False),
        Column("song_id", "string", "Spotify track id", nullable=False),
        Column("added_at", "timestamp", "when the row was added (UTC); null for old playlists"),
        Column("added_by_id", "string", "user who added it; '' on Spotify editorial playlists"),
    ),
    ("playlist_id", "position"),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (SONGS, ARTISTS, ALBUMS, SONG_ARTISTS, PLAYLISTS, PLAYLIST_TRACKS)
}


# --- the popularity model's tables (whole-table writes, not windows) ----------------------------

POPULARITY_FEATURES = Table(
    "popularity_features",
    "The popularity forecast's features: one row per song and snapshot window (the newest "
    "history_windows windows), each describing the song as it stood at that window, from what was "
    "known then. Built by sql/model/popularity_features.sql.",
    (
        Column("song_id", "string", "Spotify track id", nullable=False),
        Column(PARTITION_COLUMN, "timestamp", "the snapshot window the row describes (t)", nullable=False),
        Column("name", "string", "track name"),
        Column("artist_id", "string", "the song's first artist: evaluation never splits an artist across folds"),
        Column("popularity", "int", "popularity at the window: where a forecast starts, and a later row's answer; null where the API gave none"),
        Column("duration_ms", "bigint", "length in milliseconds"),
        Column("explicit", "bool", "explicit lyrics"),
        Column("track_number", "int", "position on its disc"),
        Column("disc_number", "int", "disc of the album"),
        Column("artist_count", "int", "artists credited on the song"),
        Column("album_type", "string", "album, single or compilation"),
        Column("album_total_tracks", "int", "tracks on the album"),
        Column("release_date_precision", "string", "year, month or day"),
        Column("release_age_days", "double", "days from the middle of the release period to the window"),
        Column("playlist_appearances", "int", "playlist rows listing the song in the window"),
        Column("playlist_count", "int", "playlists listing the song in the window"),
        Column("mean_position", "double", "mean 0-based position in those playlists"),
        Column("days_since_added", "int", "days since the song was first added to one of them"),
        Column("previous_popularity", "int", "popularity in the newest earlier window that had one"),
        Column("popularity_windows_before", "int", "earlier windows that gave the song a popularity"),
        Column("windows_listed_before", "int", "earlier windows that listed the song (0: new in this window)"),
        Column("artist_other_songs", "int", "the first artist's other songs in the window"),
        Column("artist_other_mean_popularity", "double", "mean popularity of the first artist's OTHER songs in the window (leave-one-out)"),
    ),
    ("song_id", PARTITION_COLUMN),
)

SONG_POPULARITY_PREDICTIONS = Table(
    "song_popularity_predictions",
    "The stored forecast for every song of the newest window: its popularity now, the popularity the "
    "model expects a horizon later, and the expected change.",
    (
        Column("song_id", "string", "Spotify track id", nullable=False),
        Column(PARTITION_COLUMN, "timestamp", "the window the forecast starts from (the newest)", nullable=False),
        Column("forecast_window", "timestamp", "the window the forecast is for: window_start + the horizon", nullable=False),
        Column("horizon_windows", "int", "8-hour windows ahead", nullable=False),
        Column("name", "string", "track name"),
        Column("artist_id", "string", "the song's first artist"),
        Column("popularity", "int", "popularity at window_start; null where the API gave none (then no forecast)"),
        Column("predicted_popularity", "double", "the popularity expected at forecast_window, 0-100"),
        Column("expected_change", "double", "predicted_popularity minus popularity"),
        Column("new_song", "bool", "first listed in window_start: no history (the cold-start case)"),
        Column("model", "string", "the kind of model that forecast (the champion of its evaluation)"),
        Column("model_version", "string", "version of the model that forecast", nullable=False),
        Column("predicted_at", "timestamp", "when the forecast was made (UTC)", nullable=False),
    ),
    ("song_id",),
)

MODEL_TABLES: dict[str, Table] = {t.name: t for t in (POPULARITY_FEATURES, SONG_POPULARITY_PREDICTIONS)}

# --- listening history (Spotify's personal data export) ------------------------------------

STREAMS = Table(
    "streams",
    "One row per play in the listening-history exports dropped into the listening folder (Extended "
    "streaming history, older endsong files, or the short account-data format), several listeners side by side.",
    (
        Column("listener", "string", "whose export: the folder it was dropped in", nullable=False),
        Column("played_at", "timestamp", "when playback ended (UTC), as the export records it", nullable=False),
        Column("ms_played", "bigint", "milliseconds played"),
        Column("track_name", "string", "track name; null for podcast episodes and some plays"),
        Column("artist_name", "string", "the track's artist as the export names it"),
        Column("album_name", "string", "the track's album (extended format only)"),
        Column("song_id", "string", "Spotify track id from the track URI: joins songs.song_id"),
        Column("track_uri", "string", "spotify:track:… (extended format only)"),
        Column("episode_name", "string", "podcast episode name"),
        Column("show_name", "string", "podcast show name"),
        Column("episode_uri", "string", "spotify:episode:…"),
        Column("conn_country", "string", "ISO country code of the connection"),
        Column("platform", "string", "device platform as exported"),
        Column("ip_hash", "string", "keyed hash of the IP address (SPOTIFY_ASSETS_IP_HASH_KEY); null without a key. The address itself is never stored"),
        Column("reason_start", "string", "why playback started (trackdone, clickrow, …)"),
        Column("reason_end", "string", "why playback ended (trackdone, fwdbtn, …)"),
        Column("shuffle", "bool", "shuffle was on"),
        Column("skipped", "bool", "the user skipped to the next track; null where the export does not say"),
        Column("offline", "bool", "played offline"),
        Column("offline_at", "timestamp", "when an offline play happened (UTC), from offline_timestamp"),
        Column("incognito_mode", "bool", "played in a private session"),
        Column("source_format", "string", "extended, endsong or account", nullable=False),
        Column("source_file", "string", "the export file, relative to the listening folder", nullable=False),
        Column("source_sha256", "string", "SHA-256 of the bytes of the file the play was first read from", nullable=False),
        Column("source_row", "int", "0-based position of the play in its file", nullable=False),
        Column("ingested_at", "timestamp", "when the file was ingested (UTC)", nullable=False),
        Column("play_id", "string", "natural key of the play (lib/listening.play_ids): the table holds each play once, whatever re-exports held it", nullable=False),
    ),
    ("play_id",),
)

LISTENING_FILES = Table(
    "listening_files",
    "One row per listening-export file (or zip member) read into streams: which content, how many plays it held, how many were new.",
    (
        Column("source_file", "string", "the export file, relative to the listening folder; a zip member is `<zip>!<member>`", nullable=False),
        Column("tag", "string", "the storage's content tag when read (S3 ETag; locally mtime, size, inode): a new tag is read again", nullable=False),
        Column("sha256", "string", "SHA-256 of the file's bytes", nullable=False),
        Column("size_bytes", "bigint", "size of the file", nullable=False),
        Column("rows_read", "bigint", "plays in the file", nullable=False),
        Column("rows_added", "bigint", "plays not in streams before: the others were already there", nullable=False),
        Column("ingested_at", "timestamp", "when the file was read (UTC)", nullable=False),
    ),
    ("source_file", "tag"),
)

LISTENING_TABLES: dict[str, Table] = {STREAMS.name: STREAMS, LISTENING_FILES.name: LISTENING_FILES}

# Every table written with a declared schema: the windowed tables, the model's, the listening history.
DECLARED_TABLES: dict[str, Table] = {**TABLES, **MODEL_TABLES, **LISTENING_TABLES}
