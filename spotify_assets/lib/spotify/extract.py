"""Read whole playlists, every page, in either API shape, into raw snapshot documents.

Both shapes are read the same way: the playlist object carries its rows under `items` (2026)
or `tracks` (before), and each row carries its track or episode under `item` or `track`.
A row is classified with `row.get("item") or row.get("track")`; the inner track object has a
boolean field named `track` too, so the presence of that key says nothing about the shape.

Requests: one for the playlist (metadata plus the first page of rows), then every remaining
page by offset. Offsets are known once the total is, so pages of all playlists are fetched
concurrently through one bounded pool, rather than by following `next` one page at a time; at
most 2 x concurrency requests are queued at once, and a total above MAX_PLAYLIST_ROWS is
refused before any page is.

Given the previous window (`previous`, see reuse.py), a playlist whose snapshot_id has not
changed keeps its first page from this window's metadata request and takes the other rows
from the previous window's document: its remaining pages are not requested. The document's
`extraction.reuse` says where the rows came from and how many requests that saved, or why
the playlist was read fully.
"""

from __future__ import annotations

import gc
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from spotify_assets.lib.spotify.client import (
    RateLimitExceeded,
    RateLimitNotSent,
    SpotifyHttpError,
    SpotifyUnavailable,
)
from spotify_assets.lib.raw.store import EncodedRows
from spotify_assets.lib.spotify.reuse import PreviousRows, PreviousWindow, Refusal, rows_request, same_rows
from spotify_assets.lib.timestamps import iso_z

PAGE_SIZE = 50  # the 2026 maximum for /items
# Spotify caps a playlist at 10,000 tracks; a larger reported total is a broken or hostile answer.
MAX_PLAYLIST_ROWS = 100_000
DOCUMENT_SCHEMA_VERSION = 1
EDITORIAL_PREFIX = "37i9dQZ"  # Spotify-owned editorial and algorithmic playlists

# The `fields` filters: only what the tables downstream read, so pages stay small.
# No `href`s and no `uri`s of albums and artists: both are derived from the id.
_ARTIST = "id,name,external_urls"
_ALBUM = (
    "id,name,album_type,release_date,release_date_precision,total_tracks,external_urls,"
    f"artists({_ARTIST})"
)
_PAYLOAD = (
    "id,name,type,uri,external_urls,duration_ms,explicit,disc_number,track_number,popularity,"
    f"is_local,is_playable,external_ids,album({_ALBUM}),artists({_ARTIST}),release_date,"
    "release_date_precision,show(id,name,publisher)"
)
ROW_FIELDS = f"added_at,added_by(id,type),is_local,item({_PAYLOAD}),track({_PAYLOAD})"
PAGE_FIELDS = f"limit,next,offset,total,items({ROW_FIELDS})"
PLAYLIST_FIELDS = (
    "id,name,description,public,collaborative,snapshot_id,type,uri,external_urls,"
    f"followers(total),owner(id,display_name,type),items({PAGE_FIELDS}),tracks({PAGE_FIELDS})"
)
ADDITIONAL_TYPES = "track,episode"


class PlaylistSource(Protocol):
    """Anything that answers Web API GETs: the real API client, or the synthetic sample."""

    label: str
    api_url: str

    def get(self, path: str, **params: Any) -> dict[str, Any]: ...

    @property
    def counts(self) -> dict[str, int]: ...  # retries and token renewals so far

    def close(self) -> None: ...


class MalformedPayload(Exception):
    """The API answered 200 with something that is not the documented shape."""


class PlaylistTooLarge(Exception):
    """The playlist reports more rows than MAX_PLAYLIST_ROWS: refused before any page is queued."""


@dataclass
class PlaylistSnapshot:
    """One playlist in one window: its metadata, all its rows as returned, and how we got them."""

    playlist_id: str
    playlist: dict[str, Any] | None
    items: list[dict[str, Any]] | EncodedRows  # EncodedRows: an unchanged playlist's rows, as stored
    extraction: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.extraction.get("error") is None

    @property
    def name(self) -> str | None:
        return (self.playlist or {}).get("name")

    def to_document(self, window: dict[str, str]) -> dict[str, Any]:
        return {
            "schema_version": DOCUMENT_SCHEMA_VERSION,
            "playlist_id": self.playlist_id,
            "status": "ok" if self.ok else "failed",
            "window": window,
            "playlist": self.playlist,
            "items": self.items,
            "extraction": self.extraction,
        }


def payload_of(row: dict[str, Any]) -> dict[str, Any] | None:
    """The track or episode of a playlist row, in either shape (None: no longer available)."""
    return row.get("item") or row.get("track")


def summarize_rows(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts that say what a playlist's rows are, and which of them cannot become songs."""
    kinds: Counter[str] = Counter()
    payload_keys: Counter[str] = Counter()
    skipped: dict[str, list[int]] = {}
    track_ids: Counter[str] = Counter()
    popularity_rows = 0
    for position, row in enumerate(items):
        payload = payload_of(row)
        if payload is not None:
            payload_keys["item" if row.get("item") else "track"] += 1
        if payload is None:
            kind = "unavailable"
        elif row.get("is_local") or payload.get("is_local"):
            kind = "local"
        elif payload.get("type") == "episode":
            kind = "episode"
        elif payload.get("type", "track") == "track" and payload.get("id"):
            kind = "track"
        else:
            kind = "other"
        kinds[kind] += 1
        if kind == "track":
            track_ids[payload["id"]] += 1
            if payload.get("popularity") is not None:
                popularity_rows += 1
        else:
            skipped.setdefault(kind, []).append(position)
    return {
        "rows": {k: kinds.get(k, 0) for k in ("track", "episode", "local", "unavailable", "other")},
        "payload_key": dict(payload_keys),
        "skipped": [
            {"reason": kind, "why": SKIP_REASONS[kind], "count": len(positions), "positions": positions}
            for kind, positions in skipped.items()
        ],
        "repeated_track_rows": sum(n - 1 for n in track_ids.values() if n > 1),
        "popularity_present": popularity_rows > 0,
    }


SKIP_REASONS = {
    "unavailable": "the track is no longer available: the API returned null for it",
    "local": "a local file from the owner's device: it has no Spotify id",
    "episode": "a podcast episode, not a song",
    "other": "a row of an unknown type or without an id",
}


def failure_reason(err: Exception, playlist_id: str) -> dict[str, Any]:
    """What went wrong for one playlist, in words a person can act on."""
    if isinstance(err, RateLimitExceeded):
        return {
            "kind": "rate_limited",
            "status": 429,
            "retry_after_s": round(err.retry_after_s, 3),
            "message": str(err),
            # not sent: an earlier 429 (of another playlist, maybe) closed the rate gate
            **({"not_sent": True} if isinstance(err, RateLimitNotSent) else {}),
        }
    if isinstance(err, SpotifyHttpError) and err.status == 403:
        return {
            "kind": "forbidden",
            "status": 403,
            "message": (
                f"{err}. The authorised user neither owns nor collaborates on this playlist: "
                "apps in Development Mode can read the contents of such playlists only "
                "(a client-credentials token has no user; set SPOTIFY_REFRESH_TOKEN)"
            ),
        }
    if isinstance(err, SpotifyHttpError) and err.status == 404:
        why = (
            "a Spotify-owned editorial or algorithmic playlist: the API answers 404 for these to "
            "apps in Development Mode (since 2024-11-27)"
            if playlist_id.startswith(EDITORIAL_PREFIX)
            else "the playlist does not exist, was deleted, or is private to another user"
        )
        return {"kind": "not_found", "status": 404, "message": f"{err}: {why}"}
    if isinstance(err, SpotifyHttpError):
        return {"kind": "http_error", "status": err.status, "message": str(err)}
    if isinstance(err, SpotifyUnavailable):
        return {"kind": "unavailable", "status": None, "message": str(err)}
    if isinstance(err, MalformedPayload):
        return {"kind": "malformed", "status": None, "message": str(err)}
    if isinstance(err, PlaylistTooLarge):
        return {"kind": "too_large", "status": None, "message": str(err)}
    raise err


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while pages of parsed JSON pile up.

    Decoded JSON holds no reference cycles, yet each collection walks every live row: with
    20,000 rows that was half the client's CPU (benchmark: 1.32 s -> 0.68 s). Reference
    counting still frees everything; only cycle detection waits until the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Playlist:
    """Work in progress for one playlist."""

    playlist_id: str
    extracted_at: str
    meta: dict[str, Any] | None = None
    container: str | None = None
    total: int = 0
    pages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # offset -> rows
    requests: int = 0
    error: dict[str, Any] | None = None
    endpoints: set[str] = field(default_factory=set)
    todo: range | None = None  # offsets still to queue; None until the metadata is asked for
    in_flight: int = 0  # requests of this playlist in the pool
    reused: list[dict[str, Any]] = field(default_factory=list)  # rows after the first page, from the previous window
    whole: EncodedRows | None = None  # or all the rows, as stored there (the first page is byte for byte theirs)
    reuse: dict[str, Any] | None = None  # extraction.reuse: where the rows came from, or why read fully


class PlaylistExtractor:
    """Extracts many playlists at once with at most `concurrency` requests in flight."""

    def __init__(
        self,
        source: PlaylistSource,
        *,
        concurrency: int = 8,
        page_size: int = PAGE_SIZE,
        market: str | None = None,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], str] = iso_z,
        max_rows: int = MAX_PLAYLIST_ROWS,
        previous: PreviousWindow | None = None,
    ):
        self.source = source
        self.max_rows = max_rows
        self.concurrency = max(1, concurrency)
        self.page_size = page_size
        self.market = market
        self._log = log or (lambda _msg: None)
        self._warn = warn or self._log
        self._clock = clock
        # Flipped once a server answers 404 for /items but serves /tracks (an older server).
        self._items_path = "items"
        self._lock = threading.Lock()
        self._done = self._total = 0
        self.previous = previous  # None: every page of every playlist is read
        self.rows_request = rows_request(
            fields=f"{PLAYLIST_FIELDS}\n{PAGE_FIELDS}", market=market, additional_types=ADDITIONAL_TYPES, source=source.label
        )

    def extract(self, playlist_ids: list[str]) -> list[PlaylistSnapshot]:
        with _cycle_collection_paused():
            return self._extract(playlist_ids)

    def _extract(self, playlist_ids: list[str]) -> list[PlaylistSnapshot]:
        work = [_Playlist(pid, self._clock()) for pid in playlist_ids]
        self._done, self._total = 0, len(work)
        snapshots: dict[str, PlaylistSnapshot] = {}
        # Jobs wait here and only `2 x concurrency` are handed to the pool at once: pages are
        # queued as offsets (a range), never as a future per page up front. Metadata jobs come
        # first, and each playlist's pages join as soon as its metadata is in, so one playlist
        # backing off does not hold the others up.
        jobs: deque[_Playlist] = deque(work)
        in_flight: dict[Future, tuple[_Playlist, int | None]] = {}
        limit = 2 * self.concurrency
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="spotify") as pool:
            while jobs or in_flight:
                while jobs and len(in_flight) < limit:
                    playlist = jobs[0]
                    if playlist.todo is None:  # metadata not asked for yet
                        jobs.popleft()
                        playlist.todo = range(0)
                        in_flight[pool.submit(self._fetch_playlist, playlist)] = (playlist, None)
                        playlist.in_flight += 1
                    elif playlist.error is not None or not playlist.todo:
                        jobs.popleft()
                    else:
                        offset, playlist.todo = playlist.todo[0], playlist.todo[1:]
                        in_flight[pool.submit(self._fetch_page, playlist, offset)] = (playlist, offset)
                        playlist.in_flight += 1
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    playlist, offset = in_flight.pop(future)
                    playlist.in_flight -= 1
                    result = self._settle(playlist, future)
                    if playlist.error is not None:
                        playlist.todo = range(0)
                    elif offset is None:
                        playlist.todo = self._missing_offsets(playlist)
                        if playlist.todo:
                            jobs.append(playlist)
                    elif result is not None:
                        playlist.pages[offset] = result
                    if playlist.in_flight == 0 and not playlist.todo and playlist.playlist_id not in snapshots:
                        snapshots[playlist.playlist_id] = self._finish(playlist)
        return [snapshots[p.playlist_id] for p in work]

    def _settle(self, playlist: _Playlist, future: Future) -> Any:
        """The future's result; a playlist-level failure is recorded instead of raised."""
        try:
            return future.result()
        except (SpotifyHttpError, SpotifyUnavailable, RateLimitExceeded, MalformedPayload, PlaylistTooLarge) as err:
            # the playlist's own failure rather than a request it did not send because of it
            if playlist.error is None or (playlist.error.get("not_sent") and not isinstance(err, RateLimitNotSent)):
                playlist.error = failure_reason(err, playlist.playlist_id)
            return None

    def _fetch_playlist(self, playlist: _Playlist) -> None:
        self._count_request(playlist)
        meta = self.source.get(
            f"playlists/{playlist.playlist_id}",
            fields=PLAYLIST_FIELDS,
            market=self.market,
            additional_types=ADDITIONAL_TYPES,
        )
        container_key = next((k for k in ("items", "tracks") if isinstance(meta.get(k), dict)), None)
        if container_key is None:
            raise MalformedPayload(
                f"playlist {playlist.playlist_id}: the playlist object has neither an 'items' nor a 'tracks' object"
            )
        container = meta.pop(container_key)
        meta.pop("tracks" if container_key == "items" else "items", None)
        playlist.meta = meta
        playlist.container = container_key
        playlist.total = _int(container.get("total"), f"playlist {playlist.playlist_id}: {container_key}.total")
        if playlist.total > self.max_rows:
            # Checked before a single page is queued: a bogus total must not become a million requests.
            raise PlaylistTooLarge(
                f"playlist {playlist.playlist_id} reports {playlist.total:,} rows, more than the {self.max_rows:,} "
                "this pipeline reads (MAX_PLAYLIST_ROWS; Spotify caps playlists at 10,000 tracks): not read"
            )
        playlist.endpoints.add(f"/playlists/{{id}}")
        rows = container.get("items")
        # Development Mode gives other users' playlists as metadata only: no embedded rows.
        if isinstance(rows, list) and rows:
            playlist.pages[_int(container.get("offset", 0), "offset")] = rows
        if self.previous is not None:
            self._reuse(playlist, rows if isinstance(rows, list) and container.get("offset", 0) == 0 else [])

    def _reuse(self, playlist: _Playlist, first: list[dict[str, Any]]) -> None:
        """Take the rows after the first page from the previous window, if the playlist is
        unchanged and the policy allows (runs on the metadata request's worker thread)."""
        assert self.previous is not None
        if not first and playlist.total:
            # Metadata only (Development Mode, another user's playlist): its pages will say why.
            playlist.reuse = Refusal("no_contents", "the metadata request returned no rows").record()
            return
        if len(first) >= playlist.total:
            playlist.reuse = Refusal("one_page", f"all {playlist.total} rows came with the metadata request").record()
            return
        found: PreviousRows | Refusal
        try:
            found = self.previous.rows_for(playlist.playlist_id, (playlist.meta or {}).get("snapshot_id"), self.rows_request)
        except Exception as err:  # the store failing (S3 down, a disk error): a full read is always right
            self._warn(f"playlist {playlist.playlist_id}: the previous window could not be read, reading fully: {err!r}")
            found = Refusal("previous_unreadable", f"{type(err).__name__}: {err}")
        if isinstance(found, PreviousRows) and len(found.items) != playlist.total:
            found = Refusal(
                "rows_differ",
                f"the playlist reports {playlist.total} rows, window {found.window}'s document has {len(found.items)}",
            )
        whole = isinstance(found, PreviousRows) and isinstance(found.items, EncodedRows) and found.items.starts_with(first)
        if isinstance(found, PreviousRows) and not whole and not same_rows(
            first, list(found.items[: len(first)]), ignore_popularity=self.previous.policy.rows == "always"
        ):
            found = Refusal("rows_differ", f"this window's first page differs from window {found.window}'s rows")
        if isinstance(found, Refusal):
            playlist.reuse = found.record()
            return
        if whole:
            playlist.whole = found.items  # type: ignore[assignment]
        else:
            playlist.reused = list(found.items[len(first) :])
        playlist.reuse = {
            "reused": True,
            "from_window": found.window,
            "from_version": found.version,
            "from_sha256": found.sha256,
            "rows_reused": len(found.items) - len(first),
            "requests_saved": len(range(len(first), playlist.total, self.page_size)),
            "windows_since_full_read": found.chain + 1,
            "full_read_window": found.full_read_window,
        }

    def _missing_offsets(self, playlist: _Playlist) -> range:
        if playlist.whole is not None:
            return range(0)
        have = sum(len(rows) for rows in playlist.pages.values()) + len(playlist.reused)
        return range(have, playlist.total, self.page_size)

    def _fetch_page(self, playlist: _Playlist, offset: int) -> list[dict[str, Any]]:
        path = self._items_path
        try:
            page = self._get_page(playlist, path, offset)
        except SpotifyHttpError as err:
            if not (err.status == 404 and path == "items"):
                raise
            # The playlist exists (we just read it), so a 404 here means the server has no
            # /items endpoint: an older API. Read the same page from /tracks.
            page = self._get_page(playlist, "tracks", offset)
            with self._lock:
                switched, self._items_path = self._items_path == "items", "tracks"
            if switched:
                self._log("the API answered 404 for /playlists/{id}/items: an older server; reading pages from /tracks")
        rows = page.get("items")
        if not isinstance(rows, list):
            raise MalformedPayload(f"playlist {playlist.playlist_id}: page at offset {offset} has no 'items' list")
        # A server that ignored `offset` would hand back the same rows again, silently.
        if page.get("offset", offset) != offset:
            raise MalformedPayload(
                f"playlist {playlist.playlist_id}: asked for offset {offset}, the API answered with offset {page.get('offset')!r}"
            )
        return rows

    def _count_request(self, playlist: _Playlist) -> None:
        with self._lock:  # pages of one playlist run on several threads
            playlist.requests += 1

    def _get_page(self, playlist: _Playlist, path: str, offset: int) -> dict[str, Any]:
        self._count_request(playlist)
        page = self.source.get(
            f"playlists/{playlist.playlist_id}/{path}",
            fields=PAGE_FIELDS,
            limit=self.page_size,
            offset=offset,
            market=self.market,
            additional_types=ADDITIONAL_TYPES,
        )
        with self._lock:
            playlist.endpoints.add(f"/playlists/{{id}}/{path}")
        return page

    def _finish(self, playlist: _Playlist) -> PlaylistSnapshot:
        items: list[dict[str, Any]] | EncodedRows = (
            playlist.whole
            if playlist.whole is not None
            else [row for offset in sorted(playlist.pages) for row in playlist.pages[offset]] + playlist.reused
        )
        if playlist.error is None and len(items) != playlist.total:
            playlist.error = {
                "kind": "incomplete",
                "status": None,
                "message": (
                    f"read {len(items)} rows but the playlist reports {playlist.total}: it changed "
                    "while it was being read; the next window will read it again"
                ),
            }
        facts: dict[str, Any] = {
            "source": self.source.label,
            "api_url": self.source.api_url,
            "extracted_at": playlist.extracted_at,
            "finished_at": self._clock(),
            "container": playlist.container,
            "endpoints": sorted(playlist.endpoints),
            "page_size": self.page_size,
            "pages": len(playlist.pages),
            "requests": playlist.requests,
            "total": playlist.total if playlist.meta is not None else None,
            "rows_read": len(items),
            "error": playlist.error,
            "rows_request": self.rows_request,
        }
        if self.previous is not None:
            facts["reuse"] = playlist.reuse
        self._done += 1  # only the coordinating thread finishes playlists
        progress = f"[{self._done}/{self._total}] playlist {playlist.playlist_id}"
        if playlist.error is not None:
            self._warn(f"{progress} could not be read: {playlist.error['message']}")
            # Nothing half-read is kept: a failed playlist has metadata (if any) and a reason.
            return PlaylistSnapshot(playlist.playlist_id, playlist.meta, [], facts)
        # rows carried as stored carry what was said of them when they were read: the same rows
        facts.update(items.summary if isinstance(items, EncodedRows) and items.summary is not None else summarize_rows(items))
        snapshot = PlaylistSnapshot(playlist.playlist_id, playlist.meta, items, facts)
        reuse = playlist.reuse or {}
        if reuse.get("reused"):
            self._log(
                f"{progress} ({snapshot.name!r}): {len(items)} rows, unchanged since window {reuse['from_window']}: "
                f"{reuse['rows_reused']} reused, {reuse['requests_saved']} requests saved"
            )
        else:
            self._log(f"{progress} ({snapshot.name!r}): {len(items)} rows in {len(playlist.pages)} pages")
        return snapshot


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPayload(f"{what} is {value!r}, not a count")
    return value
