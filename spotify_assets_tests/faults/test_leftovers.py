"""Case 6 of the fault list: leftovers are collected.

Before, every crash left a `.tmp` file (raw documents, the model store) that no later run
removed, and replaced versions were deleted only by the very commit that replaced them.
Now a later run removes stale temporary files and dead versions past the grace period, and
says how many in its metadata; a fresh leftover (a write in progress) is left alone.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from spotify_assets.defs.io_managers import ModelFilesIOManager
from spotify_assets.lib.raw.store import GRACE, LocalBackend, SnapshotStore, write_atomically
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.faults.raw_support import captured_window, raw_metadata, rows_by_playlist, run, store

OLD = time.time() - GRACE.total_seconds() - 60


def _age(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when))


def _tmp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tmp"))


@pytest.mark.slow
def test_a_later_run_removes_stale_temporaries_and_dead_versions(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    window, ids = captured_window(monkeypatch, emulator, {"left-a": 30, "left-b": 12})
    s = store()
    root = Path(s.backend.root)
    first = s.read_manifest(window)
    # Crashed writes: temporary files of documents and of the manifest, one stale, one fresh.
    version_dir = root / Path(first.documents[ids[0]]["key"]).parent
    stale = [version_dir / f".{ids[0]}.json.abc123.tmp", root / "raw/playlist_snapshots/_manifests/.window=x.json.def456.tmp"]
    fresh = version_dir / f".{ids[1]}.json.ghi789.tmp"
    for path in (*stale, fresh):
        path.write_bytes(b"half a document")
    for path in stale:
        _age(path)
    # A version a crashed writer never committed, two hours old.
    crashed = f"{s.window_prefix(window)}v=20000101T000000000000Z/{ids[0]}.json"
    s.backend.put(crashed, b"{}")
    assert len(_tmp_files(root)) == 3

    second = run(window)  # replaces the first version: kept for GRACE, not yet dead
    meta = raw_metadata(second)
    assert meta["stale_temporaries_removed"] == 2 and meta["dead_versions_removed"] == 1
    assert meta["leftovers_removed"] == 3
    assert _tmp_files(root) == [fresh]  # a write in progress is not touched
    assert s.backend.get(crashed) is None
    assert all(s.backend.get(e["key"]) is not None for e in first.documents.values())  # within grace

    # Past the grace period, the replaced version is dead: the next run removes it.
    monkeypatch.setattr(
        "spotify_assets.lib.raw.store.GRACE", timedelta(0)
    )  # as if an hour had passed (the store reads GRACE when it is built)
    time.sleep(1.1)
    third = run(window)
    meta = raw_metadata(third)
    assert meta["dead_versions_removed"] == 2  # the first and the second version
    assert meta["stale_temporaries_removed"] == 1  # the "fresh" one, now past a zero grace
    current = s.read_manifest(window)
    versions = {k.split("/v=")[1].split("/")[0] for k in s.backend.list(s.window_prefix(window))}
    assert versions == {current.version}
    assert rows_by_playlist() == dict(zip(ids, (30, 12)))  # nothing lost, nothing doubled


def test_write_atomically_removes_its_own_stale_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "model.pkl"
    stale = tmp_path / ".model.pkl.aaaa.tmp"
    fresh = tmp_path / ".model.pkl.bbbb.tmp"
    other = tmp_path / ".other.pkl.cccc.tmp"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    _age(stale)
    _age(other)
    assert write_atomically(target, b"model") == 1
    assert target.read_bytes() == b"model"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, fresh.name, other.name])


def test_the_model_store_collects_temporaries_and_reports_them(tmp_path: Path) -> None:
    base = tmp_path / "models"
    crashed = base / ".song_model.x1.tmp"  # a killed write of this asset's pickle
    crashed.parent.mkdir(parents=True)
    crashed.write_bytes(b"half a model")
    _age(crashed)
    other = base / "older" / ".other_model.x2.tmp"  # another asset's, in a sub-folder
    other.parent.mkdir(parents=True)
    other.write_bytes(b"half another")
    _age(other)

    @dg.asset(io_manager_key="model_store")
    def song_model() -> dict:
        return {"weights": [1, 2, 3]}

    result = dg.materialize([song_model], resources={"model_store": ModelFilesIOManager(base_dir=str(base))})
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["stale_temporaries_removed"].value == 2
    assert _tmp_files(base) == []
    assert (base / "song_model").is_file()


def test_a_kept_document_is_never_collected(tmp_path: Path) -> None:
    s = SnapshotStore(LocalBackend(tmp_path), grace=timedelta(0))
    good = {"status": "ok", "playlist_id": "a" * 22, "items": [{"n": 1}], "extraction": {"total": 1}}
    failed = {"status": "failed", "playlist_id": "a" * 22, "items": [], "extraction": {"error": {"kind": "forbidden", "message": "403"}}}
    first = s.write_window("2026-11-21-00:00", {"a" * 22: good})
    s.write_window("2026-11-21-00:00", {"a" * 22: failed})
    report = s.collect_garbage(now=datetime.now(timezone.utc) + timedelta(seconds=5))
    assert report.dead_versions == 0  # the first version holds the kept document
    assert s.backend.get(first.documents["a" * 22]["key"]) is not None
    assert [d["items"] for d in s.read_window("2026-11-21-00:00")] == [[{"n": 1}]]
