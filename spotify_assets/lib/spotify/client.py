"""Spotify Web API access on top of spotipy: auth, bounded retries, and typed errors.

spotipy does the HTTP and the OAuth flows. What it does not do safely is retrying: it sleeps
for whatever `Retry-After` says (hours, in the wild) and its timeout does not bound that sleep.
So spotipy's own retry adapter is left out (we hand it a plain `requests.Session`) and every
call goes through `SpotifyApi.get`, which bounds waits, backs off with jitter and renews the
token once on a 401.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import spotipy
import urllib3
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth, SpotifyOauthError

from spotify_assets.lib.spotify.rate_gate import GateClosed, RateGate

DEFAULT_API_URL = "https://api.spotify.com/v1"
DEFAULT_ACCOUNTS_URL = "https://accounts.spotify.com"
# Reading a playlist's contents needs one of these on a user token (Development Mode apps).
USER_SCOPES = "playlist-read-private playlist-read-collaborative"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"

# spotipy logs request headers (bearer tokens, Basic client secrets) and token responses at
# DEBUG: pin its loggers above DEBUG so no log configuration can ever surface them. Its client
# also logs every error status at ERROR, retried or not; SpotifyApi reports those itself.
logging.getLogger("spotipy").setLevel(logging.INFO)
logging.getLogger("spotipy.oauth2").setLevel(logging.INFO)
logging.getLogger("spotipy.client").setLevel(logging.CRITICAL)
_logger = logging.getLogger(__name__)
_TOKEN_REQUEST = "POST /api/token"


class SpotifyError(Exception):
    """Base class: something the Spotify API (or the road to it) refused or broke."""


class SpotifyAuthError(SpotifyError):
    """The accounts service rejected the credentials: nothing else can work until fixed."""


class SpotifyHttpError(SpotifyError):
    """The API answered with an error status that retrying will not fix."""

    def __init__(self, status: int, request: str, message: str | None, reason: str | None = None):
        self.status = status
        self.request = request
        self.message = message
        self.reason = reason
        detail = f": {message}" if message else ""
        super().__init__(f"HTTP {status} from {request}{detail}")


class RateLimitExceeded(SpotifyError):
    """A 429 asked for a longer wait than we are allowed to sleep inside a run."""

    def __init__(self, request: str, retry_after_s: float, bound_s: float, reason: str | None):
        self.request = request
        self.retry_after_s = retry_after_s
        self.bound_s = bound_s
        self.reason = reason
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"HTTP 429 from {request}{why}: Spotify asked to wait {retry_after_s:g} s, more "
            f"than the {bound_s:g} s allowed (SPOTIFY_MAX_RETRY_AFTER_SECONDS)"
        )


class RateLimitNotSent(RateLimitExceeded):
    """A request not sent at all: an earlier 429 asked every request to wait longer than allowed."""

    def __init__(self, request: str, closed_by: RateLimitExceeded, remaining_s: float):
        self.closed_by = closed_by
        super().__init__(request, remaining_s, closed_by.bound_s, closed_by.reason)
        self.args = (f"{request} not sent, {remaining_s:.0f} s before the rate limit lifts: {closed_by}",)


class SpotifyUnavailable(SpotifyError):
    """Transient failures (5xx, resets, timeouts, broken bodies) outlasted the retry budget."""


class DeadlineExceeded(SpotifyUnavailable):
    """Requests kept outlasting the per-request deadline (a server trickling its answer)."""


class SpotifyRequestInvalid(SpotifyError):
    """The request cannot be sent at all (a malformed URL, a port out of range): not retried."""


class _InvalidRequest(Exception):
    """requests' InvalidURL and kin, re-raised as something spotipy does not swallow: they are
    ValueErrors, which spotipy takes for an undecodable body and turns into None."""


class _DeadlineHit(requests.Timeout):
    """One request ran past its deadline; retried like a timeout, reported as DeadlineExceeded."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long we are willing to wait, and how often we try again."""

    max_attempts: int = 5
    max_retry_after_s: float = 60.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 10.0
    deadline_s: float = 30.0  # connect plus the whole body, per request

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True)
class Credentials:
    """App credentials; with a refresh token the calls run as that user."""

    client_id: str
    client_secret: str
    refresh_token: str | None = None

    def __repr__(self) -> str:  # never print secrets, even by accident
        return f"Credentials(client_id={self.client_id!r}, refresh_token={'set' if self.refresh_token else 'unset'})"


def _retry_after_seconds(headers: Any) -> float:
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0  # a 429 without a usable header: wait a little, within the bound


def _path_of(url: str) -> str:
    return urlsplit(url).path or url


class _DeadlineSession(requests.Session):
    """A Session whose every request ends within `deadline_s`, connect plus the whole body.

    requests' timeout bounds each socket read, so a server sending one byte every few seconds
    holds a call forever. Here the body is read in whatever pieces arrive (`read1`), the clock
    checked between pieces, and every socket wait capped by the time left. (The status line and
    headers are read by http.client with the per-read timeout only.)
    """

    def __init__(self, deadline_s: float):
        super().__init__()
        self.deadline_s = deadline_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        deadline = time.monotonic() + self.deadline_s
        timeout = kwargs.get("timeout")
        cap = self.deadline_s if not isinstance(timeout, (int, float)) else min(float(timeout), self.deadline_s)
        kwargs["timeout"] = cap
        kwargs["stream"] = True
        try:
            response = super().request(method, url, *args, **kwargs)
        except _INVALID_REQUEST as err:
            raise _InvalidRequest(str(err)) from None
        late = _DeadlineHit(
            f"{method!s} {_path_of(str(url))} did not finish within the {self.deadline_s:g} s deadline "
            "(SPOTIFY_REQUEST_DEADLINE_SECONDS)"
        )
        try:
            chunks: list[bytes] = []
            raw = response.raw
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise late
                _set_read_timeout(raw, min(cap, left))
                try:
                    chunk = raw.read1(1 << 16, decode_content=True)
                except urllib3.exceptions.ReadTimeoutError as err:
                    if time.monotonic() >= deadline - 0.05:
                        raise late from None
                    raise requests.exceptions.ReadTimeout(err) from None
                except urllib3.exceptions.DecodeError as err:
                    raise requests.exceptions.ContentDecodingError(err) from None
                except (urllib3.exceptions.ProtocolError, OSError) as err:
                    raise requests.exceptions.ChunkedEncodingError(err) from None
                if not chunk:
                    break
                chunks.append(chunk)
            response._content = b"".join(chunks)
            response._content_consumed = True
        except BaseException:
            response.close()
            raise
        response.close()  # the body is in hand: hand the connection back to the pool
        return response


def _set_read_timeout(raw: Any, seconds: float) -> None:
    """Cap the next socket wait of a streaming urllib3 response (best effort)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.01))


def url_problem(url: str) -> str | None:
    """Why `url` cannot be requested (scheme, host, port), or None when it can."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as err:
        return f"is not a valid URL ({err})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http(s) URL with a host"
    if port == 0:
        return "has port 0, which cannot be connected to"
    return None


class SpotifyApi:
    """Thread-safe GETs against the Web API with bounded, jittered retries.

    `sleep` and `rand` are injectable so tests can observe waits instead of doing them.
    """

    label = "spotify-web-api"

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_url: str = DEFAULT_API_URL,
        accounts_url: str = DEFAULT_ACCOUNTS_URL,
        policy: RetryPolicy = RetryPolicy(),
        pool_size: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        log: Callable[[str], None] | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        for name, url in (("SPOTIFY_API_URL", api_url), ("SPOTIFY_ACCOUNTS_URL", accounts_url)):
            problem = url_problem(url)
            if problem:
                raise SpotifyRequestInvalid(f"{name}={url!r} {problem}")
        self._log = log or _logger.warning
        self.policy = policy
        self._sleep = sleep
        self._rand = rand
        self._lock = threading.Lock()
        self._renew_lock = threading.Lock()
        self._token_generation = 0
        self._counts: dict[str, int] = {"retries": 0, "token_renewals": 0}
        # every worker's API requests pass one gate: a 429 pauses them all (lib/spotify/rate_gate.py)
        self._gate = RateGate(pool_size, sleep=sleep)

        self._session = _DeadlineSession(policy.deadline_s)
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 2), max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # requests re-reads proxy and CA settings from the environment on every request, which
        # costs more CPU than decoding a page. Resolve them once, per host, with the same rules
        # (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE).
        self._session.trust_env = False
        self._session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        api_proxies = requests.utils.get_environ_proxies(api_url) or None
        accounts_proxies = requests.utils.get_environ_proxies(accounts_url) or None

        token_url = accounts_url.rstrip("/") + "/api/token"
        self._refresh_token = credentials.refresh_token
        if credentials.refresh_token:
            self._auth: SpotifyOAuth | SpotifyClientCredentials = SpotifyOAuth(
                client_id=credentials.client_id,
                client_secret=credentials.client_secret,
                redirect_uri=DEFAULT_REDIRECT_URI,
                scope=USER_SCOPES,
                # An expired entry holding only the refresh token: the first call renews it.
                cache_handler=MemoryCacheHandler(
                    token_info={
                        "access_token": "",
                        "refresh_token": credentials.refresh_token,
                        "expires_at": 0,
                        "scope": USER_SCOPES,
                    }
                ),
                open_browser=False,
                proxies=accounts_proxies,
                requests_session=self._session,
                requests_timeout=policy.timeout_s,
            )
        else:
            self._auth = SpotifyClientCredentials(
                client_id=credentials.client_id,
                client_secret=credentials.client_secret,
                cache_handler=MemoryCacheHandler(),
                proxies=accounts_proxies,
                requests_session=self._session,
                requests_timeout=policy.timeout_s,
            )
        self._auth.OAUTH_TOKEN_URL = token_url  # instance attribute: spotipy reads it per call
        self._sp = spotipy.Spotify(
            auth_manager=self._auth,
            requests_session=self._session,  # a Session of ours: spotipy mounts no retry adapter
            proxies=api_proxies,
            requests_timeout=policy.timeout_s,
            retries=0,
            status_retries=0,
        )
        self._sp.prefix = self.api_url + "/"

    @property
    def counts(self) -> dict[str, int]:
        """Retries and token renewals; 429s seen, pauses, milliseconds paused and the lowest
        number of requests the gate let in flight."""
        gate = self._gate.counts
        with self._lock:
            return {
                **self._counts,
                "rate_limited": gate.rate_limited,
                "rate_limit_pauses": gate.pauses,
                "paused_ms": round(gate.paused_s * 1000),
                "lowest_in_flight": gate.lowest_limit,
            }

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def authenticate(self) -> None:
        """Fetch the first token up front, so workers do not race to fetch it."""
        self._call_with_retries(_TOKEN_REQUEST, self._fetch_token, gated=False)

    def _fetch_token(self) -> str:
        if isinstance(self._auth, SpotifyOAuth):
            info = self._auth.validate_token(self._auth.cache_handler.get_cached_token())
            if not info:
                raise SpotifyAuthError("Spotify did not return a token for SPOTIFY_REFRESH_TOKEN")
            return info["access_token"]
        return self._auth.get_access_token(as_dict=False)

    def _renew_token(self, seen_generation: int) -> None:
        """Force a new token, once per generation even when many workers saw the same 401."""
        with self._renew_lock:
            if self._token_generation != seen_generation:
                return  # another worker already renewed it
            if isinstance(self._auth, SpotifyOAuth):
                self._auth.refresh_access_token(self._refresh_token)
            else:
                self._auth.get_access_token(as_dict=False, check_cache=False)
            self._token_generation += 1  # only once the new token is in hand
            self._count("token_renewals")

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET `path` (relative to the API root, or an absolute `next` URL) and return its JSON."""
        params = {k: v for k, v in params.items() if v is not None}
        display = "GET " + _path_of(path if path.startswith("http") else f"{self.api_url}/{path}")

        def call() -> dict[str, Any]:
            result = self._sp._get(path, **params)
            # spotipy turns an undecodable body into None: a truncated or mangled response.
            if not isinstance(result, dict):
                raise _Transient(f"{display} returned a body that is not a JSON object")
            return result

        return self._call_with_retries(display, call)

    def _call_with_retries(self, display: str, call: Callable[[], Any], *, gated: bool = True) -> Any:
        """`gated`: an API request, through the rate gate (the accounts service is limited
        apart, and a token renewal must not wait behind the requests that need it)."""
        policy = self.policy
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            generation = self._token_generation
            ticket = self._enter_gate(display) if gated else None
            try:
                result = call()
            except Exception as err:  # classified below; anything unknown is re-raised there
                if ticket is not None:
                    self._gate.leave(ticket, throttled=_is_rate_limited(err))
                try:
                    outcome = _classify(err, display, policy)
                except RateLimitExceeded as limit:
                    if gated:  # nothing more is sent until the wait it asked for has passed
                        self._gate.close(limit.retry_after_s, limit)
                    raise
            else:
                if ticket is not None:
                    self._gate.leave(ticket, throttled=False)
                return result
            if outcome.renew_token and not renewed:
                renewed = True
                attempt -= 1  # a renewal is not a failed attempt
                self._log(f"{display}: HTTP 401, renewing the access token")
                self._renew_token_retrying(generation)
                continue
            if outcome.renew_token:
                raise SpotifyAuthError(f"HTTP 401 from {display} again after renewing the token")
            if attempt >= policy.max_attempts:
                error = DeadlineExceeded if outcome.deadline else SpotifyUnavailable
                raise error(f"{display}: {outcome.failure}, gave up after {attempt} attempts")
            self._count("retries")
            wait = outcome.retry_after_s
            if wait is not None and gated:
                # Every worker waits it out, this one too (in the gate, before its next try).
                self._log(f"{display}: {outcome.failure}; every request waits {wait:.1f} s, then retry {attempt}/{policy.max_attempts - 1}")
                self._gate.pause(wait)
                continue
            if wait is None:
                wait = policy.backoff(attempt, self._rand)
            self._log(f"{display}: {outcome.failure}; retry {attempt}/{policy.max_attempts - 1} in {wait:.1f} s")
            self._sleep(wait)

    def _enter_gate(self, display: str):  # type: ignore[no-untyped-def]
        try:
            return self._gate.enter()
        except GateClosed as closed:
            raise RateLimitNotSent(display, closed.cause, closed.remaining_s) from None  # type: ignore[arg-type]

    def _renew_token_retrying(self, generation: int) -> None:
        self._call_with_retries(_TOKEN_REQUEST, lambda: self._renew_token(generation), gated=False)

    def close(self) -> None:
        self._session.close()


class _Transient(Exception):
    pass


@dataclass(frozen=True)
class _Outcome:
    """What to do about a failed call that is worth another try."""

    failure: str
    retry_after_s: float | None = None  # None: exponential backoff
    renew_token: bool = False
    deadline: bool = False  # the request ran past SPOTIFY_REQUEST_DEADLINE_SECONDS


def _is_rate_limited(err: Exception) -> bool:
    return isinstance(err, spotipy.SpotifyException) and err.http_status == 429


def _classify(err: Exception, display: str, policy: RetryPolicy) -> _Outcome:
    """Turn an exception into a retry decision, or raise the error the caller should see."""
    if isinstance(err, spotipy.SpotifyException):
        status = err.http_status
        if status == 429:
            wait = _retry_after_seconds(err.headers)
            if wait > policy.max_retry_after_s:
                raise RateLimitExceeded(display, wait, policy.max_retry_after_s, err.reason) from None
            return _Outcome("rate limited (HTTP 429)", retry_after_s=wait)
        if status == 401:
            return _Outcome("HTTP 401", renew_token=True)
        if status == 408 or status >= 500:
            return _Outcome(f"HTTP {status}")
        raise SpotifyHttpError(status, display, _error_message(err), err.reason) from None
    if isinstance(err, SpotifyOauthError):
        status = _oauth_status(err)
        if status is not None and (status == 429 or status >= 500):
            return _Outcome(f"HTTP {status} from the token endpoint")
        # Only the error code: a description can echo what was sent.
        raise SpotifyAuthError(
            f"Spotify's accounts service refused the credentials ({err.error or 'no reason given'}); "
            "check SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET and SPOTIFY_REFRESH_TOKEN"
        ) from None
    if isinstance(err, (_InvalidRequest, *_INVALID_REQUEST)):
        # A malformed URL or a port out of range fails the same way every time.
        raise SpotifyRequestInvalid(f"{display}: the request cannot be sent ({err}); check SPOTIFY_API_URL and SPOTIFY_ACCOUNTS_URL") from None
    if isinstance(err, (requests.RequestException, _Transient)):
        return _Outcome(_describe_transport_error(err), deadline=isinstance(err, _DeadlineHit))
    raise err


def _error_message(err: spotipy.SpotifyException) -> str:
    # spotipy prefixes the message with the full URL and a newline; keep only the message.
    msg = str(err.msg or "")
    return msg.split("\n", 1)[-1].strip() or f"HTTP {err.http_status}"


def _oauth_status(err: SpotifyOauthError) -> int | None:
    # spotipy raises SpotifyOauthError from inside `except HTTPError`, so the HTTP error (and
    # its status) is the exception's context.
    context = err.__context__
    response = getattr(context, "response", None)
    return getattr(response, "status_code", None)


_INVALID_REQUEST = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    urllib3.exceptions.LocationParseError,
)


def _describe_transport_error(err: BaseException) -> str:
    if isinstance(err, _DeadlineHit):
        return str(err)
    if isinstance(err, requests.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "the response body was cut off"
    if isinstance(err, requests.ConnectionError):
        return "the connection failed or was reset"
    return str(err)


# --- playlist references --------------------------------------------------------------------

_ID = r"[0-9A-Za-z]{22}"
_REF_PATTERNS = (
    re.compile(rf"^(?P<id>{_ID})$"),
    re.compile(rf"^spotify:(?:user:[^:]+:)?playlist:(?P<id>{_ID})$"),
    re.compile(
        rf"^(?:https?://)?open\.spotify\.com/(?:intl-[a-z-]+/)?(?:user/[^/]+/)?playlist/(?P<id>{_ID})/?(?:[?#].*)?$"
    ),
)


def parse_playlist_ref(value: str) -> str:
    """A playlist id from an id, a `spotify:playlist:` URI or an open.spotify.com URL."""
    text = value.strip()
    for pattern in _REF_PATTERNS:
        match = pattern.match(text)
        if match:
            return match.group("id")
    raise ValueError(
        f"{value!r} is not a Spotify playlist id (22 letters and digits), a spotify:playlist: URI "
        "or an https://open.spotify.com/playlist/ URL"
    )


def parse_playlist_refs(value: str) -> list[str]:
    """Comma-separated playlist references to ids, in order, without repeats."""
    ids: list[str] = []
    for part in value.split(","):
        if part.strip():
            playlist_id = parse_playlist_ref(part)
            if playlist_id not in ids:
                ids.append(playlist_id)
    return ids
