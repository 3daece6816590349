"""Case 1 of the fault list: a re-run must never make a captured window worse.

Before, a playlist that failed on a re-run of a window (403, 404, a Retry-After beyond the
bound) had its good document replaced by an empty failed one, the old version deleted, and
its rows left the tables (119 -> 0), the run exiting 0; removing a playlist from
SPOTIFY_PLAYLISTS and re-running dropped its rows the same way. Now the previous document is
kept (marked `kept`, the new error recorded), the rows stay, and the run says so: an error in
the log, `playlists_kept` in the metadata, and a failed raw check.
"""

from __future__ import annotations

import pytest

from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.faults.raw_support import (
    api_env,
    current_window,
    raw_metadata,
    rows_by_playlist,
    run,
    store,
)
from spotify_assets_tests.support.fixtures import playlist

FAULTS = {
    "forbidden": {"kind": "status", "status": 403},
    "not_found": {"kind": "status", "status": 404},
    "long_retry_after": {"kind": "rate_limit", "retry_after": 86400},
}


def _setup(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> tuple[str, str, str]:
    a, a_rows = playlist("kept-a", 119)
    b, b_rows = playlist("kept-b", 44)
    c, c_rows = playlist("kept-c", 7)
    for meta, rows in ((a, a_rows), (b, b_rows), (c, c_rows)):
        emulator.add_playlist(meta, rows)
    api_env(monkeypatch, emulator, [a["id"], b["id"], c["id"]])
    return a["id"], b["id"], c["id"]


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_playlist_failing_on_a_rerun_keeps_its_rows(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator, fault: str
) -> None:
    a, b, c = _setup(monkeypatch, emulator)
    window = current_window()
    run(window)
    before = rows_by_playlist()
    assert before == {a: 119, b: 44, c: 7}

    spec = dict(FAULTS[fault])
    # A 429 beyond the bound closes the rate gate for every request not yet sent (tested in
    # lib/spotify/test_client.py): on A's pages, after every playlist's metadata, it fails A only.
    path = rf"/playlists/{a}/items" if fault == "long_retry_after" else rf"/playlists/{a}"
    emulator.inject(spec.pop("kind"), path=path, times=None, **spec)
    result = run(window, checks=True)

    assert rows_by_playlist() == before  # nothing lost, nothing doubled
    manifest = store().read_manifest(window)
    entry = manifest.documents[a]
    assert entry["status"] == "ok" and entry["rows_read"] == 119
    assert entry["kept"]["reason"] == "failed on this run" and entry["kept"]["error"]["kind"]
    assert store().backend.get(entry["key"]) is not None  # the kept document survived collection
    meta = raw_metadata(result)
    assert meta["playlists_kept"] == 1 and a in meta["kept"]
    assert meta["playlists_failed"] == 1  # failures still surface as before
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "playlists_readable"]
    assert not check.passed and "keep the window's previous document" in check.description

    # The next good run replaces the kept document with a fresh one.
    emulator.clear_faults()
    run(window)
    assert rows_by_playlist() == before
    assert "kept" not in store().read_manifest(window).documents[a]


def test_a_playlist_no_longer_configured_keeps_its_window(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    a, b, c = _setup(monkeypatch, emulator)
    window = current_window()
    run(window)
    before = rows_by_playlist()
    assert sum(before.values()) == 170

    api_env(monkeypatch, emulator, [b, c])  # a removed from SPOTIFY_PLAYLISTS
    result = run(window)

    assert rows_by_playlist() == before
    entry = store().read_manifest(window).documents[a]
    assert entry["kept"]["reason"] == "no longer configured"
    assert raw_metadata(result)["playlists_kept"] == 1


def test_a_previous_document_that_is_itself_unusable_is_carried_as_found(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator
) -> None:
    a, b, c = _setup(monkeypatch, emulator)
    window = current_window()
    run(window, tables=False)
    s = store()
    key = s.read_manifest(window).documents[a]["key"]
    s.backend.put(key, b'{"playlist_id": "swapped"}')  # changed behind the manifest's back
    emulator.inject("status", path=rf"/playlists/{a}", times=None, status=403)
    run(window)
    entry = s.read_manifest(window).documents[a]
    assert "sha256" in entry["kept"]["unusable"] and key in entry["kept"]["unusable"]
    rows = rows_by_playlist()
    assert a not in rows and rows[b] == 44 and rows[c] == 7  # the rest loads


def test_an_unreadable_previous_manifest_is_not_overwritten(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    a, b, c = _setup(monkeypatch, emulator)
    window = current_window()
    run(window, tables=False)
    s = store()
    path = s.backend.uri(s.manifest_key(window))
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    result = run(window, tables=False, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert path in str(failure.event_specific_data.error)
    with open(path, "rb") as handle:
        assert handle.read() == data[: len(data) // 2]  # left for a person to repair
