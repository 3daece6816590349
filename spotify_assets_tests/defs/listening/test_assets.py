"""Listening-history exports dropped into the listening folder, ingested by `listening_job`:
each file once, a broken file named and isolated, zips opened, the IP address never stored;
locally (files, DuckDB) and in production (moto's S3, fakesnow's Snowflake)."""

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import dagster as dg
import duckdb
import orjson
import pytest
import snowflake.connector

from spotify_assets.definitions import defs
from spotify_assets.lib.listening.files import LISTENING_PREFIX
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.dashboard.render import chart_count, section_html
from spotify_assets.lib.samples.listening import sample_export_files
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.production import configure

SAMPLE_PLAYS = 3122  # the bundled synthetic exports, video history excluded
SAMPLE_IPS = ("192.0.2.", "198.51.100.", "203.0.113.", "2001:db8")


def _run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs().resolve_job_def("listening_job").execute_in_process(instance=instance, raise_on_error=False)


def _streams_meta(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "streams"]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "exports_readable"]
    return check


def _folder() -> Path:
    return load_settings().data_dir / LISTENING_PREFIX


def _drop(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = _folder() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _table() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(load_settings().warehouse.duckdb_path), read_only=True)


@pytest.mark.slow
def test_each_file_is_ingested_once_and_a_broken_one_is_named_and_isolated() -> None:
    files = sample_export_files()
    _drop(files)
    _drop({"dan/Streaming_History_Audio_2024_0.json": b'[{"ts": "2024-01-01T10:00:00Z", "ms_played": 1000}, {"ts": "yesterday", "ms_played": 5}]'})
    with dg.instance_for_test() as instance:
        first = _run(instance)
        assert first.success
        meta = _streams_meta(first)
        assert meta["plays_added"] == SAMPLE_PLAYS and meta["dagster/row_count"] == SAMPLE_PLAYS
        check = _check(first)
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert "dan/Streaming_History_Audio_2024_0.json: row 1" in check.description
        with _table() as conn:
            by_listener = dict(conn.execute("SELECT listener, COUNT(*) FROM analytics.streams GROUP BY 1").fetchall())
            assert set(by_listener) == {"ana", "ben", "chloe"} and sum(by_listener.values()) == SAMPLE_PLAYS
            assert conn.execute("SELECT COUNT(*) FROM analytics.listening_by_country").fetchone()[0] > 0
        # the job rebuilt the dashboard: every listening chart drawn, nothing fetched from the network
        (report,) = [e for e in first.get_asset_materialization_events() if e.asset_key.to_user_string() == "dashboard"]
        page = (load_settings().data_dir / "dashboard" / "index.html").read_text(encoding="utf-8")
        assert report.materialization.metadata["open"].value == f"file://{load_settings().data_dir / 'dashboard' / 'index.html'}"
        listening_part = section_html(page, "listening-kpis")
        assert chart_count(page, "listening-kpis") >= 9 and "no data yet" not in listening_part
        assert not re.search(r"""(src|href)\s*=\s*["']?https?:|url\(\s*["']?https?:|<script|<link|<img""", page)

        # the same files again, one more copy under another name, and the same bytes in a zip
        _drop(files)
        name, data = next((n, d) for n, d in files.items() if n.endswith("endsong_0.json"))
        _drop({name.replace("ben/", "ben/backup/"): data})
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("Spotify Extended Streaming History/" + name.rsplit("/", 1)[-1], data)
        _drop({"ben/my_spotify_data.zip": archive.getvalue()})
        again = _run(instance)
        assert again.success
        meta = _streams_meta(again)
        # rewritten files (new tags) and the copies are read again; every play is already there
        assert meta["plays_added"] == 0 and meta["dagster/row_count"] == SAMPLE_PLAYS
        audio_files = len([n for n in files if "Video" not in n])
        assert meta["files_read"] == audio_files + 2 and meta["files_already_ingested"] == 0
        assert meta["duplicates_skipped"] == meta["rows_read"] == SAMPLE_PLAYS + 2 * len(json.loads(data))
        # nothing changed since: no file is read at all
        unchanged = _streams_meta(_run(instance))
        assert unchanged["files_read"] == 0 and unchanged["files_already_ingested"] == audio_files + 2
        assert unchanged["plays_added"] == 0 and unchanged["dagster/row_count"] == SAMPLE_PLAYS

        # a new zip with a file not seen before is opened and ingested
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("Spotify Account Data/StreamingHistory_music_9.json", b'[{"endTime": "2026-01-02 20:15", "artistName": "A", "trackName": "T", "msPlayed": 61000}]')
        _drop({"erin/my_spotify_data.zip": archive.getvalue()})
        third = _run(instance)
        assert _streams_meta(third)["plays_added"] == 1
        with _table() as conn:
            row = conn.execute("SELECT listener, source_file, played_at FROM analytics.streams WHERE listener = 'erin'").fetchone()
            assert row[1] == "erin/my_spotify_data.zip!Spotify Account Data/StreamingHistory_music_9.json"
            assert row[2].isoformat() == "2026-01-02T20:15:00+00:00"


@pytest.mark.slow
def test_the_ip_address_is_never_stored(monkeypatch) -> None:
    _drop(sample_export_files())
    with dg.instance_for_test() as instance:
        assert _run(instance).success
    with _table() as conn:
        rows = conn.execute("SELECT * FROM analytics.streams").fetchall()
        text = "\n".join("|".join("" if v is None else str(v) for v in r) for r in rows)
        assert not any(ip in text for ip in SAMPLE_IPS)
        assert conn.execute("SELECT COUNT(ip_hash) FROM analytics.streams").fetchone()[0] == 0  # no key: no hash either
    # with a key, a keyed hash is kept (so distinct addresses can be counted), never the address
    shutil.rmtree(load_settings().data_dir)
    monkeypatch.setenv("SPOTIFY_ASSETS_IP_HASH_KEY", "a-secret-key")
    _drop(sample_export_files())
    with dg.instance_for_test() as instance:
        assert _run(instance).success
    with _table() as conn:
        hashed = conn.execute("SELECT COUNT(ip_hash), COUNT(DISTINCT ip_hash) FROM analytics.streams").fetchone()
        assert hashed[0] > 0 and hashed[1] > 1
        text = "\n".join("|".join("" if v is None else str(v) for v in r) for r in conn.execute("SELECT * FROM analytics.streams").fetchall())
        assert not any(ip in text for ip in SAMPLE_IPS) and "a-secret-key" not in text


@pytest.mark.slow
def test_production_reads_exports_from_s3_into_snowflake(monkeypatch, s3_env, fakesnow_server, snowflake_database, emulator: SpotifyEmulator) -> None:
    import boto3

    configure(monkeypatch, s3_env=s3_env, fakesnow_server=fakesnow_server, database=snowflake_database, emulator=emulator, playlist_ids=["x" * 22])
    s3 = boto3.client("s3")
    for name, data in sample_export_files().items():
        s3.put_object(Bucket=s3_env["bucket"], Key=f"spotify-assets/{LISTENING_PREFIX}{name}", Body=data)
    with dg.instance_for_test() as instance:
        result = _run(instance)
        assert result.success, [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert _streams_meta(result)["plays_added"] == SAMPLE_PLAYS
        assert _streams_meta(_run(instance))["plays_added"] == 0
    with snowflake.connector.connect(**fakesnow_server) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT listener) FROM {snowflake_database}.ANALYTICS.STREAMS")
        assert cur.fetchone() == (SAMPLE_PLAYS, 3)
        cur.execute(f"SELECT COUNT(*) FROM {snowflake_database}.ANALYTICS.LISTENING_BY_COUNTRY")
        assert cur.fetchone()[0] > 0
    report = boto3.client("s3").get_object(Bucket=s3_env["bucket"], Key="spotify-assets/dashboard/index.html")
    assert report["ContentType"].startswith("text/html")
    assert chart_count(report["Body"].read().decode("utf-8"), "listening-kpis") >= 9


def test_the_sensor_starts_the_job_when_the_folder_changes() -> None:
    from spotify_assets.defs.listening.assets import listening_files_sensor

    definitions = defs()
    sensor = definitions.resolve_sensor_def("listening_files_sensor")
    assert sensor.job_name == "listening_job" and sensor.default_status == dg.DefaultSensorStatus.RUNNING
    raw_store = definitions.resources["raw_store"]
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"raw_store": raw_store, "warehouse": definitions.resources["warehouse"]})
        assert isinstance(listening_files_sensor(context), dg.SkipReason)  # empty folder
        _drop(sample_export_files())
        first = listening_files_sensor(context)
        assert isinstance(first, dg.RunRequest)
        assert isinstance(listening_files_sensor(context), dg.SkipReason)  # nothing new since
        _drop({"dan/StreamingHistory_music_0.json": b"[]"})
        second = listening_files_sensor(context)
        assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key


@pytest.mark.slow
def test_a_file_overwritten_in_place_is_seen_by_the_sensor_and_adds_only_new_plays() -> None:
    """Issue 12 case 2 (kept here, not in faults/: a sensor evaluated under a test instance
    makes a later fresh load of the definitions fail in this process; see the report)."""
    from spotify_assets.defs.listening.assets import listening_files_sensor
    from spotify_assets_tests.faults.test_listening_reexports import _counts, _ingest, _plays, _resources
    from spotify_assets_tests.faults.test_listening_reexports import _drop as _drop_file

    resources = _resources()
    path = _drop_file("ana/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(369)))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        first = listening_files_sensor(context)
        assert isinstance(first, dg.RunRequest)
        meta, _ = _ingest(resources, instance)
        assert meta["plays_added"] == 369
        assert isinstance(listening_files_sensor(context), dg.SkipReason)
        # same name, new content (the whole history again with 5 new plays): before, no run
        path.write_bytes(orjson.dumps(_plays(374)))
        request = listening_files_sensor(context)
        assert isinstance(request, dg.RunRequest) and request.run_key != first.run_key
        meta, _ = _ingest(resources, instance)
        assert meta["files_read"] == 1 and meta["plays_added"] == 5
        assert isinstance(listening_files_sensor(context), dg.SkipReason)
    assert _counts() == (374, 374)


def _exports_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Spotify Account Data/StreamingHistory_music_9.json", b'[{"endTime": "2026-01-02 20:15", "artistName": "A", "trackName": "T", "msPlayed": 61000}]')
    return archive.getvalue()


@pytest.mark.slow
def test_the_sensor_launches_nothing_on_an_up_to_date_instance_and_one_run_per_new_file() -> None:
    """Issue 13: on the first tick after `dagster dev` started (no cursor), listening_job was
    launched although every file was already ingested ("0 new export file(s)")."""
    from spotify_assets.defs.listening.assets import listening_files_sensor
    from spotify_assets.lib.listening.exports import detect_format
    from spotify_assets_tests.faults.test_listening_reexports import _ingest, _resources

    def runs(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
        return list(listening_files_sensor.evaluate_tick(context).run_requests or [])

    resources = _resources()
    files = sample_export_files()
    _drop({**files, "erin/my_spotify_data.zip": _exports_zip(), "notes.txt": b"not an export"})
    exports = len([n for n in files if detect_format(n)]) + 1  # video history and notes.txt are not read
    with dg.instance_for_test() as instance:
        assert _ingest(resources, instance)[0]["plays_added"] == SAMPLE_PLAYS + 1
        # a fresh instance, an old-format cursor (issue 12's digest), a damaged one: all ingested, no run
        for cursor in (None, "4f1c2a9e0b7d3c55", "{not json"):
            context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
            assert runs(context) == [], cursor
            assert len(json.loads(context.cursor)["seen"]) == exports
        # from the cursor now: files that are not exports start nothing
        _drop({"notes2.txt": b"x", "ana/Streaming_History_Video_2024.json": b"[]"})
        assert runs(context) == []
        # one new file: exactly one run, once
        _drop({"dan/StreamingHistory_music_0.json": b'[{"endTime": "2026-01-03 08:00", "artistName": "B", "trackName": "U", "msPlayed": 90000}]'})
        (first,) = runs(context)
        assert runs(context) == []
        # one file overwritten in place (new content, same name): exactly one run, another key
        (name, data), *_ = [(n, d) for n, d in files.items() if detect_format(n)]
        (_folder() / name).write_bytes(data + b" ")
        (second,) = runs(context)
        assert second.run_key != first.run_key and runs(context) == []
        # a file removed: nothing to do
        (_folder() / "notes.txt").unlink()
        (_folder() / "dan/StreamingHistory_music_0.json").unlink()
        assert runs(context) == [] and len(json.loads(context.cursor)["seen"]) == exports
        # a fresh cursor over a warehouse that lacks one file: one run for it
        _drop({"dan/StreamingHistory_music_1.json": b"[]"})
        assert len(runs(dg.build_sensor_context(instance=instance, resources=resources))) == 1


@pytest.mark.slow
def test_the_sensor_says_so_when_it_cannot_read_what_is_ingested(monkeypatch) -> None:
    from spotify_assets.defs.listening import assets as listening_defs
    from spotify_assets.lib.warehouse.duckdb import DuckDBDatabase
    from spotify_assets_tests.faults.test_listening_reexports import _ingest, _resources

    resources = _resources()
    _drop(sample_export_files())
    monkeypatch.setattr(listening_defs, "SENSOR_LOCK_WAIT_S", 0.2)
    with dg.instance_for_test() as instance:
        _ingest(resources, instance)
        context = dg.build_sensor_context(instance=instance, resources=resources)
        # a run holds the warehouse: the tick says why it launches nothing, and keeps no cursor
        with DuckDBDatabase(load_settings().warehouse.duckdb_path).connect(write=True):
            skipped = listening_defs.listening_files_sensor(context)
        assert isinstance(skipped, dg.SkipReason) and "could not read which export files are already ingested" in skipped.skip_message
        assert "WarehouseLockTimeout" in skipped.skip_message and context.cursor is None
        # the next tick reads it: everything is ingested, no run
        assert isinstance(listening_defs.listening_files_sensor(context), dg.SkipReason) and context.cursor
