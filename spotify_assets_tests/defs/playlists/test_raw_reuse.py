"""Reusing unchanged playlists' rows, end to end: a window whose rows were reused gives exactly the
tables, checks and counts a full re-read gives (API emulator, local files, DuckDB)."""

from __future__ import annotations

import copy
from typing import Any

import dagster as dg
import duckdb
import pytest

from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.tables.schema import PARTITION_COLUMN
from spotify_assets.lib.window import window_of
from spotify_assets.defs.resources import build_resources
from spotify_assets_tests.faults.raw_support import raw_metadata, store
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist, track
from spotify_assets_tests.support.pipeline_env import api_env
from spotify_assets_tests.support.windows import windowed, windows

TABLES = ("songs", "artists", "albums", "song_artists", "playlists", "playlist_tracks")
PER_RUN = {"extracted_at"}  # when the playlist was read: differs between any two runs


def _serve(emu: SpotifyEmulator) -> dict[str, tuple[dict, list[dict]]]:
    steady = playlist("steady", 120)
    edge_meta, edge_rows = playlist("edge", 140)
    edge_rows[60]["item"] = None  # no longer available
    edge_rows[75]["is_local"] = True
    edge_rows[75]["item"] = {**track("local"), "id": None, "is_local": True, "uri": "spotify:local:a:b:c:1"}
    edge_rows[90] = copy.deepcopy(edge_rows[10])  # the same song twice
    edge_rows[101]["item"] = {**track("episode"), "type": "episode"}
    moving = playlist("moving", 110)
    small = playlist("small", 30)
    served = {"steady": steady, "edge": (edge_meta, edge_rows), "moving": moving, "small": small}
    for meta, rows in served.values():
        emu.add_playlist(meta, rows)
    return served


def _window_rows(key: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows of window `key`, sorted, without the columns that differ per run."""
    wh = load_settings().warehouse
    start, _ = window_of(key).literals()
    out = {}
    with duckdb.connect(str(wh.duckdb_path), read_only=True) as conn:
        for table in TABLES:
            columns = [c[0] for c in conn.execute(f"describe {wh.schema}.{table}").fetchall() if c[0] not in PER_RUN]
            rows = conn.execute(
                f"select {', '.join(columns)} from {wh.schema}.{table} where {PARTITION_COLUMN} = ?::timestamptz", [start]
            ).fetchall()
            out[table] = sorted(rows, key=repr)
    return out


def run(key: str) -> dg.ExecuteInProcessResult:
    """The raw snapshots, the six tables and every check of both, for window `key`."""
    w = windowed()
    return dg.materialize(
        [w.raw, w.tables, w.raw_checks, w.table_checks], resources=build_resources(load_settings()), partition_key=key
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, dict[str, Any]]]:
    return {
        f"{c.asset_key.to_user_string()}/{c.check_name}": (c.passed, {k: v.value for k, v in c.metadata.items()})
        for c in result.get_asset_check_evaluations()
    }


@pytest.mark.slow
def test_a_reused_window_gives_what_a_full_reread_gives(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    served = _serve(emulator)
    ids = {label: meta["id"] for label, (meta, _) in served.items()}
    api_env(monkeypatch, emulator, list(ids.values()))
    w1, w2 = windows().get_partition_keys()[-2:]
    run(w1)
    meta, rows = served["moving"]
    emulator.add_playlist({**meta, "snapshot_id": "BBBB"}, rows[:100])  # changed since w1

    emulator.reset_log()
    reused = run(w2)
    reused_requests = emulator.count(r"/v1/playlists/")
    reused_pages = emulator.count(r"/items$")
    reused_tables, reused_checks, reused_meta = _window_rows(w2), _checks(reused), raw_metadata(reused)
    reused_docs = {d["playlist_id"]: d for d in store().read_window(w2)}

    monkeypatch.setenv("SPOTIFY_ASSETS_REUSE_ROWS", "never")
    emulator.reset_log()
    full = run(w2)  # the same window again, every page read
    full_requests = emulator.count(r"/v1/playlists/")
    full_tables, full_checks, full_meta = _window_rows(w2), _checks(full), raw_metadata(full)
    full_docs = {d["playlist_id"]: d for d in store().read_window(w2)}

    # What reuse saved: steady (120 rows) and edge (140) skip 2 pages each; moving and small are read.
    assert {pid: d["extraction"]["reuse"].get("reused") for pid, d in reused_docs.items()} == {
        ids["steady"]: True, ids["edge"]: True, ids["moving"]: False, ids["small"]: False
    }
    assert reused_docs[ids["moving"]]["extraction"]["reuse"]["why"] == "changed"
    assert reused_pages == 1 and reused_requests == 5 and full_requests == 4 + 2 + 2 + 1 + 0
    assert (reused_meta["requests"], reused_meta["requests_saved"], reused_meta["playlists_reused"], reused_meta["pages_reread"]) == (5, 4, 2, 1)
    assert (full_meta["requests"], full_meta["requests_saved"], full_meta["playlists_reused"], full_meta["pages_reread"]) == (9, 0, 0, 5)
    assert reused_meta["full_reads"] == {"changed": 1, "one_page": 1} and full_meta["full_reads"] == {"disabled": 3, "one_page": 1}

    # Exactly what a full re-read gives: the documents' rows, the six tables, every check, the counts.
    assert {pid: d["items"] for pid, d in reused_docs.items()} == {pid: d["items"] for pid, d in full_docs.items()}
    for table in TABLES:
        assert reused_tables[table] == full_tables[table], table
        assert reused_tables[table], table
    assert reused_checks == full_checks and len(reused_checks) > 10
    assert all(passed for passed, _ in reused_checks.values()), [k for k, (p, _) in reused_checks.items() if not p]
    same = {"dagster/row_count", "playlists_read", "playlists_failed", "rows_not_songs", "popularity_present", "playlists_kept"}
    assert {k: reused_meta[k] for k in same} == {k: full_meta[k] for k in same}
    assert reused_meta["rows_not_songs"] == {"unavailable": 1, "local": 1, "episode": 1}
