"""Artists and albums of a window, enriched from the batch endpoints where the app may.

Extended Quota apps can still call `GET /artists?ids=` (at most 50 ids) and `GET /albums?ids=`
(at most 20), which return what playlist responses never carry: artist `genres`, `followers`,
`popularity`, album `label`, `popularity`. Development Mode apps get 403 or 404 there (removed
endpoints): the first such answer marks the app as Development Mode for the run, with ONE
warning, and nothing more is asked.

Enrichment never fails a window: any error (429 beyond the bound, 5xx after retries, a body
that is not the documented shape, anything unexpected) is recorded and the playlists are
written as they would be without it. What the API returned is kept raw in one document per
window (`to_document`), trimmed like the playlist requests' `fields` filter to the members
the tables read; normalization (lib/tables/normalize.py) fills the columns from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from spotify_assets.lib.spotify.client import RateLimitExceeded, SpotifyHttpError, SpotifyUnavailable
from spotify_assets.lib.spotify.extract import PlaylistSnapshot, PlaylistSource, payload_of
from spotify_assets.lib.timestamps import iso_z

ENRICHMENT_SCHEMA_VERSION = 1
BATCH_SIZES = {"artists": 50, "albums": 20}  # the API's limits per request
# The members kept of each object: what the tables read, and what identifies it. The batch
# endpoints take no `fields` filter; an album's `tracks` page and markets would otherwise
# make the document many times larger than the playlists it enriches.
KEPT_MEMBERS = {
    "artists": ("id", "name", "type", "uri", "external_urls", "popularity", "followers", "genres"),
    "albums": (
        "id", "name", "type", "uri", "external_urls", "album_type", "release_date", "release_date_precision",
        "total_tracks", "popularity", "label", "genres",
    ),
}
DEV_MODE_STATUSES = (403, 404)


class MalformedBatch(Exception):
    """A batch endpoint answered 200 with something that is not the documented shape."""


def ids_to_enrich(snapshots: Iterable[PlaylistSnapshot]) -> tuple[list[str], list[str]]:
    """The distinct artist ids and album ids of the window's songs, in order of first
    appearance: every credited artist, the album, and the album's artists, of every track row
    of every playlist read (local files, episodes and null rows name none)."""
    return IdScan(snapshots).all()


class IdScan:
    """`ids_to_enrich`, reading rows only as far as asked: the first batch is known after a
    few playlists, and a Development Mode app refuses it before the rest are read (a window's
    unchanged playlists carry their rows as stored bytes: reading them all costs seconds)."""

    def __init__(self, snapshots: Iterable[PlaylistSnapshot]):
        self.artists: dict[str, None] = {}
        self.albums: dict[str, None] = {}
        self._rows = (row for snapshot in snapshots if snapshot.ok for row in snapshot.items)
        self.done = False

    def first_job(self) -> tuple[str, list[str]] | None:
        """The first batch `all()`'s ids make (artists first), read only as far as it needs."""
        size = BATCH_SIZES["artists"]
        while not self.done and len(self.artists) < size:
            self._step()
        if self.artists:
            return "artists", list(self.artists)[:size]
        return ("albums", list(self.albums)[: BATCH_SIZES["albums"]]) if self.albums else None

    def all(self) -> tuple[list[str], list[str]]:
        while not self.done:
            self._step()
        return list(self.artists), list(self.albums)

    def _step(self) -> None:
        row = next(self._rows, None)
        if row is None:
            self.done = True
            return
        payload = payload_of(row) if isinstance(row, dict) else None
        if not isinstance(payload, dict) or row.get("is_local") or payload.get("is_local"):
            return
        if payload.get("type", "track") != "track" or not payload.get("id"):
            return
        album = payload.get("album") if isinstance(payload.get("album"), dict) else {}
        if isinstance(album.get("id"), str) and album["id"]:
            self.albums.setdefault(album["id"])
        for artist in [*(payload.get("artists") or ()), *(album.get("artists") or ())]:
            if isinstance(artist, dict) and isinstance(artist.get("id"), str) and artist["id"]:
                self.artists.setdefault(artist["id"])


def batches(kind: str, ids: list[str]) -> list[list[str]]:
    size = BATCH_SIZES[kind]
    return [ids[start : start + size] for start in range(0, len(ids), size)]


@dataclass
class Enrichment:
    """The outcome of one window's enrichment: the answers, as returned, and what went wrong."""

    status: str  # ok | partial | failed | dev_mode | nothing_to_enrich
    asked: dict[str, int]
    batches: list[dict[str, Any]] = field(default_factory=list)  # {"endpoint", "ids", "response"}
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"endpoint", "ids", "kind", "status", "message"}
    dev_mode: dict[str, Any] | None = None  # the answer that marked the app as Development Mode
    requests: int = 0
    source: str = ""
    api_url: str = ""
    started_at: str = ""
    finished_at: str = ""

    @property
    def received(self) -> dict[str, int]:
        """Objects returned (not null), per endpoint."""
        out = {kind: 0 for kind in BATCH_SIZES}
        for batch in self.batches:
            out[batch["endpoint"]] += sum(1 for obj in batch["response"][batch["endpoint"]] if obj is not None)
        return out

    def document_to_keep(self, window: dict[str, str]) -> dict[str, Any] | None:
        """The window's enrichment document; None in Development Mode or with nothing to ask,
        so that the window keeps any enrichment it had (`SnapshotStore.write_window`)."""
        return None if self.status in ("dev_mode", "nothing_to_enrich") else self.to_document(window)

    def to_document(self, window: dict[str, str]) -> dict[str, Any]:
        return {
            "schema_version": ENRICHMENT_SCHEMA_VERSION,
            "kind": "enrichment",
            "status": self.status,
            "window": window,
            "source": self.source,
            "api_url": self.api_url,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "requests": self.requests,
            "asked": self.asked,
            "received": self.received,
            "dev_mode": self.dev_mode,
            "errors": self.errors,
            "batches": self.batches,
        }

    def summary(self) -> str:
        received = self.received
        counts = ", ".join(f"{received[k]} of {self.asked[k]} {k}" for k in BATCH_SIZES)
        return f"enrichment {self.status}: {counts} in {self.requests} requests"


class Enricher:
    """Asks the batch endpoints for the window's artists and albums, at most `concurrency`
    requests at once. The first batch is asked alone: a Development Mode app answers it 403
    or 404 and nothing else is asked."""

    def __init__(
        self,
        source: PlaylistSource,
        *,
        concurrency: int = 8,
        market: str | None = None,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], str] = iso_z,
    ):
        self.source = source
        self.concurrency = max(1, concurrency)
        self.market = market
        self._log = log if log is not None else (lambda _msg: None)
        self._warn = warn if warn is not None else self._log
        self._clock = clock
        self._lock = threading.Lock()

    def enrich(self, snapshots: Iterable[PlaylistSnapshot]) -> Enrichment:
        """Never raises: whatever fails is in the result's `errors` (or `dev_mode`). The rows
        are read for ids only as far as the first batch needs until it has answered: for a
        Development Mode app, which refuses it, the rest are never read (its `asked` counts
        what was read)."""
        scan = IdScan(snapshots)
        return self._enrich(scan.first_job, scan.all, lambda: {"artists": len(scan.artists), "albums": len(scan.albums)})

    def enrich_ids(self, artist_ids: list[str], album_ids: list[str]) -> Enrichment:
        jobs = _jobs(artist_ids, album_ids)
        return self._enrich(
            lambda: jobs[0] if jobs else None, lambda: (artist_ids, album_ids),
            lambda: {"artists": len(artist_ids), "albums": len(album_ids)},
        )

    def _enrich(
        self,
        first_job: Callable[[], tuple[str, list[str]] | None],
        all_ids: Callable[[], tuple[list[str], list[str]]],
        asked: Callable[[], dict[str, int]],
    ) -> Enrichment:
        result = Enrichment("nothing_to_enrich", {"artists": 0, "albums": 0}, source=self.source.label,
                            api_url=self.source.api_url, started_at=self._clock())
        try:
            first = first_job()
        except Exception as err:  # rows of an unexpected shape: the playlists still go on
            self._warn(f"enrichment skipped: the window's artists and albums could not be listed ({type(err).__name__}: {err})")
            result.status = "failed"
            result.errors.append({"endpoint": None, "ids": [], "kind": "unexpected", "status": None, "message": f"{type(err).__name__}: {err}"})
            return result
        jobs = [first] if first is not None else []
        stop = threading.Event()
        try:
            if first is not None:
                self._ask(result, *first, stop)  # alone: Development Mode answers it 403/404
                if not stop.is_set():
                    jobs = _jobs(*all_ids())
                    self._ask_all(result, jobs[1:], stop)
        except Exception as err:  # enrichment must never fail the window
            result.errors.append({"endpoint": None, "ids": [], "kind": "unexpected", "status": None,
                                  "message": f"{type(err).__name__}: {err}"})
        result.asked = asked()
        result.finished_at = self._clock()
        order = {(kind, ids[0]): n for n, (kind, ids) in enumerate(jobs)}
        result.batches.sort(key=lambda b: order[(b["endpoint"], b["ids"][0])])  # answers arrive in any order
        result.status = _status(result, len(jobs))
        if result.dev_mode is not None:
            self._warn(
                f"GET /{result.dev_mode['endpoint']} answered {result.dev_mode['status']}: the app is in Development Mode "
                "(the batch endpoints were removed for it), so artists and albums are not enriched this run: their "
                "genres, followers, popularity and label stay null"
            )
        elif result.errors:
            error = result.errors[0]
            self._warn(
                f"{result.summary()}; {len(result.errors)} error(s), the first: {error['kind']}: {error['message']}. "
                "The playlists are written regardless; what was not enriched stays null"
            )
        else:
            self._log(result.summary())
        return result

    def _ask_all(self, result: Enrichment, jobs: list[tuple[str, list[str]]], stop: threading.Event) -> None:
        pending = iter(jobs)
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="spotify-enrich") as pool:
            while True:
                while not stop.is_set() and len(in_flight) < 2 * self.concurrency:
                    job = next(pending, None)
                    if job is None:
                        break
                    in_flight.add(pool.submit(self._ask, result, *job, stop))
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # _ask records its failures; anything else is a bug: raise

    def _ask(self, result: Enrichment, kind: str, ids: list[str], stop: threading.Event) -> None:
        if stop.is_set():
            return
        with self._lock:
            result.requests += 1
        params = {"ids": ",".join(ids)}
        if kind == "albums" and self.market:
            params["market"] = self.market
        try:
            body = self.source.get(kind, **params)
            response = {kind: _objects(kind, ids, body)}
        except SpotifyHttpError as err:
            with self._lock:
                if err.status in DEV_MODE_STATUSES:
                    stop.set()
                    if result.dev_mode is None:  # the first one marks the run
                        result.dev_mode = {"endpoint": kind, "status": err.status, "message": str(err)}
                    return
            self._fail(result, kind, ids, "http_error", err.status, str(err), stop)
            return
        except MalformedBatch as err:  # one bad answer: the other batches may still be good
            with self._lock:
                result.errors.append({"endpoint": kind, "ids": ids, "kind": "malformed", "status": None, "message": str(err)})
            return
        except Exception as err:  # 429 beyond the bound, 5xx after retries, auth, ...: stop asking
            what = (
                "rate_limited" if isinstance(err, RateLimitExceeded)
                else "unavailable" if isinstance(err, SpotifyUnavailable)
                else "error"
            )
            self._fail(result, kind, ids, what, 429 if what == "rate_limited" else None, f"{type(err).__name__}: {err}", stop)
            return
        with self._lock:
            result.batches.append({"endpoint": kind, "ids": ids, "response": response})

    def _fail(self, result: Enrichment, kind: str, ids: list[str], what: str, status: int | None,
              message: str, stop: threading.Event) -> None:
        stop.set()  # the API is refusing or failing: the remaining batches are not asked
        with self._lock:
            result.errors.append({"endpoint": kind, "ids": ids, "kind": what, "status": status, "message": message})


def _objects(kind: str, ids: list[str], body: Any) -> list[dict[str, Any] | None]:
    """The objects of a batch answer, each trimmed to KEPT_MEMBERS; MalformedBatch if the body
    is not `{kind: [object or null, one per id asked]}`."""
    objects = body.get(kind) if isinstance(body, dict) else None
    if not isinstance(objects, list):
        raise MalformedBatch(f"GET /{kind}: the answer has no '{kind}' list")
    if len(objects) != len(ids):
        raise MalformedBatch(f"GET /{kind}: asked for {len(ids)} ids, the answer has {len(objects)} objects")
    kept = KEPT_MEMBERS[kind]
    out: list[dict[str, Any] | None] = []
    for obj in objects:
        if obj is None:
            out.append(None)
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise MalformedBatch(f"GET /{kind}: an element is not an object with an id: {str(obj)[:80]!r}")
        out.append({key: obj[key] for key in kept if key in obj})
    return out


def _jobs(artist_ids: list[str], album_ids: list[str]) -> list[tuple[str, list[str]]]:
    return [("artists", ids) for ids in batches("artists", artist_ids)] + [("albums", ids) for ids in batches("albums", album_ids)]


def _status(result: Enrichment, jobs: int) -> str:
    if result.dev_mode is not None:
        return "dev_mode"
    if jobs == 0:
        return "nothing_to_enrich"
    if not result.errors:
        return "ok"
    return "partial" if result.batches else "failed"
