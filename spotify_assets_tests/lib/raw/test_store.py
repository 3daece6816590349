"""The raw snapshot store: atomic window replacement on local files and on S3 (moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import re
from datetime import datetime, timedelta, timezone

import boto3
import orjson
import pytest

from spotify_assets.lib.raw.store import (
    EncodedRows,
    LocalBackend,
    ManifestError,
    S3Backend,
    SnapshotStore,
    encode_document,
    split_document,
)
from spotify_assets.lib.window import window_slug

W1 = "2026-11-21-00:00"
W2 = "2026-11-21-08:00"


def docs(tag: str, ids: tuple[str, ...] = ("a" * 22, "b" * 22)) -> dict[str, dict[str, Any]]:
    return {pid: {"status": "ok", "playlist_id": pid, "tag": tag, "items": [{"n": i} for i in range(3)]} for pid in ids}


def read(store: SnapshotStore, key: str) -> dict[str, dict[str, Any]]:
    return {d["playlist_id"]: d for d in store.read_window(key)}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SnapshotStore:
    if request.param == "local":
        return SnapshotStore(LocalBackend(tmp_path))
    s3_env = request.getfixturevalue("s3_env")
    return SnapshotStore(S3Backend(boto3.client("s3"), s3_env["bucket"], "team/spotify"))


def test_window_round_trip_and_listing(store: SnapshotStore) -> None:
    assert store.read_manifest(W1) is None
    assert list(store.read_window(W1)) == []
    store.write_window(W1, docs("one"))
    store.write_window(W2, docs("two"))
    assert read(store, W1) == docs("one")
    assert read(store, W2) == docs("two")
    assert store.windows() == [W1, W2]


def test_rewrite_replaces_only_that_window(store: SnapshotStore) -> None:
    store.write_window(W1, docs("old", ("a" * 22, "b" * 22, "c" * 22)))
    store.write_window(W2, docs("other"))
    other_keys = store.backend.list(store.window_prefix(W2))
    other_bytes = {k: store.backend.get(k) for k in other_keys}

    manifest = store.write_window(W1, docs("new", ("a" * 22, "d" * 22)))

    # b and c are no longer given: the window keeps their previous documents (never worse).
    assert read(store, W1) == docs("new", ("a" * 22, "d" * 22)) | docs("old", ("b" * 22, "c" * 22))
    assert sorted(manifest.kept) == ["b" * 22, "c" * 22]
    assert {e["kept"]["reason"] for e in manifest.kept.values()} == {"no longer configured"}
    # Past the grace period, what the window no longer needs is collected, nothing it needs.
    SnapshotStore(store.backend, grace=timedelta(0)).collect_garbage(now=datetime.now(timezone.utc) + timedelta(seconds=2))
    assert store.backend.list(store.window_prefix(W1)) == sorted(e["key"] for e in manifest.documents.values())
    assert {k: store.backend.get(k) for k in store.backend.list(store.window_prefix(W2))} == other_bytes


def test_a_failed_playlist_keeps_its_previous_document(store: SnapshotStore) -> None:
    store.write_window(W1, docs("old"))
    failed = {"status": "failed", "playlist_id": "a" * 22, "items": [], "extraction": {"error": {"kind": "forbidden", "message": "403"}}}
    manifest = store.write_window(W1, {"a" * 22: failed, "b" * 22: docs("new")["b" * 22]})
    assert read(store, W1) == {"a" * 22: docs("old")["a" * 22], "b" * 22: docs("new")["b" * 22]}
    assert manifest.kept["a" * 22]["kept"]["error"] == {"kind": "forbidden", "message": "403"}
    assert manifest.replaced and manifest.replaced[0]["version"] != manifest.version


def test_a_broken_manifest_names_its_path_and_is_not_overwritten(store: SnapshotStore) -> None:
    store.write_window(W1, docs("old"))
    store.backend.put(store.manifest_key(W1), b'{"partition_key": "2026-11')
    path = store.backend.uri(store.manifest_key(W1))
    with pytest.raises(ManifestError, match=re.escape(path)):
        store.read_manifest(W1)
    with pytest.raises(ManifestError, match=re.escape(path)):
        store.write_window(W1, docs("new"))
    assert store.backend.get(store.manifest_key(W1)) == b'{"partition_key": "2026-11'


def test_documents_are_checked_against_the_manifest(store: SnapshotStore) -> None:
    manifest = store.write_window(W1, docs("old"))
    key = manifest.documents["a" * 22]["key"]
    store.backend.put(key, b'{"playlist_id": "' + b"b" * 22 + b'"}')
    found = {d.playlist_id: d for d in store.documents(W1)}
    assert found["a" * 22].data is None and "sha256" in found["a" * 22].problem and key in found["a" * 22].problem
    assert found["b" * 22].data is not None


class FailingBackend:
    """Delegates to a real backend but fails the n-th put, like a disk or network fault."""

    def __init__(self, inner: Any, fail_at: int):
        self.inner = inner
        self.fail_at = fail_at
        self.puts = 0

    def put(self, key: str, data: bytes) -> None:
        self.puts += 1
        if self.puts == self.fail_at:
            raise OSError("injected write failure")
        self.inner.put(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("fail_at", [2, 4])  # a document; the manifest (3 docs, then manifest)
def test_failed_write_leaves_previous_version_whole(store: SnapshotStore, fail_at: int) -> None:
    store.write_window(W1, docs("old"))
    before = sorted(store.backend.list(store.window_prefix(W1)))
    flaky = SnapshotStore(FailingBackend(store.backend, fail_at))
    with pytest.raises(OSError, match="injected"):
        flaky.write_window(W1, docs("new", ("a" * 22, "b" * 22, "c" * 22)))
    assert read(store, W1) == docs("old")
    assert sorted(store.backend.list(store.window_prefix(W1))) == before  # partial version removed


def test_readers_see_old_documents_until_the_manifest_commits(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    store = SnapshotStore(backend)
    store.write_window(W1, docs("old"))
    seen_before_commit: list[dict[str, Any]] = []

    class Watching(LocalBackend):
        def put(self, key: str, data: bytes) -> None:
            if "_manifests/" in key:
                seen_before_commit.append(read(store, W1))
            super().put(key, data)

    SnapshotStore(Watching(tmp_path)).write_window(W1, docs("new"))
    assert seen_before_commit == [docs("old")]
    assert read(store, W1) == docs("new")


def test_uncommitted_newer_version_of_another_writer_is_kept(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    store = SnapshotStore(backend)
    store.write_window(W1, docs("first"))
    # A leftover of a write that failed long ago, and a version another writer is still writing.
    prefix = store.window_prefix(W1)
    backend.put(f"{prefix}v=19990101T000000000000Z/{'z' * 22}.json", b"{}")
    backend.put(f"{prefix}v=29990101T000000000000Z/{'y' * 22}.json", b"{}")
    store.write_window(W1, docs("second"))
    store.collect_garbage()
    remaining = backend.list(prefix)
    assert not any("19990101" in k for k in remaining)
    assert any("29990101" in k for k in remaining)


def test_layout_is_one_document_per_playlist(tmp_path: Path) -> None:
    store = SnapshotStore(LocalBackend(tmp_path))
    store.write_window(W1, docs("x"))
    files = sorted(p.name for p in (tmp_path / "raw/playlist_snapshots" / f"window={window_slug(W1)}").rglob("*.json"))
    assert files == [f"{'a' * 22}.json", f"{'b' * 22}.json"]
    assert (tmp_path / f"raw/playlist_snapshots/_manifests/window={window_slug(W1)}.json").is_file()


def test_bad_window_key_is_named() -> None:
    with pytest.raises(ValueError, match="'2026-11-21T08'"):
        window_slug("2026-11-21T08")


def test_list_info_and_open_stream_an_object(store: SnapshotStore) -> None:
    backend = store.backend
    backend.put("listening/ana/a.json", b"[1]")
    backend.put("listening/ana/b.json", b"[1, 2]")
    infos = backend.list_info("listening/")
    assert [(i.key, i.size) for i in infos] == [("listening/ana/a.json", 3), ("listening/ana/b.json", 6)]
    before = infos[0].tag
    backend.put("listening/ana/a.json", b"[9, 9, 9]")  # overwritten in place: the tag changes
    assert backend.list_info("listening/")[0].tag != before
    with backend.open("listening/ana/b.json") as handle:
        assert handle.read() == b"[1, 2]"
        handle.seek(1)
        assert handle.read(1) == b"1"
    with pytest.raises(FileNotFoundError):
        with backend.open("listening/ana/missing.json"):
            pass


def test_one_document_is_read_and_checked_on_its_own_and_its_snapshot_id_is_in_the_manifest(store: SnapshotStore) -> None:
    a, b = "a" * 22, "b" * 22
    written = docs("one")
    written[a]["playlist"] = {"name": "A", "snapshot_id": "AAAA"}
    manifest = store.write_window(W1, written)
    assert manifest.documents[a]["snapshot_id"] == "AAAA" and manifest.documents[b]["snapshot_id"] is None
    found = store.document(a, manifest)
    assert found is not None and found.problem is None and orjson.loads(found.data) == written[a]
    assert store.document("c" * 22, manifest) is None
    store.backend.put(manifest.documents[b]["key"], orjson.dumps({**written[b], "tag": "swapped"}))
    swapped = store.document(b, manifest)
    assert swapped is not None and swapped.data is None and "does not match the size and sha256" in swapped.problem
    store.backend.delete([manifest.documents[b]["key"]])
    assert "in the manifest but missing" in store.document(b, manifest).problem


def enrichment(status: str = "ok", genres: str = "pop") -> dict[str, Any]:
    batches = [] if status in ("failed", "dev_mode") else [
        {"endpoint": "artists", "ids": ["x" * 22], "response": {"artists": [{"id": "x" * 22, "genres": [genres]}]}}
    ]
    return {"kind": "enrichment", "status": status, "requests": 1, "asked": {"artists": 1, "albums": 0},
            "received": {"artists": len(batches), "albums": 0}, "dev_mode": None,
            "errors": [{"kind": "unavailable", "message": "503"}] if status == "failed" else [], "batches": batches}


def test_enrichment_is_one_more_document_of_the_version_checked_like_the_others(store: SnapshotStore) -> None:
    plain = store.write_window(W1, docs("old"))
    assert plain.enrichment is None and b"enrichment" not in store.backend.get(store.manifest_key(W1))
    manifest = store.write_window(W1, docs("new"), enrichment=enrichment())
    entry = manifest.enrichment
    assert entry is not None and entry["key"].startswith(f"{store.window_prefix(W1)}v={manifest.version}/")
    assert (entry["status"], entry["received"], entry["error"]) == ("ok", {"artists": 1, "albums": 0}, None)
    assert store.read_manifest(W1) == manifest
    stored = store.enrichment_document(W1, manifest)
    assert stored is not None and stored.problem is None and orjson.loads(stored.data) == enrichment()
    assert sorted(read(store, W1)) == ["a" * 22, "b" * 22]  # not a playlist
    store.backend.put(entry["key"], b'{"batches": []}')  # swapped since it was written
    swapped = store.enrichment_document(W1, manifest)
    assert swapped is not None and swapped.data is None and "sha256" in swapped.problem


def test_a_rerun_that_enriched_nothing_keeps_the_previous_enrichment(store: SnapshotStore) -> None:
    first = store.write_window(W1, docs("old"), enrichment=enrichment(genres="first"))
    assert first.enrichment is not None
    failed = store.write_window(W1, docs("new"), enrichment=enrichment("failed"))
    assert failed.enrichment["key"] == first.enrichment["key"]
    assert failed.enrichment["kept"]["error"] == {"kind": "unavailable", "message": "503"}
    untried = store.write_window(W1, docs("newer"))  # Development Mode: nothing given
    assert untried.enrichment["key"] == first.enrichment["key"]
    # garbage collection keeps what the manifest still names, in an older version
    SnapshotStore(store.backend, grace=timedelta(0)).collect_garbage(now=datetime.now(timezone.utc) + timedelta(seconds=2))
    stored = store.enrichment_document(W1, store.read_manifest(W1))
    assert stored is not None and orjson.loads(stored.data)["batches"][0]["response"]["artists"][0]["genres"] == ["first"]
    newer = store.write_window(W1, docs("newest"), enrichment=enrichment(genres="second"))
    assert newer.enrichment["key"] != first.enrichment["key"] and "kept" not in newer.enrichment


def test_a_failed_write_leaves_no_enrichment_behind(store: SnapshotStore) -> None:
    store.write_window(W1, docs("old"))
    before = sorted(store.backend.list(store.window_prefix(W1)))
    flaky = SnapshotStore(FailingBackend(store.backend, 4))  # a, b, the enrichment, then the manifest fails
    with pytest.raises(OSError, match="injected"):
        flaky.write_window(W1, docs("new"), enrichment=enrichment())
    assert sorted(store.backend.list(store.window_prefix(W1))) == before and store.read_manifest(W1).enrichment is None


# --- rows carried as they were stored (an unchanged playlist's, lib/spotify/reuse.py) ----------


def test_a_document_s_rows_are_located_in_its_bytes_and_read_back_without_parsing_them() -> None:
    rows = [{"item": {"id": f"t{i}", "name": "Ünïcødé \u0645"}} for i in range(3)]
    document = {"status": "ok", "playlist_id": "p", "items": rows, "extraction": {"rows_read": 3}}
    data, items_at = encode_document(document)
    assert orjson.loads(data) == document  # plain JSON: every reader parses it as before
    assert data[items_at[0] : items_at[1]] == orjson.dumps(rows)
    head, items = split_document(data, items_at)
    assert head == {k: v for k, v in document.items() if k != "items"} and items == orjson.dumps(rows)
    # Written again from those bytes, the document is the same rows byte for byte.
    again, again_at = encode_document({**head, "items": EncodedRows(items, 3)})
    assert orjson.loads(again) == document and again[again_at[0] : again_at[1]] == items
    assert encode_document({"status": "ok"}) == (orjson.dumps({"status": "ok"}), None)


@pytest.mark.parametrize(
    "items_at",
    [None, "12,40", [1, 2, 3], [0, 5], [5, 9], [True, 9], "shift-start", "shift-end", "whole"],
)
def test_a_location_that_does_not_fit_the_bytes_is_refused_and_the_document_parsed_whole(items_at: Any) -> None:
    data, real = encode_document({"playlist": {"name": '"items":[1]'}, "items": [{"n": 1}, {"n": 2}]})
    shifted = {"shift-start": [real[0] + 1, real[1]], "shift-end": [real[0], real[1] - 1], "whole": [0, len(data)]}
    assert split_document(data, shifted.get(items_at, items_at) if isinstance(items_at, str) else items_at) is None
    assert split_document(data, real) is not None


def test_stored_rows_compare_their_first_rows_byte_for_byte_and_parse_only_when_read() -> None:
    rows = [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    stored = EncodedRows(orjson.dumps(rows), 3)
    assert len(stored) == 3 and stored._rows is None  # counted without parsing
    assert stored.starts_with(rows[:1]) and stored.starts_with(rows[:2]) and stored.starts_with(rows)
    assert not stored.starts_with([{"a": 1, "b": 3}]) and not stored.starts_with([*rows, rows[0]])
    assert not stored.starts_with([{"b": 2, "a": 1}])  # equal rows, keys in another order: compare parsed
    assert stored == rows and stored[1] == {"a": 3, "b": 4} and list(stored) == rows
    with pytest.raises(ValueError, match="expected a list of 4 rows"):
        EncodedRows(orjson.dumps(rows), 4).rows()
