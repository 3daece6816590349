"""An HTTP emulator of the Spotify Web API (accounts + playlists), as it stands in late 2026.

Serves both API shapes: "2026" (Development Mode: `/items`, rows carry `item`, page size 50,
stripped popularity/markets/genres) and "2025" (Extended Quota / before February 2026:
`/tracks`, rows carry `track`, page size 100). Without Development Mode fields it also serves
the batch endpoints `GET /artists?ids=` (at most 50) and `GET /albums?ids=` (at most 20), with
the full objects of the artists and albums its playlists name (`add_artist`/`add_album` set
genres, followers, popularity, label); in Development Mode they answer 403 (removed
endpoints). Faults can be injected per path/method/query, in-process or over HTTP
(`/_emulator/...`) from another process. Stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import functools
import hashlib
import json
import math
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

Spec = dict[str, "Spec | None"]
"""A parsed `fields` filter: key -> sub-filter, or None to keep the whole value."""

SCOPE = "playlist-read-private playlist-read-collaborative"
FAULT_KINDS = frozenset(
    {
        "rate_limit", "status", "slow", "truncate", "malformed", "reset", "unauthorized", "forbidden", "not_found",
        "drip", "total",
    }
)
_SHAPES = {"2026": ("items", "item", 50), "2025": ("tracks", "track", 100)}
_DEV_MODE_TRACK = ("popularity", "available_markets", "linked_from")
_DEV_MODE_ALBUM = ("popularity", "label", "album_group", "available_markets")
_DEV_MODE_ARTIST = ("popularity", "followers", "genres")
_PAGE_QUERY_KEYS = ("fields", "market", "additional_types")
_ROUTE = re.compile(r"^/v1/playlists/([^/]+)(?:/(items|tracks))?$")
_BATCH_ROUTES = {"/v1/artists": ("artists", 50), "/v1/albums": ("albums", 20)}  # the API's id limits
_EXPIRED = "The access token expired"
_MAX_FILTER_CACHE = 64

_encode_str = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _dumps(value: Any) -> bytes:
    return _encode_str(value).encode("utf-8")


# --- fields filter ------------------------------------------------------------------------------


class FieldsError(ValueError):
    """A `fields` filter that does not parse."""


_FIELD_TOKEN = re.compile(r"[(),.]|[^(),.]+")
_PUNCT = frozenset("(),.")
_MAX_FIELDS_DEPTH = 32


@functools.lru_cache(maxsize=256)
def parse_fields(text: str) -> Spec:
    """Parse Spotify's `fields` syntax: `a,b.c,d(e,f(g))`. Raises FieldsError when malformed."""
    tokens = [t for t in (raw.strip() for raw in _FIELD_TOKEN.findall(text)) if t]
    spec, _ = _parse_group(tokens, 0, depth=0)
    return spec


def _parse_group(tokens: list[str], pos: int, depth: int) -> tuple[Spec, int]:
    if depth > _MAX_FIELDS_DEPTH:
        raise FieldsError("fields nested too deeply")
    spec: Spec = {}
    while pos < len(tokens):
        token = tokens[pos]
        if token == ",":  # tolerate empty entries such as "a,,b" or a trailing comma
            pos += 1
            continue
        if token == ")":
            if depth == 0:
                raise FieldsError("unbalanced ')'")
            return spec, pos + 1
        if token in _PUNCT:
            raise FieldsError(f"expected a field name, got {token!r}")
        path = [token]
        pos += 1
        while pos < len(tokens) and tokens[pos] == ".":
            if pos + 1 >= len(tokens) or tokens[pos + 1] in _PUNCT:
                raise FieldsError("'.' must be followed by a field name")
            path.append(tokens[pos + 1])
            pos += 2
        sub: Spec | None = None
        if pos < len(tokens) and tokens[pos] == "(":
            sub, pos = _parse_group(tokens, pos + 1, depth + 1)
        if pos < len(tokens) and tokens[pos] not in (",", ")"):
            raise FieldsError(f"unexpected {tokens[pos]!r}")
        _merge_path(spec, path, sub)
    if depth > 0:
        raise FieldsError("unbalanced '('")
    return spec, pos


def _merge_path(spec: Spec, path: list[str], sub: Spec | None) -> None:
    node = spec
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if child is None:
            return  # the whole value is already selected
        node = child
    last = path[-1]
    if last not in node:
        node[last] = sub
        return
    existing = node[last]
    if existing is None:
        return
    if sub is None:
        node[last] = None  # selecting the whole value wins over a sub-selection
        return
    for key, value in sub.items():
        _merge_path(existing, [key], value)


def select(value: Any, spec: Spec | None) -> Any:
    """Apply a parsed filter: dicts keep the named keys present, lists apply it per element."""
    if spec is None:
        return value
    if isinstance(value, dict):
        return {key: select(value[key], sub) for key, sub in spec.items() if key in value}
    if isinstance(value, list):
        return [select(element, spec) for element in value]
    return value


def _encode_object(
    obj: Mapping[str, Any],
    spec: Spec | None,
    lazy_key: str | None = None,
    lazy: Callable[[Spec | None], bytes] | None = None,
) -> bytes:
    """Encode `obj` filtered by `spec`; the member `lazy_key` is encoded by `lazy(sub_spec)`,
    so large precomputed row lists are spliced in instead of being re-encoded."""
    parts = []
    for key, value in obj.items():
        if spec is not None and key not in spec:
            continue
        sub = None if spec is None else spec[key]
        encoded = lazy(sub) if key == lazy_key and lazy is not None else _dumps(select(value, sub))
        parts.append(_dumps(key) + b":" + encoded)
    return b"{" + b",".join(parts) + b"}"


# --- data ---------------------------------------------------------------------------------------


def _strip_dev_mode(payload: dict[str, Any]) -> None:
    for key in _DEV_MODE_TRACK:
        payload.pop(key, None)
    artists = list(payload.get("artists") or [])
    album = payload.get("album")
    if isinstance(album, dict):
        for key in _DEV_MODE_ALBUM:
            album.pop(key, None)
        artists.extend(album.get("artists") or [])
    for artist in artists:
        if isinstance(artist, dict):
            for key in _DEV_MODE_ARTIST:
                artist.pop(key, None)


@dataclass
class _Playlist:
    meta: dict[str, Any]
    rows: list[dict[str, Any]]  # as served: row key and Development Mode stripping applied
    row_json: list[bytes]  # rows encoded once: the unfiltered fast path
    contents_forbidden: bool
    filtered: dict[str, list[bytes | None]] = field(default_factory=dict)  # row filter -> encoded rows
    lock: threading.Lock = field(default_factory=threading.Lock)

    def encoded_rows(self, spec: Spec | None, start: int, stop: int) -> list[bytes]:
        """Rows [start:stop] encoded under `spec`; filtered rows are encoded on first use and kept."""
        if spec is None:
            return self.row_json[start:stop]
        key = json.dumps(spec, sort_keys=True)
        with self.lock:
            cache = self.filtered.get(key)
            if cache is None:
                if len(self.filtered) >= _MAX_FILTER_CACHE:
                    self.filtered.clear()
                cache = self.filtered[key] = [None] * len(self.rows)
        window = cache[start:stop]
        if None in window:
            # Racing threads may both fill a slot; they write identical bytes.
            for index in range(start, min(stop, len(self.rows))):
                if cache[index] is None:
                    cache[index] = _dumps(select(self.rows[index], spec))
            window = cache[start:stop]
        return cast("list[bytes]", window)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int  # 0 when the connection was reset without a response
    authorization_kind: str | None  # "Bearer" / "Basic" / None; the credential itself is never kept
    monotonic_start: float
    monotonic_end: float  # when the answer was ready to send (the log entry exists before it leaves)


@dataclass
class _Fault:
    kind: str
    path: re.Pattern[str]
    method: str | None
    remaining: int | None
    query: dict[str, str]
    params: dict[str, Any]


@dataclass(slots=True)
class _Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    mode: str = "normal"  # "truncate": half the body then close; "reset": no response at all
    drip_s: float = 0.0  # mode "drip": headers at once, then one byte of the body every drip_s


def _json(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, _dumps(payload), headers)


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = (), **extra: Any) -> _Response:
    return _json(status, {"error": {"status": status, "message": message, **extra}}, headers)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# --- the emulator -------------------------------------------------------------------------------


class SpotifyEmulator:
    """Spotify accounts + Web API playlists on one local HTTP server."""

    def __init__(
        self,
        *,
        shape: str = "2026",
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        refresh_token: str | None = "test-refresh-token",
        latency_s: float = 0.0,
        row_key: str | None = "auto",
        dev_mode_fields: bool | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        versioned_snapshots: bool = False,
        rate_budget: tuple[int, float] | None = None,
    ) -> None:
        """`versioned_snapshots`: each playlist's `snapshot_id` is derived from its rows (it
        changes exactly when they do, as Spotify's does) instead of taken from its metadata.
        `rate_budget` = (requests, seconds): like Spotify's per-app limit, more than `requests`
        API requests within a rolling `seconds` are answered 429 with the `Retry-After` (whole
        seconds) until the window has room; a refused request counts against it too."""
        if shape not in _SHAPES:
            raise ValueError(f"shape must be one of {sorted(_SHAPES)}, got {shape!r}")
        if row_key not in ("auto", None):
            raise ValueError(f"row_key must be 'auto' or None, got {row_key!r}")
        # Settings are fixed here because served rows are precomputed from them; only latency may change.
        self._shape = shape
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.latency_s = latency_s
        self._row_key = row_key
        self._dev_mode_fields = shape == "2026" if dev_mode_fields is None else dev_mode_fields
        self._host = host
        self._port = port
        self._versioned_snapshots = versioned_snapshots
        self._rate_budget = rate_budget
        self._budget_sent: collections.deque[float] = collections.deque()
        self._budget_lock = threading.Lock()
        self._container, self._payload_key, self._max_limit = _SHAPES[shape]
        self._lock = threading.Lock()
        self._playlists: dict[str, _Playlist] = {}
        # full objects for the batch endpoints: learned from playlist rows, then `add_artist`/`add_album`
        self._catalog: dict[str, dict[str, dict[str, Any]]] = {"artists": {}, "albums": {}}
        self._faults: list[_Fault] = []
        self._tokens: set[str] = set()
        self._codes: dict[str, tuple[str, str]] = {}  # authorization code -> (redirect_uri, scope)
        self._log: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base = ""

    # lifecycle

    def start(self) -> SpotifyEmulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = _Server((self._host, self._port), self)
        host, port = server.server_address[:2]
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self._base = f"http://{url_host}:{port}"
        self._server = server
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="spotify-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()  # wake handler threads idling on keep-alive connections
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> SpotifyEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Settings are read-only: served rows were precomputed from them.

    @property
    def shape(self) -> str:
        return self._shape

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def client_secret(self) -> str:
        return self._client_secret

    @property
    def refresh_token(self) -> str | None:
        return self._refresh_token

    @property
    def row_key(self) -> str | None:
        return self._row_key

    @property
    def dev_mode_fields(self) -> bool:
        return self._dev_mode_fields

    @property
    def accounts_url(self) -> str:
        if not self._base:
            raise RuntimeError("emulator not started")
        return self._base

    @property
    def api_url(self) -> str:
        return f"{self.accounts_url}/v1"

    # data

    def add_playlist(
        self, meta: dict[str, Any], rows: list[dict[str, Any]], *, contents_forbidden: bool = False
    ) -> None:
        meta = copy.deepcopy(meta)
        for container in ("items", "tracks"):  # the container is built per request from rows
            meta.pop(container, None)
        if "id" not in meta:
            raise ValueError("playlist meta needs an 'id'")
        self._learn(rows)  # before Development Mode stripping: the batch endpoints serve whole objects
        served = [self._serve_row(row) for row in copy.deepcopy(rows)]
        if self._versioned_snapshots:
            meta["snapshot_id"] = hashlib.sha256(b"\n".join(_dumps(row) for row in served)).hexdigest()[:32]
        playlist = _Playlist(meta, served, [_dumps(row) for row in served], contents_forbidden)
        with self._lock:
            self._playlists[str(meta["id"])] = playlist

    def add_artist(self, artist: dict[str, Any]) -> None:
        """Serve this full artist object (genres, followers, popularity, ...) from `GET /artists`."""
        self._register("artists", artist)

    def add_album(self, album: dict[str, Any]) -> None:
        """Serve this full album object (label, popularity, ...) from `GET /albums`."""
        self._register("albums", album)

    def _register(self, kind: str, obj: dict[str, Any]) -> None:
        if not obj.get("id"):
            raise ValueError(f"an {kind[:-1]} needs an 'id'")
        with self._lock:
            known = self._catalog[kind].get(str(obj["id"]), {})
            self._catalog[kind][str(obj["id"])] = {**known, **copy.deepcopy(obj)}

    def _learn(self, rows: list[dict[str, Any]]) -> None:
        """The artists and albums the rows name, as simplified objects (the full ones add to them)."""
        with self._lock:
            for row in rows:
                payload = row.get("item") or row.get("track") if isinstance(row, dict) else None
                if not isinstance(payload, dict):
                    continue
                album = payload.get("album") if isinstance(payload.get("album"), dict) else {}
                artists = [*(payload.get("artists") or []), *(album.get("artists") or [])]
                for kind, obj in [("albums", album), *(("artists", a) for a in artists)]:
                    if isinstance(obj, dict) and obj.get("id"):
                        self._catalog[kind].setdefault(str(obj["id"]), copy.deepcopy(obj))

    def _full_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            known = self._catalog[kind].get(object_id)
        if known is None:
            return None  # the API answers null for an id it does not know
        if kind == "artists":
            defaults: dict[str, Any] = {"followers": {"href": None, "total": 0}, "genres": [], "images": [], "popularity": 0}
        else:
            defaults = {
                "available_markets": ["SE", "US"], "copyrights": [], "genres": [], "images": [], "label": "",
                "popularity": 0, "tracks": {"href": None, "items": [], "limit": 50, "next": None, "offset": 0,
                                            "previous": None, "total": known.get("total_tracks", 0)},
            }
        return {**defaults, **copy.deepcopy(known)}

    def _serve_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if self._row_key == "auto":
            # Only the row-level key moves; the track object's own boolean `track` is untouched.
            payload = row.get("item") if "item" in row else row.get("track")
            row.pop("item", None)
            row.pop("track", None)
            row[self._payload_key] = payload
        if self._dev_mode_fields:
            for key in ("item", "track"):
                payload = row.get(key)
                if isinstance(payload, dict):
                    _strip_dev_mode(payload)
        return row

    # faults, tokens, log

    def inject(
        self,
        kind: str,
        *,
        path: str = ".*",
        method: str | None = None,
        times: int | None = 1,
        query: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if kind == "status" and "status" not in params:
            raise ValueError("a 'status' fault needs status=<code>")
        if kind == "slow" and "seconds" not in params:
            raise ValueError("a 'slow' fault needs seconds=<float>")
        if kind == "total" and "total" not in params:
            raise ValueError("a 'total' fault needs total=<int>")
        fault = _Fault(
            kind=kind,
            path=re.compile(path),
            method=method.upper() if method else None,
            remaining=times,
            query={str(k): str(v) for k, v in (query or {}).items()},
            params=params,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, path_regex: str = ".*", method: str | None = None) -> int:
        pattern = re.compile(path_regex)
        wanted = method.upper() if method else None
        return sum(
            1 for r in self.requests if pattern.search(r.path) and (wanted is None or r.method == wanted)
        )

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def _take_fault(self, method: str, path: str, query: dict[str, str]) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if (
                    fault.path.search(path)
                    and (fault.method is None or fault.method == method)
                    and all(query.get(k) == v for k, v in fault.query.items())
                ):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            del self._faults[index]
                    return fault
        return None

    def _issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return token

    # request handling (called from handler threads)

    def _handle(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> _Response:
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        if self._rate_budget is not None and path.startswith("/v1/"):
            retry_after = self._over_budget()
            if retry_after is not None:
                return _error(429, "API rate limit exceeded", (("Retry-After", str(retry_after)),))
        fault = self._take_fault(method, path, query)
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(float(fault.params["seconds"]))
            elif fault.kind == "reset":
                return _Response(0, mode="reset")
            elif fault.kind == "drip":
                normal = self._route(method, path, query, headers, body)
                return _Response(normal.status, normal.body, normal.headers, mode="drip",
                                 drip_s=float(fault.params.get("seconds", 2.0)))
            elif fault.kind == "total":
                return _with_total(self._route(method, path, query, headers, body), int(fault.params["total"]))
            elif fault.kind in ("truncate", "malformed"):
                normal = self._route(method, path, query, headers, body)
                if fault.kind == "truncate":
                    return _Response(200, normal.body, mode="truncate")
                return _Response(200, normal.body[: len(normal.body) // 2])
            else:
                return self._fault_response(fault)
        return self._route(method, path, query, headers, body)

    def _over_budget(self) -> int | None:
        """None if this request is within the rolling budget, else the whole seconds until the
        window has room again."""
        limit, window_s = self._rate_budget  # type: ignore[misc]
        with self._budget_lock:
            now = time.monotonic()
            sent = self._budget_sent
            while sent and sent[0] <= now - window_s:
                sent.popleft()
            over = len(sent) >= limit
            sent.append(now)
            if not over:
                return None
            free_at = sent[len(sent) - limit] + window_s  # the oldest beyond the limit leaves
        return max(1, math.ceil(free_at - now))

    def _fault_response(self, fault: _Fault) -> _Response:
        params = fault.params
        retry_after = (("Retry-After", str(int(params["retry_after"]))),) if "retry_after" in params else ()
        if fault.kind == "rate_limit":
            extra = {"reason": "QUOTA_EXCEEDED"} if params.get("quota") else {}
            return _error(429, "API rate limit exceeded", retry_after or (("Retry-After", "1"),), **extra)
        if fault.kind == "status":
            status = int(params["status"])
            return _error(status, str(params.get("message") or _reason(status)), retry_after)
        if fault.kind == "unauthorized":
            self.revoke_tokens()
            return _error(401, _EXPIRED)
        if fault.kind == "forbidden":
            return _error(403, "Forbidden")
        return _error(404, "Resource not found")

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> _Response:
        if path == "/api/token":
            return self._token(headers, body) if method == "POST" else _error(405, "Method not allowed")
        if path == "/authorize":
            return self._authorize(query) if method == "GET" else _error(405, "Method not allowed")
        if not path.startswith("/v1/"):
            return _error(404, "Service not found")
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        with self._lock:
            authorized = scheme.lower() == "bearer" and token.strip() in self._tokens
        if not authorized:
            return _error(401, _EXPIRED)
        if path.rstrip("/") in _BATCH_ROUTES:  # spotipy asks for `artists/?ids=`
            return self._batch(method, path.rstrip("/"), query)
        match = _ROUTE.match(path)
        if match is None:
            return _error(404, "Service not found")
        if method != "GET":
            return _error(405, "Method not allowed")
        playlist_id, sub = match.groups()
        if sub is None:
            return self._playlist(playlist_id, query)
        if sub != self._container:
            # 2026: /tracks is closed to Development Mode apps; 2025: the server predates /items.
            return _error(403, "Forbidden") if self._shape == "2026" else _error(404, "Service not found")
        return self._items(playlist_id, sub, query)

    def _batch(self, method: str, path: str, query: dict[str, str]) -> _Response:
        """`GET /artists?ids=` or `/albums?ids=`: full objects in the order asked, null for unknown ids."""
        if method != "GET":
            return _error(405, "Method not allowed")
        if self._dev_mode_fields:
            return _error(403, "Forbidden")  # removed for Development Mode apps
        kind, most = _BATCH_ROUTES[path]
        ids = query.get("ids", "").split(",")
        if not all(ids):
            return _error(400, "invalid id")
        if len(ids) > most:
            return _error(400, "Too many ids requested")
        return _json(200, {kind: [self._full_object(kind, object_id) for object_id in ids]})

    def _token(self, headers: Mapping[str, str], body: bytes) -> _Response:
        scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:
            credentials = ""
        if scheme.lower() != "basic" or credentials != f"{self._client_id}:{self._client_secret}":
            return _json(400, {"error": "invalid_client", "error_description": "Invalid client"})
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return _json(200, {"access_token": self._issue_token(), "token_type": "Bearer", "expires_in": 3600})
        if grant == "refresh_token":
            if self._refresh_token is None or form.get("refresh_token") != self._refresh_token:
                return _json(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
            return _json(
                200,
                {"access_token": self._issue_token(), "token_type": "Bearer", "expires_in": 3600, "scope": SCOPE},
            )
        if grant == "authorization_code":
            with self._lock:
                issued = self._codes.pop(form.get("code", ""), None)  # codes are single use
            if issued is None:
                return _json(400, {"error": "invalid_grant", "error_description": "Invalid authorization code"})
            redirect_uri, scope = issued
            if form.get("redirect_uri") != redirect_uri:
                return _json(400, {"error": "invalid_grant", "error_description": "Invalid redirect URI"})
            answer: dict[str, Any] = {
                "access_token": self._issue_token(),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": scope,
            }
            if self._refresh_token is not None:
                answer["refresh_token"] = self._refresh_token
            return _json(200, answer)
        return _json(
            400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r} is not supported"}
        )

    def _authorize(self, query: dict[str, str]) -> _Response:
        if query.get("client_id") != self._client_id:
            return _error(400, "INVALID_CLIENT: Invalid client")
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri or query.get("response_type") != "code":
            return _error(400, "INVALID_REQUEST: redirect_uri and response_type=code are required")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (redirect_uri, query.get("scope") or SCOPE)
        params = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return _Response(302, headers=(("Location", f"{redirect_uri}{separator}{urlencode(params)}"),))

    def _lookup(self, playlist_id: str) -> _Playlist | None:
        with self._lock:
            return self._playlists.get(playlist_id)

    def _playlist(self, playlist_id: str, query: dict[str, str]) -> _Response:
        playlist = self._lookup(playlist_id)
        if playlist is None:
            return _error(404, "Resource not found")
        try:
            spec = parse_fields(query["fields"]) if query.get("fields") else None
        except FieldsError:
            return _error(400, "Invalid fields")
        path = f"/v1/playlists/{playlist_id}/{self._container}"
        if playlist.contents_forbidden:
            container = {"href": f"{self._base}{path}", "total": len(playlist.rows)}
            return _Response(200, _encode_object({**playlist.meta, self._container: container}, spec))
        # The playlist's own `fields` would not fit the paging root, so `next` does not carry it.
        extra = {key: query[key] for key in ("market", "additional_types") if key in query}

        def page(sub: Spec | None) -> bytes:
            return self._encode_page(playlist, path, 0, self._max_limit, extra, sub)

        obj = {**playlist.meta, self._container: None}
        return _Response(200, _encode_object(obj, spec, self._container, page))

    def _items(self, playlist_id: str, sub: str, query: dict[str, str]) -> _Response:
        playlist = self._lookup(playlist_id)
        if playlist is None:
            return _error(404, "Resource not found")
        if playlist.contents_forbidden:
            return _error(403, "Forbidden")
        try:
            spec = parse_fields(query["fields"]) if query.get("fields") else None
        except FieldsError:
            return _error(400, "Invalid fields")
        limit = _int_or_none(query.get("limit", "20"))
        if limit is None or not 1 <= limit <= self._max_limit:
            return _error(400, "Invalid limit")
        offset = _int_or_none(query.get("offset", "0"))
        if offset is None or offset < 0:
            return _error(400, "Invalid offset")
        extra = {key: query[key] for key in _PAGE_QUERY_KEYS if key in query}
        path = f"/v1/playlists/{playlist_id}/{sub}"
        return _Response(200, self._encode_page(playlist, path, offset, limit, extra, spec))

    def _encode_page(
        self, playlist: _Playlist, path: str, offset: int, limit: int, extra: dict[str, str], spec: Spec | None
    ) -> bytes:
        total = len(playlist.rows)

        def url(at: int) -> str:
            return f"{self._base}{path}?{urlencode({'offset': at, 'limit': limit, **extra})}"

        def rows(sub: Spec | None) -> bytes:
            return b"[" + b",".join(playlist.encoded_rows(sub, offset, offset + limit)) + b"]"

        envelope = {
            "href": url(offset),
            "items": None,
            "limit": limit,
            "next": url(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": url(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }
        return _encode_object(envelope, spec, "items", rows)

    # control endpoints: no auth, no latency, no faults, not recorded

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "Invalid JSON")
        try:
            if path == "/_emulator/faults" and method == "POST":
                args = dict(payload)
                self.inject(args.pop("kind"), **args)
                return _json(201, {"ok": True})
            if path == "/_emulator/faults" and method == "DELETE":
                self.clear_faults()
                return _json(200, {"ok": True})
            if path == "/_emulator/playlists" and method == "POST":
                self.add_playlist(
                    payload["meta"], payload["rows"], contents_forbidden=bool(payload.get("contents_forbidden"))
                )
                return _json(201, {"ok": True})
            if path == "/_emulator/requests" and method == "GET":
                return _json(200, [asdict(entry) for entry in self.requests])
            if path == "/_emulator/requests" and method == "DELETE":
                self.reset_log()
                return _json(200, {"ok": True})
        except (KeyError, TypeError, ValueError, re.error) as exc:
            return _error(400, f"Bad control request: {exc!r}")
        return _error(404, "Service not found")


# --- HTTP plumbing ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive handler threads must not hold up stop()
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: SpotifyEmulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.stopping = threading.Event()  # ends drip faults on stop()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        self.stopping.set()
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections is routine here (faults, timeouts, stop()).
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log replaces access logging

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815 - stdlib naming

    def _dispatch(self) -> None:
        start = time.monotonic()
        emulator = self.server.emulator
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if path.startswith("/_emulator/"):
            self._write(emulator._control(self.command, path, body))
            return
        try:
            response = emulator._handle(self.command, path, query, self.headers, body)
        except Exception as exc:  # a bug must surface as a 500, not a dropped connection
            traceback.print_exc()
            response = _error(500, f"emulator error: {exc!r}")
        kind = (self.headers.get("Authorization") or "").partition(" ")[0].lower()
        # Recorded before the answer leaves, so a client that has its response also sees it logged.
        emulator._record(
            RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                status=response.status,
                authorization_kind={"bearer": "Bearer", "basic": "Basic"}.get(kind),
                monotonic_start=start,
                monotonic_end=time.monotonic(),
            )
        )
        self._write(response)

    def _write(self, response: _Response) -> None:
        if response.mode == "reset":
            self.close_connection = True
            # Linger 0 makes close() send RST: the client sees a reset, not a clean EOF.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        body = response.body
        lines = [
            f"HTTP/1.1 {response.status} {_reason(response.status)}",
            f"Content-Length: {len(body)}",  # the full length, also when truncating
        ]
        if body:
            lines.append("Content-Type: application/json; charset=utf-8")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        if response.mode == "truncate":
            body = body[: len(body) // 2]
        if response.mode == "drip":
            self._drip(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body, response.drip_s)
            return
        # One write per response: headers and body leave in the same segment(s).
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if response.mode == "truncate":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


    def _drip(self, head: bytes, body: bytes, seconds: float) -> None:
        """Headers at once, then the body one byte at a time: every read succeeds, none finishes."""
        self.wfile.write(head)
        self.wfile.flush()
        for index in range(len(body)):
            if self.server.stopping.wait(seconds):
                break
            try:
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
            except OSError:
                break  # the client gave up: what this fault is about
        self.close_connection = True


def _with_total(response: _Response, total: int) -> _Response:
    """The same answer, claiming `total` rows: in the playlist's container and in a page."""
    if response.status != 200:
        return response
    payload = json.loads(response.body)
    for container in (payload, payload.get("items"), payload.get("tracks")):
        if isinstance(container, dict) and "total" in container:
            container["total"] = total
    return _Response(200, _dumps(payload), response.headers)


@functools.cache
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# --- CLI ----------------------------------------------------------------------------------------


def _playlist_from_file(path: Path, data: Any, api_url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A recorded playlist object, paging object or bare row list -> (meta, rows)."""
    if isinstance(data, dict):
        container = next(
            (
                data[key]
                for key in ("items", "tracks")
                if isinstance(data.get(key), dict) and isinstance(data[key].get("items"), list)
            ),
            None,
        )
        if data.get("type") == "playlist" or container is not None:
            meta = {key: value for key, value in data.items() if key not in ("items", "tracks")}
            meta.setdefault("id", path.stem)
            return meta, list((container or {}).get("items") or [])
        if isinstance(data.get("items"), list) and "total" in data:
            return _synthetic_meta(path.stem, api_url), data["items"]
    if isinstance(data, list):
        return _synthetic_meta(path.stem, api_url), data
    raise ValueError(f"{path}: not a playlist object, paging object or list of rows")


def _synthetic_meta(playlist_id: str, api_url: str) -> dict[str, Any]:
    return {
        "id": playlist_id,
        "name": playlist_id,
        "description": None,
        "owner": {"id": "emulator"},
        "snapshot_id": f"emulator-{playlist_id}",
        "type": "playlist",
        "public": False,
        "collaborative": False,
        "href": f"{api_url}/playlists/{playlist_id}",
        "uri": f"spotify:playlist:{playlist_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/playlist/{playlist_id}"},
        "images": [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spotify_assets_tests.support.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--shape", choices=sorted(_SHAPES), default="2026")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--client-id", default="test-client-id")
    parser.add_argument("--client-secret", default="test-client-secret")
    parser.add_argument("--refresh-token", default="test-refresh-token")
    parser.add_argument("--raw-rows", action="store_true", help="serve rows exactly as stored")
    parser.add_argument("--playlists-dir", type=Path, help="load every *.json in this directory")
    args = parser.parse_args(argv)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    emulator = SpotifyEmulator(
        shape=args.shape,
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_token=args.refresh_token,
        latency_s=args.latency_ms / 1000,
        row_key=None if args.raw_rows else "auto",
        host=args.host,
        port=args.port,
    ).start()
    try:
        if args.playlists_dir is not None:
            for file in sorted(args.playlists_dir.glob("*.json")):
                meta, rows = _playlist_from_file(file, json.loads(file.read_text(encoding="utf-8")), emulator.api_url)
                emulator.add_playlist(meta, rows)
        print(json.dumps({"api_url": emulator.api_url, "accounts_url": emulator.accounts_url}), flush=True)
        stopping.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
