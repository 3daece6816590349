"""The raw snapshot asset, materialized as the schedule would, locally and in production."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import dagster as dg
import pytest

from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.samples.catalogue import sample_playlist_ids, sample_playlists
from spotify_assets.lib.raw.store import LocalBackend, S3Backend, SnapshotStore
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist
from spotify_assets_tests.support.pipeline_env import api_env, current_window
from spotify_assets_tests.support.windows import windowed

W1 = "2026-11-20-16:00"
W2 = "2026-11-21-00:00"


def materialize(partition_key: str, instance: dg.DagsterInstance | None = None, raise_on_error: bool = True):
    return dg.materialize(
        [windowed().raw],
        resources=build_resources(load_settings()),
        partition_key=partition_key,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def local_store() -> SnapshotStore:
    return SnapshotStore(LocalBackend(load_settings().data_dir))


def metadata_of(result) -> dict:
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_sample_window_gives_one_document_per_playlist() -> None:
    result = materialize(W2)
    store = local_store()
    documents = {d["playlist_id"]: d for d in store.read_window(W2)}
    assert sorted(documents) == sorted(sample_playlist_ids())
    expected = {p.meta["id"]: p.rows for p in sample_playlists(datetime(2026, 11, 21, tzinfo=timezone.utc))}
    for pid, doc in documents.items():
        assert doc["status"] == "ok" and doc["window"]["partition_key"] == W2
        assert doc["window"]["start"] == "2026-11-21T00:00:00Z" and doc["window"]["end"] == "2026-11-21T08:00:00Z"
        assert doc["extraction"]["source"] == "synthetic-sample"
        assert [r["item"] and r["item"]["id"] for r in doc["items"]] == [r["item"] and r["item"]["id"] for r in expected[pid]]
    meta = metadata_of(result)
    assert meta["dagster/row_count"] == sum(len(rows) for rows in expected.values())
    assert meta["playlists_read"] == len(expected) and meta["playlists_failed"] == 0
    assert "synthetic" in meta["source"]
    assert meta["rows_not_songs"]["local"] >= 1 and meta["rows_not_songs"]["unavailable"] >= 1
    assert len(meta["playlists"].records) == len(expected)
    # the sample also answers the batch endpoints: every artist and album of the window enriched
    assert meta["enrichment"] == "ok" and meta["artists_enriched"] > 0 and meta["albums_enriched"] > 0
    assert store.read_manifest(W2).enrichment["received"] == {"artists": meta["artists_enriched"], "albums": meta["albums_enriched"]}


def test_rematerializing_a_window_replaces_it_and_touches_no_other() -> None:
    materialize(W1)
    materialize(W2)
    store = local_store()
    other = {k: store.backend.get(k) for k in store.backend.list(store.window_prefix(W1))}
    first = store.read_manifest(W2)
    materialize(W2)
    second = store.read_manifest(W2)
    assert first is not None and second is not None and first.version != second.version
    assert second.replaced[-1]["version"] == first.version  # kept for the grace period, for readers
    SnapshotStore(store.backend, grace=timedelta(0)).collect_garbage(now=datetime.now(timezone.utc) + timedelta(seconds=2))
    kept = [e["key"] for e in second.documents.values()] + [second.enrichment["key"]]  # the sample's enrichment
    assert store.backend.list(store.window_prefix(W2)) == sorted(kept)
    assert {k: store.backend.get(k) for k in store.backend.list(store.window_prefix(W1))} == other
    assert store.windows() == [W1, W2]


def test_some_playlists_failing_is_recorded_and_the_rest_are_kept(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator
) -> None:
    good, rows = playlist("good", 75)
    locked, locked_rows = playlist("locked", 10)
    emulator.add_playlist(good, rows)
    emulator.add_playlist(locked, locked_rows, contents_forbidden=True)
    api_env(monkeypatch, emulator, [good["id"], locked["id"]])
    window = current_window()
    result = materialize(window)
    docs = {d["playlist_id"]: d for d in local_store().read_window(window)}
    assert docs[good["id"]]["status"] == "ok" and len(docs[good["id"]]["items"]) == 75
    assert docs[locked["id"]]["status"] == "failed" and docs[locked["id"]]["items"] == []
    assert docs[locked["id"]]["extraction"]["error"]["kind"] == "forbidden"
    meta = metadata_of(result)
    assert meta["playlists_failed"] == 1 and "forbidden" in meta["failures"]
    assert docs[good["id"]]["extraction"]["source"] == "spotify-web-api"


@pytest.mark.slow
def test_a_failed_playlist_is_one_warning_in_the_run_log(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    good, rows = playlist("good", 20)
    locked, locked_rows = playlist("locked", 10)
    emulator.add_playlist(good, rows)
    emulator.add_playlist(locked, locked_rows, contents_forbidden=True)
    api_env(monkeypatch, emulator, [good["id"], locked["id"]])
    with dg.instance_for_test() as instance:
        result = materialize(current_window(), instance=instance)
        logs = [e for e in instance.all_logs(result.run_id) if e.user_message and locked["id"] in e.user_message]
    reported = [e for e in logs if "Development Mode" in e.user_message]  # the error's own words
    assert len(reported) == 1 and reported[0].level == logging.WARNING


@pytest.mark.slow
def test_429s_and_the_time_every_worker_paused_are_in_the_metadata_and_the_log(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator
) -> None:
    long, rows = playlist("long", 160)
    emulator.add_playlist(long, rows)
    emulator.inject("rate_limit", path=r"/items$", query={"offset": "100"}, times=1, retry_after=1)
    api_env(monkeypatch, emulator, [long["id"]])
    with dg.instance_for_test() as instance:
        result = materialize(current_window(), instance=instance)
        warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING and "429" in (e.user_message or "")]
    values = metadata_of(result)
    assert values["dagster/row_count"] == 160
    assert values["rate_limited_429s"] == 1 and 0.9 <= values["time_paused_s"] <= 1.1
    assert len([w for w in warnings if "every worker paused 1.0 s" in w]) == 1


def test_no_playlist_readable_fails_and_keeps_the_window_as_it_was(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator
) -> None:
    good, rows = playlist("good", 30)
    emulator.add_playlist(good, rows)
    api_env(monkeypatch, emulator, [good["id"]])
    window = current_window()
    materialize(window)
    before = local_store().read_manifest(window)
    emulator.inject("status", path=r"/playlists/", times=None, status=503)
    result = materialize(window, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "No playlist could be read" in str(failure.event_specific_data.error)
    assert local_store().read_manifest(window) == before


def test_live_api_refuses_windows_that_closed_long_ago(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    good, rows = playlist("good", 5)
    emulator.add_playlist(good, rows)
    api_env(monkeypatch, emulator, [good["id"]])
    result = materialize("2026-01-05-08:00", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS" in str(failure.event_specific_data.error)
    assert emulator.count("/v1/") == 0 and local_store().read_manifest("2026-01-05-08:00") is None


@pytest.mark.slow
def test_production_writes_snapshots_to_s3_from_the_api_in_both_shapes(
    monkeypatch: pytest.MonkeyPatch, s3_env: dict[str, str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_DEPLOYMENT", "production")
    monkeypatch.setenv("SPOTIFY_ASSETS_S3_BUCKET", s3_env["bucket"])
    monkeypatch.setenv("SPOTIFY_ASSETS_S3_PREFIX", "spotify/raw-test")
    for name, value in {"SNOWFLAKE_ACCOUNT": "acct", "SNOWFLAKE_USER": "svc", "SNOWFLAKE_PASSWORD": "pw"}.items():
        monkeypatch.setenv(name, value)
    window = current_window()
    for shape in ("2026", "2025"):
        with SpotifyEmulator(shape=shape, dev_mode_fields=False) as emu:
            meta, rows = playlist(f"prod-{shape}", 130)
            emu.add_playlist(meta, rows)
            emu.inject("status", path=r"/(items|tracks)$", times=1, status=503)
            emu.inject("unauthorized", path=r"/(items|tracks)$", times=1)
            api_env(monkeypatch, emu, [meta["id"]])
            result = materialize(window)
        meta_values = metadata_of(result)
        assert meta_values["manifest"].startswith(f"s3://{s3_env['bucket']}/spotify/raw-test/")
        assert (meta_values["retries"], meta_values["token_renewals"]) == (1, 1)
        store = SnapshotStore(S3Backend(boto3.client("s3"), s3_env["bucket"], "spotify/raw-test"))
        # The other shape's playlist, no longer configured, is kept in the window (never worse).
        doc = {d["playlist_id"]: d for d in store.read_window(window)}[meta["id"]]
        assert len(doc["items"]) == 130
        key = "item" if shape == "2026" else "track"
        assert [r[key]["id"] for r in doc["items"]] == [r["item"]["id"] for r in rows]
        assert [r[key]["popularity"] for r in doc["items"]] == [r["item"]["popularity"] for r in rows]
        # The object itself, as any other S3 reader (Athena, Snowpipe) would fetch it.
        manifest = store.read_manifest(window)
        body = boto3.client("s3").get_object(Bucket=s3_env["bucket"], Key=f"spotify/raw-test/{manifest.documents[meta['id']]['key']}")["Body"].read()
        assert json.loads(body)["extraction"]["container"] == ("items" if shape == "2026" else "tracks")
