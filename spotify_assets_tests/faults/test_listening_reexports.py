"""Issue 12, cases 2 and 7 (listening): cumulative re-exports must not double the plays, an
overwritten file must be noticed, an oversize file must be refused by name while the others
load, and an old `streams` table (no play_id) must be upgraded keeping every distinct play.

Real local files and DuckDB, and the production path (moto's S3, fakesnow's Snowflake). Each
test counts rows before and after. Before this change (main): a re-export with 5 new plays
added 374 rows; four cumulative exports of 1,175 plays left 2,975 rows; an overwritten file
was not seen by the sensor.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import orjson
import pytest

from spotify_assets.defs.listening.assets import streams
from spotify_assets.lib.listening.files import LISTENING_PREFIX
from spotify_assets.defs.resources import DuckDBWarehouse, LocalRawSnapshotStore, build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.listening.exports import parse_export
from spotify_assets.lib.tables.schema import STREAMS
from spotify_assets.lib.warehouse import duckdb as duckdb_target, snowflake as snowflake_target


def _plays(n: int, *, start: int = 0, pad: str = "") -> list[dict[str, Any]]:
    """n distinct extended-format plays, one every 3 minutes from 2024-01-01."""
    out = []
    for i in range(start, start + n):
        minutes = 3 * i
        out.append({
            "ts": f"2024-{1 + minutes // 43200:02d}-{1 + minutes // 1440 % 30:02d}T{minutes // 60 % 24:02d}:{minutes % 60:02d}:00Z",
            "ms_played": 1000 + i % 7 * 100,
            "spotify_track_uri": f"spotify:track:{'t' * 10}{i % 97:012d}",
            "master_metadata_track_name": f"Track {i % 97}{pad}",
            "master_metadata_album_artist_name": "Artist",
            "platform": "ios",
            "ip_addr": "192.0.2.1",
        })
    return out


def _endsong(plays: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for play in plays:
        row = {k: v for k, v in play.items() if k != "ip_addr"}
        out.append({**row, "ip_addr_decrypted": play["ip_addr"], "username": "ana"})
    return out


def _folder() -> Path:
    return load_settings().data_dir / LISTENING_PREFIX


def _drop(name: str, data: bytes) -> Path:
    path = _folder() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _resources() -> dict[str, Any]:
    settings = load_settings()
    return {
        "raw_store": LocalRawSnapshotStore(base_dir=str(settings.data_dir)),
        "warehouse": DuckDBWarehouse(database=str(settings.warehouse.duckdb_path)),
        "settings": settings,
    }


def _ingest(resources: dict[str, Any] | None = None, instance: dg.DagsterInstance | None = None) -> tuple[dict[str, Any], dg.AssetCheckEvaluation]:
    result = dg.materialize([streams], resources=resources or _resources(), instance=instance)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    (check,) = result.get_asset_check_evaluations()
    return {k: v.value for k, v in event.materialization.metadata.items()}, check


def _counts() -> tuple[int, int]:
    with duckdb.connect(str(load_settings().warehouse.duckdb_path), read_only=True) as conn:
        return conn.execute("SELECT COUNT(*), COUNT(DISTINCT play_id) FROM analytics.streams").fetchone()


@pytest.mark.slow
def test_a_cumulative_re_export_adds_only_its_new_plays() -> None:
    started = time.monotonic()
    _drop("ana/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(369)))
    meta, _ = _ingest()
    assert meta["plays_added"] == 369 and _counts() == (369, 369)
    # the next export holds the whole history again, plus 5 new plays (before: +374 rows)
    _drop("ana/export-2/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(374)))
    meta, check = _ingest()
    assert check.passed
    assert meta["plays_added"] == 5 and meta["duplicates_skipped"] == 369 and meta["rows_read"] == 374
    assert _counts() == (374, 374)
    # the same file twice more, under other names and in a zip: nothing added
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(374)))
    _drop("ana/my_spotify_data.zip", archive.getvalue())
    _drop("ana/copy/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(374)))
    meta, _ = _ingest()
    assert meta["plays_added"] == 0 and meta["files_read"] == 2 and meta["duplicates_skipped"] == 748
    assert _counts() == (374, 374)
    meta, _ = _ingest()  # nothing changed: no file is read
    assert meta["files_read"] == 0 and meta["files_already_ingested"] == 4 and _counts() == (374, 374)
    with duckdb.connect(str(load_settings().warehouse.duckdb_path), read_only=True) as conn:
        registry = conn.execute("SELECT SUM(rows_read), SUM(rows_added), COUNT(*) FROM analytics.listening_files").fetchone()
    assert registry == (369 + 374 * 3, 374, 4)
    assert time.monotonic() - started < 120


def test_a_listeners_repeated_exports_end_with_one_row_per_play() -> None:
    # four cumulative exports in the two extended formats, one inside a zip (before: 2,975 rows)
    history = _plays(1175)
    _drop("ana/2023/endsong_0.json", orjson.dumps(_endsong(history[:300])))
    _drop("ana/2024/Streaming_History_Audio_2024_0.json", orjson.dumps(history[:600]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("MyData/endsong_0.json", orjson.dumps(_endsong(history[:900])))
    _drop("ana/2025/my_spotify_data.zip", archive.getvalue())
    _drop("ana/2026/Streaming_History_Audio_2024_0.json", orjson.dumps(history))
    meta, _ = _ingest()
    assert meta["rows_read"] == 300 + 600 + 900 + 1175 and meta["plays_added"] == 1175
    assert _counts() == (1175, 1175)
    with duckdb.connect(str(load_settings().warehouse.duckdb_path), read_only=True) as conn:
        # every play is there once, identified independently of play_id
        distinct = conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT listener, played_at, track_uri, ms_played FROM analytics.streams)"
        ).fetchone()[0]
    assert distinct == 1175


@pytest.mark.slow
def test_an_oversize_file_is_refused_by_name_and_the_others_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_LISTENING_MAX_FILE_MB", "1")
    big = orjson.dumps(_plays(4000, pad=" " * 300))
    assert len(big) > 2**20
    _drop("ana/Streaming_History_Audio_2024_0.json", big)
    _drop("ben/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(50)))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:  # compresses to ~50 kB
        z.writestr("MyData/Streaming_History_Audio_2024_1.json", big)
        z.writestr("MyData/Streaming_History_Audio_2024_2.json", orjson.dumps(_plays(20, start=5000)))
    assert len(archive.getvalue()) < 2**20
    _drop("chloe/my_spotify_data.zip", archive.getvalue())
    meta, check = _ingest()
    assert meta["files_refused"] == 2 and meta["files_read"] == 2 and meta["plays_added"] == 70
    assert _counts() == (70, 70)
    assert not check.passed
    assert "ana/Streaming_History_Audio_2024_0.json" in check.description
    assert "chloe/my_spotify_data.zip!MyData/Streaming_History_Audio_2024_1.json" in check.description
    assert "SPOTIFY_ASSETS_LISTENING_MAX_FILE_MB" in check.description and "1 MB" in check.description
    # with a higher limit they load on the next run (refused files are not recorded as read)
    monkeypatch.setenv("SPOTIFY_ASSETS_LISTENING_MAX_FILE_MB", "8")
    meta, check = _ingest()
    assert check.passed and meta["files_read"] == 2 and meta["plays_added"] == 8000  # two listeners
    assert _counts() == (8070, 8070)


def test_an_old_streams_table_is_upgraded_in_place_keeping_every_distinct_play() -> None:
    from datetime import datetime, timezone

    # the table as main wrote it: no play_id, the same plays twice from two cumulative exports
    frames = []
    for name, n in (("ana/a/Streaming_History_Audio_2024_0.json", 369), ("ana/b/Streaming_History_Audio_2024_0.json", 374)):
        data = orjson.dumps(_plays(n))
        frames.append(parse_export(data, fmt="extended", listener="ana", source_file=name,
                                   ingested_at=datetime(2026, 1, 1, tzinfo=timezone.utc), ip_hash_key=None))
    old_columns = [c for c in STREAMS.columns if c.name != "play_id"]
    path = load_settings().warehouse.duckdb_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA analytics")
        conn.execute("CREATE TABLE analytics.streams (" + ", ".join(f"{c.name} {duckdb_target.DIALECT.sql_type(c)}" for c in old_columns) + ")")
        for frame in frames:
            old = frame.drop(columns=["play_id"])  # noqa: F841 (used by the SQL below)
            conn.execute("INSERT INTO analytics.streams SELECT * FROM old")
        assert conn.execute("SELECT COUNT(*) FROM analytics.streams").fetchone()[0] == 743
        distinct_before = conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT listener, played_at, track_uri, ms_played FROM analytics.streams)"
        ).fetchone()[0]
    assert distinct_before == 374
    # a new export arrives: the table is upgraded first, then only its new plays are added
    _drop("ana/c/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(380)))
    meta, _ = _ingest()
    assert meta["upgraded_rows_before"] == 743 and meta["upgraded_rows_after"] == 374
    assert meta["plays_added"] == 6 and _counts() == (380, 380)
    with duckdb.connect(str(path), read_only=True) as conn:
        kept = conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT listener, played_at, track_uri, ms_played FROM analytics.streams)"
        ).fetchone()[0]
        nulls = conn.execute("SELECT COUNT(*) FROM analytics.streams WHERE play_id IS NULL").fetchone()[0]
    assert kept == 380 and nulls == 0


@pytest.mark.slow
def test_production_s3_and_snowflake_add_only_new_plays(monkeypatch, s3_env, fakesnow_server, snowflake_database, emulator) -> None:
    import boto3
    import snowflake.connector

    from spotify_assets_tests.support.production import configure

    configure(monkeypatch, s3_env=s3_env, fakesnow_server=fakesnow_server, database=snowflake_database,
              emulator=emulator, playlist_ids=["x" * 22])
    everything = build_resources(load_settings())
    resources = {key: everything[key] for key in ("raw_store", "warehouse", "settings")}
    s3 = boto3.client("s3")

    def put(name: str, data: bytes) -> None:
        s3.put_object(Bucket=s3_env["bucket"], Key=f"spotify-assets/{LISTENING_PREFIX}{name}", Body=data)

    def count() -> tuple[int, int]:
        with snowflake.connector.connect(**fakesnow_server) as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT play_id) FROM {snowflake_database}.ANALYTICS.STREAMS")
            return tuple(cur.fetchone())

    put("ana/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(69)))
    assert _ingest(resources)[0]["plays_added"] == 69 and count() == (69, 69)
    put("ana/2/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(74)))
    put("ana/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(75)))  # overwritten in place
    meta, _ = _ingest(resources)
    assert meta["files_read"] == 2 and meta["plays_added"] == 6 and count() == (75, 75)
    meta, _ = _ingest(resources)
    assert meta["files_read"] == 0 and meta["plays_added"] == 0 and count() == (75, 75)


@pytest.mark.slow
def test_an_old_snowflake_streams_table_is_upgraded_in_place(monkeypatch, s3_env, fakesnow_server, snowflake_database, emulator) -> None:
    from datetime import datetime, timezone

    import snowflake.connector

    from spotify_assets_tests.support.production import configure
    from spotify_assets_tests.support.snowflake import insert_rows

    configure(monkeypatch, s3_env=s3_env, fakesnow_server=fakesnow_server, database=snowflake_database,
              emulator=emulator, playlist_ids=["x" * 22])
    everything = build_resources(load_settings())
    resources = {key: everything[key] for key in ("raw_store", "warehouse", "settings")}
    old_columns = [c for c in STREAMS.columns if c.name != "play_id"]
    table = f"{snowflake_database}.ANALYTICS.STREAMS"
    with snowflake.connector.connect(**fakesnow_server, database=snowflake_database) as conn:
        cur = conn.cursor()
        cur.execute(f"CREATE SCHEMA {snowflake_database}.ANALYTICS")
        cur.execute(f"USE SCHEMA {snowflake_database}.ANALYTICS")
        cur.execute(f"CREATE TABLE {table} (" + ", ".join(f"{c.name} {snowflake_target.DIALECT.sql_type(c)}" for c in old_columns) + ")")
        for name, n in (("ana/a/Streaming_History_Audio_2024_0.json", 30), ("ana/b/Streaming_History_Audio_2024_0.json", 34)):
            frame = parse_export(orjson.dumps(_plays(n)), fmt="extended", listener="ana", source_file=name,
                                 ingested_at=datetime(2026, 1, 1, tzinfo=timezone.utc), ip_hash_key=None)
            insert_rows(conn, frame.drop(columns=["play_id"]).rename(columns=str.upper), "STREAMS")
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        assert cur.fetchone()[0] == 64
    meta, _ = _ingest(resources)  # nothing new dropped: the upgrade alone
    assert meta["upgraded_rows_before"] == 64 and meta["upgraded_rows_after"] == 34
    with snowflake.connector.connect(**fakesnow_server) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT PLAY_ID), COUNT(DISTINCT PLAYED_AT) FROM {table}")
        assert tuple(cur.fetchone()) == (34, 34, 34)


def test_a_damaged_zip_member_is_named_and_the_others_load() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("MyData/Streaming_History_Audio_2024_0.json", orjson.dumps(_plays(10)))
        z.writestr("MyData/Streaming_History_Audio_2024_1.json", orjson.dumps(_plays(10, start=100)))
    data = bytearray(archive.getvalue())
    at = data.index(b"spotify:track:")  # inside the first member: its CRC no longer matches
    data[at] = ord("X")
    _drop("ana/my_spotify_data.zip", bytes(data))
    meta, check = _ingest()
    assert meta["plays_added"] == 10 and meta["files_unreadable"] == 1 and _counts() == (10, 10)
    assert "ana/my_spotify_data.zip!MyData/Streaming_History_Audio_2024_0.json" in check.description
