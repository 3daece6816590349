"""Enrichment in the pipeline: a window's raw snapshots and tables against the API emulator.
Extended Quota fills the artist and album columns from a raw enrichment document in the
window's manifest; Development Mode is one warning and null columns; an enrichment that
fails (5xx, 429 beyond the bound, garbage) never fails the window or touches its playlists."""

from __future__ import annotations

import logging

import dagster as dg
import duckdb
import orjson
import pytest

from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets_tests.faults.raw_support import raw_metadata, store
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist
from spotify_assets_tests.support.pipeline_env import api_env, current_window
from spotify_assets_tests.support.windows import windowed


def _serve(emu: SpotifyEmulator, monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict], dict]:
    meta, rows = playlist("enriched", 60)
    emu.add_playlist(meta, rows)
    star = rows[0]["item"]["artists"][0]
    emu.add_artist({"id": star["id"], "genres": ["swedish pop"], "followers": {"href": None, "total": 99}, "popularity": 70})
    emu.add_album({"id": rows[0]["item"]["album"]["id"], "label": "Stim", "popularity": 55})
    api_env(monkeypatch, emu, [meta["id"]])
    return rows, star


def _run(instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    w = windowed()
    return dg.materialize(
        [w.raw, w.tables], resources=build_resources(load_settings()), partition_key=current_window(), instance=instance
    )


def _table(sql: str) -> list[tuple]:
    wh = load_settings().warehouse
    with duckdb.connect(str(wh.duckdb_path), read_only=True) as conn:
        return conn.execute(sql.replace("{schema}", wh.schema)).fetchall()


@pytest.mark.slow
def test_extended_quota_fills_the_columns_from_the_raw_enrichment(monkeypatch: pytest.MonkeyPatch) -> None:
    with SpotifyEmulator(shape="2025") as emu:
        rows, star = _serve(emu, monkeypatch)
        result = _run()
    meta = raw_metadata(result)
    assert (meta["enrichment"], meta["artists_enriched"], meta["albums_enriched"]) == ("ok", 60, 60)
    assert meta["enrichment_requests"] == 2 + 3  # 60 artists in 50s, 60 albums in 20s
    manifest = store().read_manifest(current_window())
    assert manifest.enrichment is not None and manifest.enrichment["status"] == "ok"
    document = orjson.loads(store().enrichment_document(current_window(), manifest).data)
    assert document["batches"][0]["response"]["artists"][0]["genres"] == ["swedish pop"]  # as returned
    assert _table(f"SELECT genres, followers, popularity FROM {{schema}}.artists WHERE artist_id = '{star['id']}'") == [
        ('["swedish pop"]', 99, 70)
    ]
    assert _table("SELECT COUNT(*) FROM {schema}.artists WHERE genres IS NULL") == [(0,)]
    assert _table(f"SELECT label, popularity FROM {{schema}}.albums WHERE album_id = '{rows[0]['item']['album']['id']}'") == [("Stim", 55)]


@pytest.mark.slow
def test_development_mode_is_one_warning_and_the_columns_stay_null(monkeypatch: pytest.MonkeyPatch) -> None:
    with SpotifyEmulator(shape="2026") as emu, dg.instance_for_test() as instance:
        _serve(emu, monkeypatch)
        result = _run(instance)
        asked = emu.count(r"^/v1/(artists|albums)")
        logs = [e for e in instance.all_logs(result.run_id) if e.user_message and "Development Mode" in e.user_message]
    assert asked == 1 and raw_metadata(result)["enrichment"] == "dev_mode"
    assert [e.level for e in logs] == [logging.WARNING]
    assert store().read_manifest(current_window()).enrichment is None  # the window holds what it did before
    assert _table("SELECT COUNT(*) FROM {schema}.artists WHERE genres IS NOT NULL OR followers IS NOT NULL") == [(0,)]
    assert _table("SELECT COUNT(*), COUNT(label) FROM {schema}.albums") == [(60, 0)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [{"kind": "status", "status": 500}, {"kind": "rate_limit", "retry_after": 86400}, {"kind": "malformed"}],
    ids=["500", "429 beyond the bound", "garbage"],
)
def test_a_failing_enrichment_leaves_the_playlists_whole_and_the_window_succeeds(
    monkeypatch: pytest.MonkeyPatch, fault: dict
) -> None:
    with SpotifyEmulator(shape="2025") as emu:
        rows, _ = _serve(emu, monkeypatch)
        emu.inject(path=r"^/v1/(artists|albums)", times=None, **fault)
        result = _run()
    assert result.success
    meta = raw_metadata(result)
    assert meta["enrichment"] == "failed" and meta["playlists_read"] == 1 and meta["dagster/row_count"] == 60
    [document] = list(store().read_window(current_window()))
    assert [r["track"]["id"] for r in document["items"]] == [r["item"]["id"] for r in rows]  # 2025: rows carry `track`
    # the failure itself is kept raw: which batch, what went wrong
    manifest = store().read_manifest(current_window())
    assert manifest.enrichment["status"] == "failed" and manifest.enrichment["error"]["kind"] in ("unavailable", "rate_limited")
    assert _table("SELECT COUNT(*) FROM {schema}.playlist_tracks") == [(60,)]
    assert _table("SELECT COUNT(*), COUNT(genres) FROM {schema}.artists") == [(60, 0)]
