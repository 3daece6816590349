"""Case 5 of the fault list: a reader racing a writer.

Before, reading a window while a new version of it was committed failed with "... is in the
manifest but missing" (2 of 3 tries): the writer deleted the replaced version right after its
commit. Now a replaced version is deleted only GRACE after it was replaced, and a reader whose
version was collected under it anyway starts again on the new one.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from spotify_assets.lib.tables.normalize import normalize_window
from spotify_assets.lib.raw.store import LocalBackend, SnapshotStore, VersionCollected
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.faults.raw_support import captured_window, only_tables, rows_by_playlist, store
from spotify_assets_tests.support.fixtures import document, playlist

W = "2026-11-20-08:00"
START = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
SIZES = {"race-a": 60, "race-b": 40, "race-c": 25, "race-d": 15}


def _documents() -> dict[str, dict[str, Any]]:
    out = {}
    for label, n in SIZES.items():
        meta, rows = playlist(label, n)
        out[meta["id"]] = document(meta, rows)
    return out


class _SlowReads(LocalBackend):
    """Reads each document a little slowly, so that commits land while a window is read."""

    def get(self, key: str) -> bytes | None:
        if "/v=" in key:
            time.sleep(0.02)
        return super().get(key)


@pytest.mark.slow
def test_readers_racing_a_writer_all_succeed(tmp_path: Path) -> None:
    s = SnapshotStore(LocalBackend(tmp_path))
    reader = SnapshotStore(_SlowReads(tmp_path))
    docs = _documents()
    s.write_window(W, docs)
    stop = threading.Event()
    commits = 0

    def writer() -> None:
        nonlocal commits
        while not stop.is_set():
            s.write_window(W, docs)
            s.collect_garbage()
            commits += 1

    thread = threading.Thread(target=writer)
    thread.start()
    outcomes = []
    raced = 0
    started = time.monotonic()
    try:
        for _ in range(20):
            try:
                window, manifest = normalize_window(reader, W, START)
                outcomes.append(len(window.frames["playlist_tracks"]))
                raced += manifest.version != s.read_manifest(W).version  # a commit landed during the read
            except Exception as err:  # counted, not raised: the figure is the point
                outcomes.append(repr(err))
    finally:
        stop.set()
        thread.join()
    assert commits >= 5 and raced >= 1  # the writer really did commit under the readers
    assert outcomes == [sum(SIZES.values())] * 20  # 20 of 20 whole reads
    assert time.monotonic() - started < 60


class _CommitsOnFirstRead(LocalBackend):
    """On the reader's first document read, another writer commits a new version and the
    old one is collected at once (grace 0): the worst timing, made certain."""

    def __init__(self, root: Path, writer: SnapshotStore, docs: dict[str, dict[str, Any]]):
        super().__init__(root)
        self.writer, self.docs, self.fired = writer, docs, False

    def get(self, key: str) -> bytes | None:
        if "/v=" in key and not self.fired:
            self.fired = True
            self.writer.write_window(W, self.docs)
            self.writer.collect_garbage(now=datetime.now(timezone.utc) + timedelta(seconds=1))
        return super().get(key)


def test_a_reader_whose_version_is_collected_starts_again(tmp_path: Path) -> None:
    docs = _documents()
    writer = SnapshotStore(LocalBackend(tmp_path), grace=timedelta(0))
    writer.write_window(W, docs)
    reader = SnapshotStore(_CommitsOnFirstRead(tmp_path, writer, docs))
    first = reader.read_manifest(W)
    with pytest.raises(VersionCollected):  # the raw read notices, never "missing"
        list(reader.documents(W, first))
    reader.backend.fired = False
    window, manifest = normalize_window(reader, W, START)
    assert manifest.version != first.version
    assert len(window.frames["playlist_tracks"]) == sum(SIZES.values()) and not window.problems


@pytest.mark.slow
def test_normalized_tables_reads_while_the_window_is_rewritten(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    window, ids = captured_window(monkeypatch, emulator, SIZES)
    s = store()
    docs = {d["playlist_id"]: d for d in s.read_window(window)}
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            s.write_window(window, docs)
            s.collect_garbage()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [only_tables(window, raise_on_error=False).success for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    assert results == [True] * 3
    assert rows_by_playlist() == dict(zip(ids, SIZES.values()))
