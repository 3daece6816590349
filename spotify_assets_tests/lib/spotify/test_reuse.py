"""Rows of unchanged playlists taken from the previous window (lib/spotify/reuse.py), against the
API emulator and a real local snapshot store."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import orjson
import pytest

from spotify_assets.lib.raw.store import LocalBackend, SnapshotStore, encode_document
from spotify_assets.lib.spotify.client import Credentials, RetryPolicy, SpotifyApi
from spotify_assets.lib.spotify.extract import PlaylistExtractor
from spotify_assets.lib.spotify.reuse import PreviousWindow, ReusePolicy, same_rows
from spotify_assets.lib.window import previous_key
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist

KEYS = ["2026-11-20-00:00", "2026-11-20-08:00", "2026-11-20-16:00", "2026-11-21-00:00", "2026-11-21-08:00"]
PAGES = r"/(items|tracks)$"


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(LocalBackend(tmp_path))


def run_window(
    emu: SpotifyEmulator, store: SnapshotStore, key: str, ids: list[str], policy: ReusePolicy = ReusePolicy()
) -> dict[str, dict]:
    """Extract `ids` for window `key` as the raw asset does, commit the window, return its documents."""
    api = SpotifyApi(
        Credentials(emu.client_id, emu.client_secret, None),
        api_url=emu.api_url,
        accounts_url=emu.accounts_url,
        policy=RetryPolicy(max_attempts=2, timeout_s=2),
        pool_size=4,
        sleep=lambda _s: None,
    )
    api.authenticate()
    previous = PreviousWindow.open(store, previous_key(key, KEYS[0]), policy)
    snaps = PlaylistExtractor(api, concurrency=4, previous=previous).extract(ids)
    docs = {s.playlist_id: s.to_document({"partition_key": key, "start": "", "end": ""}) for s in snaps}
    store.write_window(key, docs)
    return {pid: orjson.loads(encode_document(doc)[0]) for pid, doc in docs.items()}  # as stored


def serve(emu: SpotifyEmulator, label: str, n: int, snapshot_id: str = "AAAA") -> tuple[dict, list[dict]]:
    meta, rows = playlist(label, n)
    meta["snapshot_id"] = snapshot_id
    emu.add_playlist(meta, rows)
    return meta, rows


def stored(store: SnapshotStore, key: str, pid: str) -> tuple[Path, dict]:
    """The file of `pid`'s committed document in window `key`, and the document."""
    path = Path(store.backend.uri(store.read_manifest(key).documents[pid]["key"]))
    return path, orjson.loads(path.read_bytes())


def test_an_unchanged_playlist_costs_one_request_and_its_document_is_complete(
    emulator: SpotifyEmulator, store: SnapshotStore
) -> None:
    meta, _rows = serve(emulator, "steady", 120)  # the metadata request's 50 rows, then 2 pages
    pid = meta["id"]
    first = run_window(emulator, store, KEYS[0], [pid])[pid]
    assert first["extraction"]["reuse"]["why"] == "no_previous" and emulator.count(PAGES) == 2
    emulator.reset_log()
    second = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert emulator.count(PAGES) == 0 and emulator.count(r"/playlists/") == 1
    assert second["status"] == "ok" and second["items"] == first["items"]
    assert second["extraction"]["requests"] == 1 and second["extraction"]["pages"] == 1
    assert second["extraction"]["rows_read"] == second["extraction"]["total"] == 120
    v1 = store.read_manifest(KEYS[0]).version
    assert second["extraction"]["reuse"] == {
        "reused": True,
        "from_window": KEYS[0],
        "from_version": v1,
        "from_sha256": store.read_manifest(KEYS[0]).documents[pid]["sha256"],
        "rows_reused": 70,
        "requests_saved": 2,
        "windows_since_full_read": 1,
        "full_read_window": KEYS[0],
    }
    # The reused document is committed and verifiable like any other: the manifest's sha256
    # is that of the bytes on disk, and the facts the checks read are the full read's.
    [(read_pid, data)] = list(store.read_window_bytes(KEYS[1]))
    assert read_pid == pid and orjson.loads(data)["items"] == first["items"]
    facts = store.read_manifest(KEYS[1]).documents[pid]
    assert (facts["rows_total"], facts["rows_read"], facts["snapshot_id"]) == (120, 120, "AAAA")


def test_a_changed_snapshot_id_is_read_fully_with_the_new_rows(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    meta, _ = serve(emulator, "moving", 120)
    pid = meta["id"]
    run_window(emulator, store, KEYS[0], [pid])
    _, rows = playlist("moving-2", 130)
    emulator.add_playlist({**meta, "snapshot_id": "BBBB"}, rows)
    emulator.reset_log()
    doc = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert emulator.count(PAGES) == 2 and len(doc["items"]) == 130
    assert doc["items"][-1]["item"]["id"] == rows[-1]["item"]["id"]
    assert doc["extraction"]["reuse"]["why"] == "changed" and "'AAAA'" in doc["extraction"]["reuse"]["detail"]


def test_with_snapshot_ids_that_follow_the_rows_only_the_changed_playlist_is_read_again(store: SnapshotStore) -> None:
    """As the real API does: a row moved deep in one playlist changes its snapshot_id only."""
    with SpotifyEmulator(versioned_snapshots=True) as emu:
        still, rows_still = playlist("still", 180)
        moved, rows_moved = playlist("moved", 180)
        for meta, rows in ((still, rows_still), (moved, rows_moved)):
            emu.add_playlist(meta, rows)
        ids = [still["id"], moved["id"]]
        run_window(emu, store, KEYS[0], ids)
        changed = [*rows_moved[:150], rows_moved[170], *rows_moved[150:170], *rows_moved[171:]]  # on the last page
        emu.add_playlist(moved, changed)
        emu.reset_log()
        docs = run_window(emu, store, KEYS[1], ids)
        assert emu.count(rf"/playlists/{still['id']}/items$") == 0
        assert emu.count(rf"/playlists/{moved['id']}/items$") == 3  # re-read whole: every page after the first
        assert docs[still["id"]]["extraction"]["reuse"]["reused"] is True
        assert docs[moved["id"]]["extraction"]["reuse"]["why"] == "changed"
        assert [r["item"]["id"] for r in docs[moved["id"]]["items"]] == [r["item"]["id"] for r in changed]


def test_the_same_snapshot_id_with_rows_that_differ_is_read_fully(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    # What snapshot_id does not track: a track of the first page became unavailable.
    meta, rows = serve(emulator, "quiet", 120)
    pid = meta["id"]
    run_window(emulator, store, KEYS[0], [pid])
    changed = copy.deepcopy(rows)
    changed[3]["item"] = None
    emulator.add_playlist(meta, changed)
    emulator.reset_log()
    doc = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert emulator.count(PAGES) == 2 and doc["items"][3]["item"] is None
    assert doc["extraction"]["reuse"]["why"] == "rows_differ"
    # And a total that no longer matches the stored rows.
    emulator.add_playlist(meta, changed + rows[:1])
    doc = run_window(emulator, store, KEYS[2], [pid])[pid]
    assert doc["extraction"]["reuse"]["why"] == "rows_differ" and len(doc["items"]) == 121


def test_a_full_read_comes_back_every_full_reread_windows(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    meta, _ = serve(emulator, "bounded", 60)
    pid = meta["id"]
    policy = ReusePolicy(full_reread_windows=3)
    reuse = [run_window(emulator, store, key, [pid], policy)[pid]["extraction"]["reuse"] for key in KEYS]
    assert [r["reused"] for r in reuse] == [False, True, True, False, True]
    assert reuse[2]["windows_since_full_read"] == 2 and reuse[2]["full_read_window"] == KEYS[0]
    assert reuse[3]["why"] == "full_reread_due" and "2026-11-20-00:00" in reuse[3]["detail"]
    assert reuse[4]["full_read_window"] == KEYS[3] and reuse[4]["windows_since_full_read"] == 1


def test_rows_with_popularity_are_reread_unless_the_policy_says_always(tmp_path: Path) -> None:
    with SpotifyEmulator(shape="2025", dev_mode_fields=False) as emu:  # Extended Quota: popularity
        meta, rows = serve(emu, "popular", 250)  # a 100-row first page, then 3 pages of 50
        pid = meta["id"]
        for rows_policy, reused in (("without_popularity", False), ("always", True), ("never", False)):
            store = SnapshotStore(LocalBackend(tmp_path / rows_policy))
            run_window(emu, store, KEYS[0], [pid], ReusePolicy(rows_policy))
            emu.add_playlist(meta, [{**r, "item": {**r["item"], "popularity": 7}} for r in rows])  # popularity drifts
            emu.reset_log()
            doc = run_window(emu, store, KEYS[1], [pid], ReusePolicy(rows_policy))[pid]
            emu.add_playlist(meta, rows)
            assert doc["extraction"]["reuse"]["reused"] is reused, rows_policy
            assert emu.count(r"/tracks$") == (0 if reused else 3)  # (an older server: /items 404s first)
            if reused:
                # The first page is this window's (popularity 7); the rest are the previous window's.
                assert doc["extraction"]["reuse"]["requests_saved"] == 3
                assert [r["track"]["popularity"] for r in doc["items"][:100]] == [7] * 100
                assert [r["track"]["popularity"] for r in doc["items"][100:]] == [r["item"]["popularity"] for r in rows[100:]]
            else:
                assert doc["extraction"]["reuse"]["why"] == ("popularity" if rows_policy != "never" else "disabled")


def test_a_previous_document_that_cannot_be_trusted_means_a_full_read(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    meta, _ = serve(emulator, "tampered", 120)
    pid = meta["id"]
    run_window(emulator, store, KEYS[0], [pid])
    path, document = stored(store, KEYS[0], pid)
    document["items"] = document["items"][:1] * 120  # same length, other rows: sha256 no longer matches
    path.write_bytes(orjson.dumps(document))
    emulator.reset_log()
    doc = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert emulator.count(PAGES) == 2 and doc["extraction"]["reuse"]["why"] == "previous_unreadable"
    assert len({r["item"]["id"] for r in doc["items"]}) == 120
    # Missing altogether.
    path = Path(store.backend.uri(store.read_manifest(KEYS[1]).documents[pid]["key"]))
    path.unlink()
    doc = run_window(emulator, store, KEYS[2], [pid])[pid]
    assert doc["extraction"]["reuse"]["why"] == "previous_unreadable" and len(doc["items"]) == 120
    # The previous window's manifest unreadable.
    Path(store.backend.uri(store.manifest_key(KEYS[2]))).write_bytes(b"{not json")
    doc = run_window(emulator, store, KEYS[3], [pid])[pid]
    assert doc["extraction"]["reuse"]["why"] == "previous_unreadable" and len(doc["items"]) == 120


def test_a_document_kept_from_a_failure_is_not_reused(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    meta, _ = serve(emulator, "flaky", 120)
    pid = meta["id"]
    run_window(emulator, store, KEYS[0], [pid])
    emulator.inject("status", path=r"/playlists/", times=None, status=503)
    failed = run_window(emulator, store, KEYS[0], [pid])[pid]  # a re-run that fails keeps the old one
    assert failed["status"] == "failed" and store.read_manifest(KEYS[0]).documents[pid]["kept"]
    emulator.clear_faults()
    doc = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert doc["extraction"]["reuse"]["why"] == "previous_failed" and len(doc["items"]) == 120


def test_a_playlist_no_longer_readable_is_not_filled_from_the_previous_window(
    emulator: SpotifyEmulator, store: SnapshotStore
) -> None:
    meta, rows = serve(emulator, "locked", 120)
    pid = meta["id"]
    run_window(emulator, store, KEYS[0], [pid])
    emulator.add_playlist(meta, rows, contents_forbidden=True)  # metadata only, same snapshot_id
    doc = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert doc["status"] == "failed" and doc["extraction"]["error"]["kind"] == "forbidden"
    assert doc["extraction"]["reuse"]["why"] == "no_contents"


def test_rows_read_with_another_fields_filter_are_not_reused(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    meta, _ = serve(emulator, "older", 120)
    pid = meta["id"]
    run_window(emulator, store, KEYS[0], [pid])
    path, document = stored(store, KEYS[0], pid)
    document["extraction"]["rows_request"]["fields_sha256"] = "0" * 16  # read by another version of the code
    data = orjson.dumps(document)
    path.write_bytes(data)
    manifest_path = Path(store.backend.uri(store.manifest_key(KEYS[0])))
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest["documents"][pid] |= {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest_path.write_bytes(orjson.dumps(manifest))
    doc = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert doc["extraction"]["reuse"]["why"] == "request_changed" and len(doc["items"]) == 120


def test_same_rows_ignores_popularity_only_when_asked() -> None:
    _, rows = playlist("cmp", 2)
    drifted = copy.deepcopy(rows)
    drifted[1]["item"]["popularity"] += 1
    assert same_rows(drifted, rows, ignore_popularity=True)
    assert not same_rows(drifted, rows, ignore_popularity=False)
    drifted[1]["item"]["name"] = "other"
    assert not same_rows(drifted, rows, ignore_popularity=True)


def test_the_policy_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        ReusePolicy("sometimes")
    with pytest.raises(ValueError, match="at least 1"):
        ReusePolicy(full_reread_windows=0)
    assert not ReusePolicy(full_reread_windows=1).enabled and not ReusePolicy("never").enabled


def test_reused_rows_are_written_as_the_bytes_they_were_stored_as(emulator: SpotifyEmulator, store: SnapshotStore) -> None:
    meta, _ = serve(emulator, "bytes", 180)
    pid = meta["id"]
    for key in KEYS[:3]:
        run_window(emulator, store, key, [pid])
    spans = []
    for key in KEYS[:3]:
        entry = store.read_manifest(key).documents[pid]
        start, end = entry["items_at"]
        spans.append(Path(store.backend.uri(entry["key"])).read_bytes()[start:end])
    assert spans[0] == spans[1] == spans[2] and len(orjson.loads(spans[0])) == 180
    third = stored(store, KEYS[2], pid)[1]
    assert third["extraction"]["reuse"]["windows_since_full_read"] == 2  # reused from a reused document
    # What was said of the rows when they were read is carried with them.
    first = stored(store, KEYS[0], pid)[1]
    for fact in ("rows", "payload_key", "skipped", "repeated_track_rows", "popularity_present"):
        assert third["extraction"][fact] == first["extraction"][fact]


def test_a_document_whose_rows_are_not_located_is_parsed_whole_and_still_reused(
    emulator: SpotifyEmulator, store: SnapshotStore
) -> None:
    """A document written before the manifest said where its rows are (or whose location
    does not fit): read whole, as before; the rows reused are the same."""
    meta, _ = serve(emulator, "older", 120)
    pid = meta["id"]
    first = run_window(emulator, store, KEYS[0], [pid])[pid]
    manifest_path = Path(store.backend.uri(store.manifest_key(KEYS[0])))
    manifest = orjson.loads(manifest_path.read_bytes())
    del manifest["documents"][pid]["items_at"]
    manifest_path.write_bytes(orjson.dumps(manifest))
    emulator.reset_log()
    second = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert emulator.count(PAGES) == 0 and second["extraction"]["reuse"]["reused"] is True
    assert second["items"] == first["items"]


def test_rows_stored_with_their_keys_in_another_order_are_compared_as_rows(
    emulator: SpotifyEmulator, store: SnapshotStore
) -> None:
    """The first page is compared byte for byte with the stored rows; rows equal but encoded
    in another key order (another server, an older writer) are compared parsed and reused."""
    meta, _ = serve(emulator, "order", 120)
    pid = meta["id"]
    api = SpotifyApi(Credentials(emulator.client_id, emulator.client_secret, None), api_url=emulator.api_url,
                     accounts_url=emulator.accounts_url, policy=RetryPolicy(max_attempts=2, timeout_s=2), sleep=lambda _s: None)
    api.authenticate()
    [snap] = PlaylistExtractor(api, previous=PreviousWindow.open(store, None, ReusePolicy())).extract([pid])
    reversed_rows = [dict(reversed(list(r.items()))) for r in snap.items]
    store.write_window(KEYS[0], {pid: {**snap.to_document({"partition_key": KEYS[0]}), "items": reversed_rows}})
    emulator.reset_log()
    second = run_window(emulator, store, KEYS[1], [pid])[pid]
    assert emulator.count(PAGES) == 0 and second["extraction"]["reuse"]["reused"] is True
    assert second["items"] == snap.items and second["items"][0] == reversed_rows[0]
