"""Case 7 of the fault list, the Spotify client side: every wait and every queue is bounded.

Before: a server trickling one byte every 2 s held a run forever (the timeout bounds each read,
not the request); a playlist reporting a total of 100,000,000 rows made the extractor queue a
future per page up front (4.6 GB before failing); absurd retry settings were accepted; an API
URL with port 99999 was retried five times as if the failure were transient.
Each test runs against the project's emulator on 127.0.0.1 and counts the rows that arrive.
"""

from __future__ import annotations

import time
import tracemalloc

import dagster as dg
import pytest

from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.spotify.extract import MAX_PLAYLIST_ROWS, PlaylistExtractor
from spotify_assets.lib.settings import Settings, SettingsError
from spotify_assets.lib.raw.store import LocalBackend, SnapshotStore
from spotify_assets.lib.spotify.client import (
    Credentials,
    DeadlineExceeded,
    RetryPolicy,
    SpotifyApi,
    SpotifyRequestInvalid,
)
from spotify_assets_tests.support.windows import windowed, windows
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist

HUGE = 100_000_000


def _api(emu: SpotifyEmulator, policy: RetryPolicy, sleeps: list[float] | None = None) -> SpotifyApi:
    return SpotifyApi(
        Credentials(emu.client_id, emu.client_secret),
        api_url=emu.api_url,
        accounts_url=emu.accounts_url,
        policy=policy,
        pool_size=4,
        sleep=(sleeps.append if sleeps is not None else time.sleep),
        rand=lambda: 0.5,
    )


def _add(emu: SpotifyEmulator, label: str, n: int) -> tuple[str, int]:
    meta, rows = playlist(label, n)
    emu.add_playlist(meta, rows)
    return meta["id"], len(rows)


# --- a server that trickles -----------------------------------------------------------------


@pytest.mark.slow
def test_a_trickling_server_ends_each_request_at_its_deadline(emulator: SpotifyEmulator) -> None:
    drip, _ = _add(emulator, "drip", 30)
    good, good_rows = _add(emulator, "steady", 120)
    # One byte every 2 s: each read finishes well inside the 10 s timeout, the body never does.
    emulator.inject("drip", path=rf"^/v1/playlists/{drip}", times=None, seconds=2)
    api = _api(emulator, RetryPolicy(max_attempts=2, timeout_s=10, deadline_s=3), sleeps=[])
    api.authenticate()
    started = time.monotonic()
    snaps = {s.playlist_id: s for s in PlaylistExtractor(api, concurrency=4).extract([drip, good])}
    elapsed = time.monotonic() - started
    api.close()

    error = snaps[drip].extraction["error"]
    assert error["kind"] == "unavailable"
    assert "deadline" in error["message"] and "SPOTIFY_REQUEST_DEADLINE_SECONDS" in error["message"]
    assert f"/v1/playlists/{drip}" in error["message"]  # names the URL
    assert emulator.count(rf"^/v1/playlists/{drip}$") == 2  # the bounded attempts, no more
    assert snaps[good].ok and len(snaps[good].items) == good_rows  # nothing lost elsewhere
    assert elapsed < 20, elapsed  # 2 attempts x 3 s deadline; before: never ended


@pytest.mark.slow
def test_deadline_exceeded_is_raised_naming_the_url(emulator: SpotifyEmulator) -> None:
    drip, _ = _add(emulator, "drip-direct", 10)
    emulator.inject("drip", path=rf"^/v1/playlists/{drip}$", times=None, seconds=2)
    api = _api(emulator, RetryPolicy(max_attempts=1, timeout_s=10, deadline_s=2))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=rf"/v1/playlists/{drip}.*2 s deadline"):
        api.get(f"playlists/{drip}")
    assert time.monotonic() - started < 10
    api.close()


@pytest.mark.slow
def test_a_run_against_a_trickling_server_ends_bounded_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator
) -> None:
    drip, _ = _add(emulator, "drip-run", 40)
    good, good_rows = _add(emulator, "steady-run", 75)
    emulator.inject("drip", path=rf"^/v1/playlists/{drip}", times=None, seconds=2)
    for name, value in {
        "SPOTIFY_CLIENT_ID": emulator.client_id,
        "SPOTIFY_CLIENT_SECRET": emulator.client_secret,
        "SPOTIFY_API_URL": emulator.api_url,
        "SPOTIFY_ACCOUNTS_URL": emulator.accounts_url,
        "SPOTIFY_PLAYLISTS": f"{drip},{good}",
        "SPOTIFY_MAX_ATTEMPTS": "2",
        "SPOTIFY_REQUEST_DEADLINE_SECONDS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    window = windows().get_partition_keys()[-1]
    started = time.monotonic()
    result = dg.materialize(
        [windowed().raw], resources=build_resources(load_settings()), partition_key=window
    )
    elapsed = time.monotonic() - started
    assert result.success
    docs = {d["playlist_id"]: d for d in SnapshotStore(LocalBackend(load_settings().data_dir)).read_window(window)}
    assert docs[good]["status"] == "ok" and len(docs[good]["items"]) == good_rows
    assert docs[drip]["status"] == "failed" and docs[drip]["items"] == []
    assert "SPOTIFY_REQUEST_DEADLINE_SECONDS" in docs[drip]["extraction"]["error"]["message"]
    assert elapsed < 90, elapsed  # before: the run never ended


# --- a playlist claiming 100,000,000 rows -----------------------------------------------------


def test_a_huge_total_is_too_large_without_queuing_its_pages(emulator: SpotifyEmulator) -> None:
    huge, _ = _add(emulator, "claims-huge", 60)
    others = [_add(emulator, f"normal-{i}", 130) for i in range(3)]
    emulator.inject("total", path=rf"^/v1/playlists/{huge}", times=None, total=HUGE)
    api = _api(emulator, RetryPolicy(max_attempts=2, timeout_s=5), sleeps=[])
    api.authenticate()
    ids = [huge] + [pid for pid, _ in others]
    tracemalloc.start()
    started = time.monotonic()
    try:
        snaps = {s.playlist_id: s for s in PlaylistExtractor(api, concurrency=8).extract(ids)}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    api.close()

    error = snaps[huge].extraction["error"]
    assert error["kind"] == "too_large"
    assert huge in error["message"] and "100,000,000" in error["message"] and f"{MAX_PLAYLIST_ROWS:,}" in error["message"]
    assert snaps[huge].items == []
    assert emulator.count(rf"^/v1/playlists/{huge}/") == 0  # not one page requested
    for pid, n in others:  # the other playlists load whole
        assert snaps[pid].ok and len(snaps[pid].items) == n
    assert sum(len(snaps[pid].items) for pid, _ in others) == 390
    assert peak < 50 * 2**20, peak  # before: 4.6 GB of queued futures
    assert elapsed < 30, elapsed


class _Pages:
    """A source serving a playlist of `total` rows, recording how many requests wait at once."""

    label = "pages"
    api_url = "memory://"

    def __init__(self, total: int) -> None:
        import threading

        self.total = total
        self.lock = threading.Lock()
        self.requests = 0

    def get(self, path: str, **params):  # type: ignore[no-untyped-def]
        with self.lock:
            self.requests += 1
        if path.count("/") == 1:
            return {"id": path.split("/")[1], "name": "big", "items": {"total": self.total, "offset": 0, "items": []}}
        offset, limit = params["offset"], params["limit"]
        n = max(0, min(limit, self.total - offset))
        return {"offset": offset, "items": [{"item": {"id": f"t{offset + i}"}} for i in range(n)]}

    @property
    def counts(self) -> dict[str, int]:
        return {"retries": 0, "token_renewals": 0}

    def close(self) -> None:
        pass


def test_pages_are_queued_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most 2 x concurrency requests wait in the pool, however many pages a playlist has."""
    from concurrent.futures import ThreadPoolExecutor

    most = 0
    real_submit = ThreadPoolExecutor.submit

    def submit(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal most
        future = real_submit(self, fn, *args, **kwargs)
        most = max(most, self._work_queue.qsize() + len(self._threads))
        return future

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    source = _Pages(MAX_PLAYLIST_ROWS)
    [snap] = PlaylistExtractor(source, concurrency=4, page_size=50).extract(["p" * 22])  # type: ignore[arg-type]
    assert snap.ok and len(snap.items) == MAX_PLAYLIST_ROWS  # the largest playlist allowed reads whole
    assert source.requests == 1 + MAX_PLAYLIST_ROWS // 50
    assert most <= 2 * 4 + 4, most  # queued + workers; before: 2,000 futures at once


# --- settings and URLs that can never work ------------------------------------------------------


def test_out_of_range_client_settings_are_refused_at_load_each_named() -> None:
    bad = {
        "SPOTIFY_MAX_RETRY_AFTER_SECONDS": "1e12",
        "SPOTIFY_MAX_ATTEMPTS": "100000000",
        "SPOTIFY_REQUEST_TIMEOUT_SECONDS": "100000000",
        "SPOTIFY_REQUEST_DEADLINE_SECONDS": "100000",
        "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS": "1e9",
        "SPOTIFY_API_URL": "http://127.0.0.1:99999/v1",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(bad)
    problems = caught.value.problems
    assert len(problems) == len(bad)  # all at once
    for name in bad:
        assert sum(p.startswith(name + "=") for p in problems) == 1, name


def test_a_port_out_of_range_is_refused_at_once_not_retried(emulator: SpotifyEmulator) -> None:
    with pytest.raises(SpotifyRequestInvalid, match="SPOTIFY_API_URL"):
        SpotifyApi(Credentials("id", "secret"), api_url="http://127.0.0.1:99999/v1", accounts_url=emulator.accounts_url)
    # At run time (e.g. a `next` URL): one attempt, no backoff.
    sleeps: list[float] = []
    api = _api(emulator, RetryPolicy(max_attempts=5), sleeps=sleeps)
    api.authenticate()
    started = time.monotonic()
    with pytest.raises(SpotifyRequestInvalid, match="99999"):
        api.get("http://127.0.0.1:99999/v1/playlists/x")
    assert sleeps == [] and api.counts["retries"] == 0  # before: retried 5 times
    assert time.monotonic() - started < 5
    api.close()


def test_setting_bounds_reach_the_client() -> None:
    settings = Settings.from_env({"SPOTIFY_REQUEST_DEADLINE_SECONDS": "7", "SPOTIFY_MAX_ATTEMPTS": "3"})
    resource = build_resources(settings)["spotify"]
    assert (resource.settings.retry.deadline_s, resource.settings.retry.max_attempts) == (7, 3)
