"""Raw playlist snapshot documents -> the six normalized tables, one window at a time.

Each stored document is decoded by msgspec into typed structs that declare only the fields
the tables need: everything else in a row (images, markets, links, …) is skipped by the
decoder without building Python objects, so normalizing costs less than parsing the JSON.
Documents are decoded one at a time; only the table columns accumulate. Sequences are
decoded as tuples: a tuple of untracked structs drops out of the cyclic garbage collector's
view, a list would not, and the kept song payloads would make every collection walk them.

Both API shapes are read: rows carry their track under `item` (2026) or `track` (before).
A row becomes a song only if it is a track with an id and not a local file; null, local,
episode and unknown rows are counted on the playlist's row, never loaded as songs.
A document that does not decode (a type the API never sends, say) is reported with the
path of the bad value, and its playlist gets status `unreadable`; the others go on.

A window's enrichment document (the batch endpoints' answers, lib/spotify/enrich.py) fills
the columns playlist responses never carry: artist popularity, followers and genres, album
popularity and label. It is decoded batch by batch: a batch that does not decode is reported
and skipped, and a window without enrichment gives exactly the tables it gave before.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.raw.store import (
    SnapshotStore,
    VersionCollected,
    WindowManifest,
)
from spotify_assets.lib.tables.schema import TABLES

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")

# --- the parts of a document the tables read ------------------------------------------------


class _Links(msgspec.Struct, gc=False):
    spotify: str | None = None


class _Followers(msgspec.Struct, gc=False):
    total: int | None = None


class _ExternalIds(msgspec.Struct, gc=False):
    isrc: str | None = None


class _Artist(msgspec.Struct, gc=False):
    id: str | None = None
    name: str | None = None
    external_urls: _Links | None = None
    uri: str | None = None
    popularity: int | None = None
    followers: _Followers | None = None
    genres: list[str] | None = None


class _Album(msgspec.Struct, gc=False):
    id: str | None = None
    name: str | None = None
    album_type: str | None = None
    release_date: str | None = None
    release_date_precision: str | None = None
    total_tracks: int | None = None
    external_urls: _Links | None = None
    uri: str | None = None
    artists: tuple[_Artist, ...] | None = None
    popularity: int | None = None
    label: str | None = None


class _Payload(msgspec.Struct, gc=False):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    uri: str | None = None
    external_urls: _Links | None = None
    duration_ms: int | None = None
    explicit: bool | None = None
    disc_number: int | None = None
    track_number: int | None = None
    popularity: int | None = None
    is_local: bool | None = None
    is_playable: bool | None = None
    external_ids: _ExternalIds | None = None
    album: _Album | None = None
    artists: tuple[_Artist, ...] | None = None


class _User(msgspec.Struct, gc=False):
    id: str | None = None
    display_name: str | None = None


class _Row(msgspec.Struct, gc=False):
    added_at: str | None = None
    added_by: _User | None = None
    is_local: bool | None = None
    item: _Payload | None = None
    track: _Payload | None = None


class _Playlist(msgspec.Struct, gc=False):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    public: bool | None = None
    collaborative: bool | None = None
    snapshot_id: str | None = None
    external_urls: _Links | None = None
    followers: _Followers | None = None
    owner: _User | None = None


class _Error(msgspec.Struct, gc=False):
    kind: str | None = None
    message: str | None = None


class _Extraction(msgspec.Struct, gc=False):
    total: int | None = None
    extracted_at: str | None = None
    error: _Error | None = None


class _Document(msgspec.Struct, gc=False):
    playlist_id: str
    status: str = "ok"
    playlist: _Playlist | None = None
    items: tuple[_Row, ...] = ()
    extraction: _Extraction | None = None


_decoder = msgspec.json.Decoder(_Document)


class _EnrichmentDocument(msgspec.Struct, gc=False):
    batches: tuple[msgspec.Raw, ...] = ()


class _BatchResponse(msgspec.Struct, gc=False):
    artists: tuple[_Artist | None, ...] = ()
    albums: tuple[_Album | None, ...] = ()


class _Batch(msgspec.Struct, gc=False):
    endpoint: str
    response: _BatchResponse


_enrichment_decoder = msgspec.json.Decoder(_EnrichmentDocument)
_batch_decoder = msgspec.json.Decoder(_Batch)

# --- release dates -----------------------------------------------------------------------

_RELEASE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def release_period(release_date: str | None, precision: str | None) -> tuple[int | None, date | None, date | None]:
    """(year, first day, last day) of the period a release date denotes, at its precision.

    '2002' is all of 2002, '2002-05' all of May 2002. The precision the API states wins over
    the string's length (a 'day' precision with a year-only string is read as the year).
    Unparseable values and the year 0 give (None, None, None): never a made-up date.
    """
    if not release_date:
        return None, None, None
    m = _RELEASE.fullmatch(release_date.strip())
    if m is None:
        return None, None, None
    year = int(m.group(1))
    if year == 0:
        return None, None, None
    month = int(m.group(2)) if m.group(2) and precision in ("month", "day", None) else None
    day = int(m.group(3)) if m.group(3) and month and precision in ("day", None) else None
    try:
        if day is not None:
            d = date(year, month, day)  # type: ignore[arg-type]
            return year, d, d
        if month is not None:
            return year, date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        return year, date(year, 1, 1), date(year, 12, 31)
    except ValueError:
        return year, date(year, 1, 1), date(year, 12, 31)


# --- the normalizer ------------------------------------------------------------------------


@dataclass
class NormalizedWindow:
    """The six tables of one window, and what could not be read."""

    frames: dict[str, pd.DataFrame]
    problems: list[dict[str, str]]  # {"playlist_id", "message"} per unreadable document

    def row_counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


class Normalizer:
    """Accumulates documents of one window; `finish()` returns the six tables."""

    def __init__(self, window_start: datetime):
        self.window_start = window_start.astimezone(timezone.utc)
        self.problems: list[dict[str, str]] = []
        self._playlists: list[dict[str, Any]] = []  # one row per document, by column name
        # playlist_tracks, column-wise
        self._pt_playlist: list[str] = []
        self._pt_position: list[int] = []
        self._pt_song: list[str] = []
        self._pt_added_at: list[str | None] = []
        self._pt_added_by: list[str | None] = []
        # first-seen payload per song, album, artist; appearances per song
        self._songs: dict[str, _Payload] = {}
        self._appearances: dict[str, int] = {}
        self._albums: dict[str, _Album] = {}
        self._artists: dict[str, _Artist] = {}
        self._first_added = pd.Series(dtype="datetime64[us, UTC]")
        # the batch endpoints' objects (enrichment), by id
        self._enriched_artists: dict[str, _Artist] = {}
        self._enriched_albums: dict[str, _Album] = {}

    def add(self, data: bytes, *, playlist_id: str = "", where: str = "") -> None:
        """Add one stored document (its JSON bytes). One that cannot be decoded (bytes that
        are not UTF-8 JSON, nesting too deep, a wrong type) or that is another playlist's
        makes its playlist `unreadable`, with `where` (the file) and the reason."""
        at = f"{where}: " if where else ""
        try:
            doc = _decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, ValueError) as err:
            self._unreadable(playlist_id or _sniff_playlist_id(data), f"{at}the stored document is malformed: {err}")
            return
        except RecursionError:
            self._unreadable(playlist_id or _sniff_playlist_id(data), f"{at}the stored document is nested too deeply to decode")
            return
        if playlist_id and doc.playlist_id != playlist_id:
            self._unreadable(
                playlist_id, f"{at}the stored document is playlist {doc.playlist_id!r}'s, not {playlist_id!r}'s"
            )
            return
        self._add(doc)

    def add_enrichment(self, data: bytes, *, where: str = "") -> None:
        """Add the window's enrichment document (its JSON bytes). A document or batch that
        cannot be decoded is reported as a problem and skipped: the playlists are unaffected."""
        at = f"{where}: " if where else ""
        try:
            doc = _enrichment_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, ValueError, RecursionError) as err:
            self.problems.append({"playlist_id": "", "message": f"{at}the enrichment document is malformed ({err}): artists and albums not enriched"})
            return
        for index, raw in enumerate(doc.batches):
            try:
                batch = _batch_decoder.decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, ValueError, RecursionError) as err:
                self.problems.append({"playlist_id": "", "message": f"{at}enrichment batch {index} is malformed ({err}): skipped"})
                continue
            for artist in batch.response.artists:
                if artist is not None and artist.id:
                    self._enriched_artists[artist.id] = artist
            for album in batch.response.albums:
                if album is not None and album.id:
                    self._enriched_albums[album.id] = album

    def add_unreadable(self, playlist_id: str, message: str) -> None:
        """Record a playlist whose stored document could not even be read (see StoredDocument)."""
        self._unreadable(playlist_id, message)

    def add_document(self, document: dict[str, Any]) -> None:
        """Add one document already parsed into Python objects (tests, small inputs)."""
        self.add(orjson.dumps(document), playlist_id=str(document.get("playlist_id", "")))

    def _timestamps(self, values: list[str | None], what: str) -> pd.Series:
        """ISO-8601 strings -> UTC timestamps. A value that is not one becomes null and is
        reported as a problem (with an example), never silently dropped."""
        parsed = pd.Series(pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce"))
        bad = parsed.isna() & pd.Series(values).notna()
        if bad.any():
            example = values[int(bad.to_numpy().nonzero()[0][0])]
            self.problems.append(
                {"playlist_id": "", "message": f"{int(bad.sum())} {what} values are not ISO-8601 timestamps (e.g. {example!r}); stored as null"}
            )
        return parsed.astype("datetime64[us, UTC]")

    def _unreadable(self, playlist_id: str, message: str) -> None:
        self.problems.append({"playlist_id": playlist_id, "message": message})
        self._playlists.append(
            {"playlist_id": playlist_id, "status": "unreadable", "error_kind": "unreadable", "error_message": message}
        )

    def _add(self, doc: _Document) -> None:
        pid = doc.playlist_id
        meta = doc.playlist or _Playlist()
        ext = doc.extraction or _Extraction()
        error = ext.error
        counts = {"track": 0, "episode": 0, "local": 0, "unavailable": 0, "other": 0}
        repeated = 0
        read = doc.status == "ok" and error is None
        if read:
            seen_here: set[str] = set()
            songs = self._songs
            appearances = self._appearances
            pt_playlist, pt_position, pt_song = self._pt_playlist, self._pt_position, self._pt_song
            pt_added_at, pt_added_by = self._pt_added_at, self._pt_added_by
            for position, row in enumerate(doc.items):
                payload = row.item or row.track
                if payload is None:
                    counts["unavailable"] += 1
                    continue
                if row.is_local or payload.is_local:
                    counts["local"] += 1
                    continue
                kind = payload.type or "track"
                sid = payload.id
                if kind == "episode":
                    counts["episode"] += 1
                    continue
                if kind != "track" or not sid:
                    counts["other"] += 1
                    continue
                counts["track"] += 1
                if sid in seen_here:
                    repeated += 1
                else:
                    seen_here.add(sid)
                pt_playlist.append(pid)
                pt_position.append(position)
                pt_song.append(sid)
                pt_added_at.append(row.added_at)
                pt_added_by.append(row.added_by.id if row.added_by is not None else None)
                if sid in songs:
                    appearances[sid] += 1
                else:
                    songs[sid] = payload
                    appearances[sid] = 1
        row: dict[str, Any] = {
            "playlist_id": pid,
            "name": meta.name,
            "description": meta.description,
            "owner_id": meta.owner.id if meta.owner else None,
            "owner_name": meta.owner.display_name if meta.owner else None,
            "public": meta.public,
            "collaborative": meta.collaborative,
            "snapshot_id": meta.snapshot_id,
            "followers": meta.followers.total if meta.followers else None,
            "url": meta.external_urls.spotify if meta.external_urls else None,
            "rows_total": ext.total,
            "rows_read": len(doc.items),
            "extracted_at": ext.extracted_at,
        }
        if read:
            row |= {
                "status": "ok",
                "song_rows": counts["track"],
                "episode_rows": counts["episode"],
                "local_rows": counts["local"],
                "unavailable_rows": counts["unavailable"],
                "other_rows": counts["other"],
                "repeated_song_rows": repeated,
            }
        else:
            row |= {"status": "failed", "error_kind": error.kind if error else None, "error_message": error.message if error else None}
        self._playlists.append(row)

    def finish(self) -> NormalizedWindow:
        builders = {
            "playlist_tracks": self._playlist_tracks,
            "songs": self._songs_frame,
            "song_artists": self._song_artists,
            "albums": self._albums_frame,  # after songs: songs register their albums
            "artists": self._artists_frame,  # after songs and albums: both register artists
            "playlists": self._playlists_frame,
        }
        out = {}
        for name, build in builders.items():
            table = TABLES[name]
            data = build()
            if not data:
                out[name] = table.empty_frame()
                continue
            data["window_start"] = pd.Series(self.window_start, index=range(len(next(iter(data.values())))))
            out[name] = table.conform(pd.DataFrame(data)[table.column_names])
        return NormalizedWindow(out, self.problems)

    # each builder returns column lists; window_start is added in finish()

    def _playlist_tracks(self) -> dict[str, list]:
        n = len(self._pt_song)
        if not n:
            return {}
        added_at = self._timestamps(self._pt_added_at, "playlist_tracks.added_at")
        # the earliest added_at of each song, for songs.added_date
        self._first_added = added_at.groupby(pd.Series(self._pt_song), sort=False).min()
        return {
            "playlist_id": self._pt_playlist,
            "position": self._pt_position,
            "song_id": self._pt_song,
            "added_at": added_at,
            "added_by_id": self._pt_added_by,
        }

    def _songs_frame(self) -> dict[str, list]:
        songs = self._songs
        if not songs:
            return {}
        payloads = list(songs.values())
        albums, artists = self._albums, self._artists
        for p in payloads:
            album = p.album
            if album is not None and album.id and album.id not in albums:
                albums[album.id] = album
            for a in p.artists or ():
                if a.id and a.id not in artists:
                    artists[a.id] = a
        return {
            "song_id": list(songs),
            "name": [p.name for p in payloads],
            "duration_ms": [p.duration_ms for p in payloads],
            "url": [p.external_urls.spotify if p.external_urls else None for p in payloads],
            "popularity": [p.popularity for p in payloads],
            "added_date": self._first_added.reindex(list(songs)).reset_index(drop=True),
            "album_id": [p.album.id if p.album else None for p in payloads],
            "artist_id": [_first_artist(p.artists) for p in payloads],
            "artist_count": [len(p.artists) if p.artists else 0 for p in payloads],
            "explicit": [p.explicit for p in payloads],
            "track_number": [p.track_number for p in payloads],
            "disc_number": [p.disc_number for p in payloads],
            "isrc": [p.external_ids.isrc if p.external_ids else None for p in payloads],
            "is_playable": [p.is_playable for p in payloads],
            "uri": [p.uri or f"spotify:track:{sid}" for sid, p in songs.items()],
            "playlist_appearances": list(self._appearances.values()),
        }

    def _song_artists(self) -> dict[str, list]:
        song_ids: list[str] = []
        positions: list[int] = []
        artist_ids: list[str] = []
        for sid, p in self._songs.items():
            position = 0
            for a in p.artists or ():
                if a.id:
                    song_ids.append(sid)
                    positions.append(position)
                    artist_ids.append(a.id)
                    position += 1
        if not song_ids:
            return {}
        return {"song_id": song_ids, "artist_position": positions, "artist_id": artist_ids}

    def _albums_frame(self) -> dict[str, list]:
        albums = self._albums
        # album artists are artists too
        artists = self._artists
        for album in albums.values():
            for a in album.artists or ():
                if a.id and a.id not in artists:
                    artists[a.id] = a
        if not albums:
            return {}
        items = list(albums.values())
        periods = [release_period(a.release_date, a.release_date_precision) for a in items]
        return {
            "album_id": list(albums),
            "name": [a.name for a in items],
            "release_date": [a.release_date for a in items],
            "release_date_precision": [a.release_date_precision for a in items],
            "release_year": [p[0] for p in periods],
            "release_period_start": [p[1] for p in periods],
            "release_period_end": [p[2] for p in periods],
            "total_tracks": [a.total_tracks for a in items],
            "url": [a.external_urls.spotify if a.external_urls else None for a in items],
            "uri": [a.uri or f"spotify:album:{aid}" for aid, a in albums.items()],
            "album_type": [a.album_type for a in items],
            "artist_id": [_first_artist(a.artists) for a in items],
            "popularity": _enriched(albums, self._enriched_albums, "popularity"),
            "label": _enriched(albums, self._enriched_albums, "label"),
        }

    def _artists_frame(self) -> dict[str, list]:
        artists = self._artists
        if not artists:
            return {}
        items = list(artists.values())
        return {
            "artist_id": list(artists),
            "name": [a.name for a in items],
            "url": [a.external_urls.spotify if a.external_urls else None for a in items],
            "uri": [a.uri or f"spotify:artist:{aid}" for aid, a in artists.items()],
            "popularity": _enriched(artists, self._enriched_artists, "popularity"),
            "followers": [f.total if f else None for f in _enriched(artists, self._enriched_artists, "followers")],
            "genres": [orjson.dumps(g).decode() if g is not None else None for g in _enriched(artists, self._enriched_artists, "genres")],
        }

    def _playlists_frame(self) -> dict[str, list]:
        if not self._playlists:
            return {}
        names = [c for c in TABLES["playlists"].column_names if c != "window_start"]
        data: dict[str, Any] = {name: [row.get(name) for row in self._playlists] for name in names}
        data["extracted_at"] = self._timestamps(data["extracted_at"], "playlists.extracted_at")
        return data


def normalize_documents(
    window_start: datetime,
    documents: Iterable[bytes | dict[str, Any]],
    enrichment: bytes | dict[str, Any] | None = None,
) -> NormalizedWindow:
    """Normalize a window's documents (JSON bytes or parsed dicts), and its enrichment
    document if any, into the six tables."""
    normalizer = Normalizer(window_start)
    if enrichment is not None:
        normalizer.add_enrichment(enrichment if isinstance(enrichment, bytes) else orjson.dumps(enrichment))
    for doc in documents:
        if isinstance(doc, (bytes, bytearray, memoryview)):
            normalizer.add(bytes(doc))
        else:
            normalizer.add_document(doc)
    return normalizer.finish()


# A reader restarts this many times when the version it reads is collected under it.
READ_ATTEMPTS = 3


def normalize_window(
    store: SnapshotStore,
    partition_key: str,
    window_start: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[NormalizedWindow, WindowManifest | None]:
    """Normalize the window's committed documents from the store, one at a time, and the
    manifest they came from (None, and empty tables, if the window was never written).

    Each document is checked against its manifest entry; a bad one makes its playlist
    `unreadable` and the rest loads. If the version being read is collected under the reader
    (a newer one committed and the grace period over), the read starts again on the new one.
    """
    for attempt in range(1, READ_ATTEMPTS + 1):
        manifest = store.read_manifest(partition_key)
        normalizer = Normalizer(window_start)
        if manifest is None:
            return normalizer.finish(), None
        try:
            enrichment = store.enrichment_document(partition_key, manifest)
            if enrichment is not None and enrichment.data is None:
                normalizer.problems.append({"playlist_id": "", "message": f"{enrichment.problem}: artists and albums not enriched"})
            elif enrichment is not None:
                normalizer.add_enrichment(enrichment.data, where=store.uri(enrichment.key))
            for i, doc in enumerate(store.documents(partition_key, manifest), start=1):
                if doc.data is None:
                    normalizer.add_unreadable(doc.playlist_id, doc.problem or f"{doc.key} cannot be read")
                else:
                    normalizer.add(doc.data, playlist_id=doc.playlist_id, where=store.uri(doc.key))
                if progress is not None:
                    progress(i, len(manifest.documents))
        except VersionCollected:
            if attempt == READ_ATTEMPTS:
                raise
            continue
        return normalizer.finish(), manifest
    raise AssertionError("unreachable")


def _enriched(objects: dict[str, Any], enriched: dict[str, Any], member: str) -> list[Any]:
    """`member` of each object: the batch endpoint's value where it gave one, else the
    playlist response's (which never carries these in practice)."""
    out = []
    for object_id, obj in objects.items():
        full = enriched.get(object_id)
        value = getattr(full, member) if full is not None else None
        out.append(value if value is not None else getattr(obj, member))
    return out


def _first_artist(artists: tuple[_Artist, ...] | None) -> str | None:
    for a in artists or ():
        if a.id:
            return a.id
    return None


_PID = re.compile(rb'"playlist_id"\s*:\s*"([^"]{1,64})"')


def _sniff_playlist_id(data: bytes) -> str:
    m = _PID.search(data[:4096])
    return m.group(1).decode("utf-8", "replace") if m else "?"
