"""The real spotipy client, through our retry layer and extractor, against the HTTP emulator."""

from __future__ import annotations

import json
import re
import time
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from spotify_assets.lib.spotify.extract import PlaylistExtractor, PlaylistSnapshot
from spotify_assets.lib.samples.catalogue import sample_playlists
from spotify_assets.lib.spotify.client import (
    Credentials,
    RetryPolicy,
    SpotifyApi,
    SpotifyAuthError,
    SpotifyUnavailable,
)
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist, spotify_id

POLICY = RetryPolicy(max_attempts=5, max_retry_after_s=60, backoff_base_s=0.2, backoff_max_s=5, timeout_s=2)
WINDOW = datetime(2026, 11, 21, 8, tzinfo=timezone.utc)


class Sleeps(list):
    """Records the waits the client asks for instead of sleeping through them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_api(emu: SpotifyEmulator, sleeps: Sleeps, *, refresh: bool = False, policy: RetryPolicy = POLICY, **creds: str) -> SpotifyApi:
    credentials = Credentials(
        creds.get("client_id", emu.client_id),
        creds.get("client_secret", emu.client_secret),
        creds.get("refresh_token", emu.refresh_token) if refresh else None,
    )
    return SpotifyApi(
        credentials,
        api_url=emu.api_url,
        accounts_url=emu.accounts_url,
        policy=policy,
        pool_size=4,
        sleep=sleeps,
        rand=lambda: 0.5,
    )


def extract(emu: SpotifyEmulator, sleeps: Sleeps, ids: list[str], *, concurrency: int = 4, **kwargs) -> dict[str, PlaylistSnapshot]:
    api = make_api(emu, sleeps, **kwargs)
    api.authenticate()
    snaps = PlaylistExtractor(api, concurrency=concurrency).extract(ids)
    return {s.playlist_id: s for s in snaps}


def add(emu: SpotifyEmulator, label: str, n: int, **kwargs) -> tuple[str, list[dict]]:
    meta, rows = playlist(label, n)
    emu.add_playlist(meta, rows, **kwargs)
    return meta["id"], rows


def ids_of(snap: PlaylistSnapshot) -> list[str]:
    return [(r.get("item") or r.get("track"))["id"] for r in snap.items]


def test_reads_every_page_in_order_with_the_minimum_of_requests(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, rows = add(emulator, "long", 180)
    snap = extract(emulator, sleeps, [pid])[pid]
    assert snap.ok
    assert ids_of(snap) == [r["item"]["id"] for r in rows]
    assert snap.extraction["total"] == snap.extraction["rows_read"] == 180
    assert snap.extraction["container"] == "items" and snap.extraction["payload_key"] == {"item": 180}
    # One playlist request carrying the first 50 rows, then offsets 50, 100, 150.
    assert emulator.count(rf"^/v1/playlists/{pid}$") == 1
    assert sorted(int(r.query["offset"]) for r in emulator.requests if r.path.endswith("/items")) == [50, 100, 150]
    assert all(r.query["limit"] == "50" for r in emulator.requests if r.path.endswith("/items"))
    assert emulator.count("/api/token") == 1
    assert sleeps == []


def test_2025_server_without_items_endpoint_falls_back_to_tracks() -> None:
    with SpotifyEmulator(shape="2025") as emu:
        pid, rows = add(emu, "old-shape", 260)
        sleeps = Sleeps()
        snap = extract(emu, sleeps, [pid], concurrency=1)[pid]
        assert snap.ok and len(snap.items) == 260
        assert ids_of(snap) == [r["item"]["id"] for r in rows]
        assert snap.extraction["container"] == "tracks" and snap.extraction["payload_key"] == {"track": 260}
        # The 100 embedded rows, then one 404 from /items, then /tracks for every page.
        assert emu.count(r"/items$") == 1
        assert sorted(int(r.query["offset"]) for r in emu.requests if r.path.endswith("/tracks")) == [100, 150, 200, 250]
        assert "/playlists/{id}/tracks" in snap.extraction["endpoints"]


def test_fields_filter_asks_only_for_what_the_tables_need(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "fields", 60)
    snap = extract(emulator, sleeps, [pid])[pid]
    assert all("fields" in r.query for r in emulator.requests if r.path.startswith("/v1/"))
    item = snap.items[55]["item"]
    assert "available_markets" not in item and "preview_url" not in item and "images" not in item["album"]
    assert item["album"]["release_date_precision"] == "year"
    assert [a["id"] for a in item["artists"]] and item["external_ids"]["isrc"]
    assert "images" not in (snap.playlist or {}) and snap.playlist["owner"]["id"] == "curator"


def test_development_mode_rows_without_popularity_are_read(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "devmode", 30)  # stored with popularity; the 2026 emulator strips it
    snap = extract(emulator, sleeps, [pid])[pid]
    assert snap.ok and len(snap.items) == 30
    assert all("popularity" not in r["item"] for r in snap.items)
    assert snap.extraction["popularity_present"] is False


def test_extended_quota_rows_keep_popularity() -> None:
    with SpotifyEmulator(dev_mode_fields=False) as emu:
        pid, _ = add(emu, "quota", 30)
        snap = extract(emu, Sleeps(), [pid])[pid]
        assert [r["item"]["popularity"] for r in snap.items] == list(range(30))
        assert snap.extraction["popularity_present"] is True


def test_edge_rows_are_kept_as_returned_and_counted(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    sample = sample_playlists(WINDOW)
    for p in sample:
        emulator.add_playlist(p.meta, p.rows)
    snaps = extract(emulator, sleeps, [p.meta["id"] for p in sample])
    totals = {"episode": 0, "local": 0, "unavailable": 0}
    for p in sample:
        snap = snaps[p.meta["id"]]
        assert snap.ok and len(snap.items) == len(p.rows)
        for kind in totals:
            totals[kind] += snap.extraction["rows"][kind]
        for skipped in snap.extraction["skipped"]:
            for position in skipped["positions"]:
                payload = snap.items[position].get("item")
                assert skipped["reason"] != "unavailable" or payload is None
    assert all(n >= 1 for n in totals.values()), totals


def test_429_within_the_bound_is_waited_out(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "limited", 120)
    emulator.inject("rate_limit", path=r"/items$", query={"offset": "50"}, times=2, retry_after=3)
    api = make_api(emulator, sleeps)
    api.authenticate()
    snap = PlaylistExtractor(api, concurrency=4).extract([pid])[0]
    assert snap.ok and len(snap.items) == 120
    # the limited request waited each Retry-After out; a worker that came to the gate during a
    # pause waited what was left of it
    assert sorted(sleeps)[-2:] == pytest.approx([3.0, 3.0], abs=0.5) and max(sleeps) <= 3.0
    counts = api.counts
    assert counts["rate_limited"] == 2 and counts["rate_limit_pauses"] == 2 and counts["retries"] == 2
    assert counts["lowest_in_flight"] == 1  # halved twice from 4


def test_429_beyond_the_bound_stops_every_request_until_it_lifts(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    """A 429 asking for more than SPOTIFY_MAX_RETRY_AFTER_SECONDS fails its playlist, and no
    request is sent after it (each would earn a 429 of its own, and a longer wait): the others
    fail at once, unsent, naming the 429. Their previous snapshots are kept by the raw asset."""
    limited, _ = add(emulator, "quota-hit", 120)
    fine, _ = add(emulator, "fine", 120)
    emulator.inject("rate_limit", path=rf"/playlists/{limited}/items$", times=None, retry_after=7200, quota=True)
    snaps = extract(emulator, sleeps, [limited, fine], concurrency=1)  # one worker: a fixed order
    error = snaps[limited].extraction["error"]
    assert not snaps[limited].ok and error["kind"] == "rate_limited" and error["retry_after_s"] == 7200
    assert "7200" in error["message"] and "SPOTIFY_MAX_RETRY_AFTER_SECONDS" in error["message"]
    assert snaps[limited].items == []  # nothing half-read is kept
    unsent = snaps[fine].extraction["error"]
    assert not snaps[fine].ok and snaps[fine].items == [] and unsent["kind"] == "rate_limited"
    assert "not sent" in unsent["message"] and limited in unsent["message"] and "QUOTA_EXCEEDED" in unsent["message"]
    assert 7100 < unsent["retry_after_s"] <= 7200
    # both playlists' metadata, then the one page that got the 429, and nothing after it
    assert emulator.count(r"^/v1/playlists/") == 3 and emulator.count(r"/items$") == 1
    assert sleeps == []


@pytest.mark.slow
def test_a_429_pauses_every_worker_until_its_retry_after_has_passed() -> None:
    with SpotifyEmulator(latency_s=0.02) as emu:
        ids = [add(emu, f"busy-{i}", 1000)[0] for i in range(4)]
        emu.inject("rate_limit", path=rf"/playlists/{ids[0]}/items$", query={"offset": "50"}, times=1, retry_after=1)
        api = make_api(emu, time.sleep)  # type: ignore[arg-type]
        api.authenticate()
        snaps = PlaylistExtractor(api, concurrency=4).extract(ids)
        assert all(s.ok and len(s.items) == 1000 for s in snaps)
        api_requests = [r for r in emu.requests if r.path.startswith("/v1/")]
        limited = next(r for r in api_requests if r.status == 429)
        # Requests already past the gate when the 429 came back may still arrive for a moment;
        # after that, nothing until the Retry-After second has passed.
        started = [r.monotonic_start - limited.monotonic_end for r in api_requests]
        assert [t for t in started if 0.3 < t < 0.95] == []
        assert sum(1 for t in started if t >= 0.95) > 10  # and then the work went on
        assert api.counts["rate_limited"] == 1 and 900 <= api.counts["paused_ms"] <= 1100


def test_server_errors_back_off_exponentially_with_jitter(emulator: SpotifyEmulator) -> None:
    pid, _ = add(emulator, "flaky", 80)
    emulator.inject("status", path=r"/items$", times=3, status=503)
    waits: Sleeps = Sleeps()
    api = make_api(emulator, waits)
    api._rand = iter([0.0, 1.0, 0.25]).__next__  # the jittered half spans its whole range
    snap = PlaylistExtractor(api).extract([pid])[0]
    assert snap.ok and len(snap.items) == 80
    # Ceilings 0.2, 0.4, 0.8: half fixed, half random.
    assert waits == pytest.approx([0.1, 0.4, 0.5])


def test_server_errors_outlasting_the_budget_fail_that_playlist(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    broken, _ = add(emulator, "broken", 80)
    fine, _ = add(emulator, "fine2", 10)
    emulator.inject("status", path=rf"/playlists/{broken}/items$", times=None, status=500)
    snaps = extract(emulator, sleeps, [broken, fine])
    error = snaps[broken].extraction["error"]
    assert error["kind"] == "unavailable" and "HTTP 500" in error["message"] and "5 attempts" in error["message"]
    assert snaps[fine].ok
    assert len(sleeps) == 4


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "params"),
    [("truncate", {}), ("malformed", {}), ("reset", {}), ("slow", {"seconds": 3.0}), ("status", {"status": 502})],
)
def test_transport_faults_are_retried(emulator: SpotifyEmulator, sleeps: Sleeps, kind: str, params: dict) -> None:
    pid, rows = add(emulator, f"fault-{kind}", 120)
    emulator.inject(kind, path=r"/items$", query={"offset": "100"}, times=1, **params)
    api_policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, timeout_s=1.0)
    snap = extract(emulator, sleeps, [pid], policy=api_policy)[pid]
    assert snap.ok and ids_of(snap) == [r["item"]["id"] for r in rows]
    assert len(sleeps) == 1  # exactly one retry, after one backoff


def test_fault_on_the_token_endpoint_is_retried(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "token-flaky", 10)
    emulator.inject("status", path=r"^/api/token$", times=1, status=503)
    assert extract(emulator, sleeps, [pid])[pid].ok
    assert emulator.count(r"^/api/token$") == 2 and len(sleeps) == 1


def test_401_mid_run_renews_the_token_once_and_goes_on(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "expiring", 200)
    emulator.inject("unauthorized", path=r"/items$", query={"offset": "100"}, times=1)
    api = make_api(emulator, sleeps)
    api.authenticate()
    snap = PlaylistExtractor(api, concurrency=1).extract([pid])[0]
    assert snap.ok and len(snap.items) == 200
    assert emulator.count(r"^/api/token$") == 2 and api.counts["token_renewals"] == 1
    assert sleeps == []


def test_401_that_persists_after_renewal_stops_the_run(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "revoked", 120)
    emulator.inject("unauthorized", path=r"/items$", times=None)
    with pytest.raises(SpotifyAuthError, match="401"):
        extract(emulator, sleeps, [pid])


def test_user_refresh_token_auth(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    pid, _ = add(emulator, "mine", 70)
    snap = extract(emulator, sleeps, [pid], refresh=True)[pid]
    assert snap.ok and len(snap.items) == 70
    token_calls = [r for r in emulator.requests if r.path == "/api/token"]
    assert len(token_calls) == 1 and token_calls[0].authorization_kind == "Basic"


@pytest.mark.parametrize(
    ("creds", "refresh"),
    [({"client_secret": "wrong-secret-value"}, False), ({"refresh_token": "stale-refresh-value"}, True)],
)
def test_rejected_credentials_stop_with_a_clear_error_and_no_secret(
    emulator: SpotifyEmulator, sleeps: Sleeps, creds: dict, refresh: bool
) -> None:
    api = make_api(emulator, sleeps, refresh=refresh, **creds)
    with pytest.raises(SpotifyAuthError) as info:
        api.authenticate()
    message = str(info.value)
    assert "SPOTIFY_CLIENT_SECRET" in message and "SPOTIFY_REFRESH_TOKEN" in message
    assert list(creds.values())[0] not in message
    assert sleeps == []  # not worth retrying


def test_forbidden_and_missing_playlists_are_recorded_and_the_rest_go_on(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    mine, _ = add(emulator, "owned", 60)
    theirs, _ = add(emulator, "not-owned", 60, contents_forbidden=True)
    deleted = spotify_id("playlist:deleted")
    editorial = "37i9dQZF1DXcBWIGoYBM5M"
    snaps = extract(emulator, sleeps, [mine, theirs, deleted, editorial])
    assert snaps[mine].ok and len(snaps[mine].items) == 60
    forbidden = snaps[theirs].extraction["error"]
    assert forbidden["kind"] == "forbidden" and "Development Mode" in forbidden["message"]
    assert snaps[theirs].playlist["name"] == "Fixture not-owned"  # metadata is still recorded
    assert snaps[deleted].extraction["error"]["kind"] == "not_found"
    assert "editorial" in snaps[editorial].extraction["error"]["message"]
    assert sleeps == []


def test_secrets_never_reach_logs_documents_or_disk(
    emulator: SpotifyEmulator, sleeps: Sleeps, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    pid, _ = add(emulator, "secretive", 120)
    emulator.inject("unauthorized", path=r"/items$", times=1)  # forces a renewal, more token traffic
    emulator.inject("status", path=r"/items$", times=1, status=500)  # and an error path
    api = make_api(emulator, sleeps, refresh=True)
    api.authenticate()
    snap = PlaylistExtractor(api).extract([pid])[0]
    access_token = api._auth.cache_handler.get_cached_token()["access_token"]
    document = json.dumps(snap.to_document({"partition_key": "x"}))
    for secret in (emulator.client_secret, emulator.refresh_token, access_token):
        assert secret and secret not in caplog.text and secret not in document
    assert list(tmp_path.iterdir()) == []  # no spotipy .cache file


@pytest.mark.slow
def test_a_slow_playlist_does_not_hold_up_the_others(emulator: SpotifyEmulator, sleeps: Sleeps) -> None:
    slow, _ = add(emulator, "slow-meta", 10)
    fast, _ = add(emulator, "fast", 200)
    emulator.inject("slow", path=rf"^/v1/playlists/{slow}$", times=1, seconds=2.0)
    progress: list[str] = []
    api = make_api(emulator, sleeps)
    snaps = PlaylistExtractor(api, concurrency=2, log=progress.append).extract([slow, fast])
    assert all(s.ok for s in snaps)
    slow_meta_end = next(r.monotonic_end for r in emulator.requests if r.path == f"/v1/playlists/{slow}")
    fast_pages = [r.monotonic_start for r in emulator.requests if r.path == f"/v1/playlists/{fast}/items"]
    assert len(fast_pages) == 3 and max(fast_pages) < slow_meta_end
    assert [line.split()[0] for line in progress] == ["[1/2]", "[2/2]"]
    assert f"playlist {fast}" in progress[0]  # finished first, logged first


def test_requests_overlap_but_never_exceed_the_bound() -> None:
    with SpotifyEmulator(latency_s=0.05) as emu:
        ids = [add(emu, f"busy-{i}", 200)[0] for i in range(4)]
        snaps = extract(emu, Sleeps(), ids, concurrency=3)
        assert all(s.ok and len(s.items) == 200 for s in snaps.values())
        spans = [(r.monotonic_start, r.monotonic_end) for r in emu.requests if r.path.startswith("/v1/")]
        assert len(spans) == 4 * 4
        peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
        assert 2 <= peak <= 3


class IgnoresOffset:
    """A source whose pages always start at 0: rows must not be duplicated silently."""

    label = "broken"
    api_url = "broken://"
    counts: dict = {}

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def get(self, path: str, **params) -> dict:
        page = {"items": self.rows[:50], "offset": 0, "limit": 50, "total": len(self.rows)}
        return {"id": "x", "name": "broken", "items": page} if path.count("/") == 1 else page

    def close(self) -> None:
        pass


def test_a_server_that_ignores_offset_is_caught_not_duplicated() -> None:
    _, rows = playlist("ignored-offset", 120)
    snap = PlaylistExtractor(IgnoresOffset(rows)).extract(["x" * 22])[0]
    assert not snap.ok and snap.items == []
    # pages are asked for concurrently, so whichever wrong page is seen first is named
    assert snap.extraction["error"]["kind"] == "malformed"
    assert re.search(r"asked for offset (50|100), the API answered with offset 0", snap.extraction["error"]["message"])


def test_proxy_settings_from_the_environment_are_honoured(
    emulator: SpotifyEmulator, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxies are resolved once per client, with requests' own rules: HTTP_PROXY and NO_PROXY."""
    pid, _ = add(emulator, "proxied", 10)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: a used proxy fails
    with pytest.raises(SpotifyUnavailable, match="POST /api/token: the connection failed"):
        make_api(emulator, sleeps, policy=RetryPolicy(max_attempts=2, backoff_base_s=0.01)).authenticate()
    assert emulator.count() == 0  # nothing reached the server directly
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert extract(emulator, Sleeps(), [pid])[pid].ok


def test_deadline_session_decodes_gzip_bodies_and_reuses_connections() -> None:
    """Spotify sends gzip: the body read piece by piece under the deadline must still decode."""
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from spotify_assets.lib.spotify.client import _DeadlineSession

    body = gzip.compress(json.dumps({"items": list(range(50_000))}).encode())
    connections: set[int] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            connections.add(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with _DeadlineSession(5) as session:
            for _ in range(3):
                response = session.get(f"http://127.0.0.1:{server.server_port}/x", timeout=2)
                assert response.json()["items"][-1] == 49_999
        assert len(connections) == 1  # the connection went back to the pool each time
    finally:
        server.shutdown()
        server.server_close()
