"""The lake in production: the Spotify API emulator -> raw snapshots in S3 -> Iceberg tables on
S3 registered in AWS Glue -> views, checks and features through Athena's API, over loopback
with the real boto3 and pyiceberg against moto's S3 and Glue servers (started by the tests).

moto's Athena runs no SQL, so the Athena client is the stand-in of `support/lake.py`: every
statement must parse in Athena's dialect, and runs transpiled on DuckDB over the lake."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest
import sqlglot

from spotify_assets.defs import lake as lake_resources
from spotify_assets.defs.analytics.views import view_assets
from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.tables.schema import SONGS, TABLES
from spotify_assets.lib.warehouse import iceberg
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import artist, playlist, row, track
from spotify_assets_tests.support.lake import FakeAthena
from spotify_assets_tests.support.pipeline_env import api_env
from spotify_assets_tests.support.windows import windowed, windows

pytestmark = pytest.mark.slow

PLAYLIST_VIEWS = [v for v in view_assets if not v.key.to_user_string().startswith("listening_")]
W1 = Window(datetime(2026, 11, 20, 8, tzinfo=timezone.utc), datetime(2026, 11, 20, 16, tzinfo=timezone.utc))
W2 = Window(W1.end, W1.end + timedelta(hours=8))


def _glue_client(bucket: str, database: str, views_dir: Path) -> iceberg.IcebergClient:
    return iceberg.IcebergClient(
        lambda: iceberg.glue_catalog(f"s3://{bucket}/lake", lake_resources.aws_properties()),
        database,
        lambda c: iceberg.LocalSqlEngine(c, views_dir),
    )


def _songs(window: Window, ids: list[str]) -> pd.DataFrame:
    frame = SONGS.empty_frame().reindex(range(len(ids)))
    frame["window_start"] = pd.Series([window.start] * len(ids), dtype="datetime64[us, UTC]")
    frame["song_id"] = ids
    return SONGS.conform(frame)


def test_glue_tables_keep_the_window_guarantees(s3_env: dict[str, str], tmp_path: Path) -> None:
    lake = _glue_client(s3_env["bucket"], "glue_guarantees", tmp_path)
    lake.replace("songs", _songs(W1, ["a", "b"]), W1)
    lake.replace("songs", _songs(W2, ["c"]), W2)
    w2_files = {t.file.file_path for t in lake.load("songs").scan(row_filter=iceberg.window_filter(W2)).plan_files()}
    snapshots = len(lake.load("songs").snapshots())
    for _ in range(3):
        result = lake.replace("songs", _songs(W1, ["d"]), W1)
    assert (result.rows_replaced, result.table_rows) == (1, 2)
    table = lake.load("songs")
    assert len(table.snapshots()) == snapshots + 3  # one snapshot a run
    assert sorted(lake.scan("songs").column("song_id").to_pylist()) == ["c", "d"]
    assert {t.file.file_path for t in table.scan(row_filter=iceberg.window_filter(W2)).plan_files()} == w2_files
    assert all(p.startswith(f"s3://{s3_env['bucket']}/lake/") for p in w2_files)
    lake.replace("songs", SONGS.empty_frame(), W1)  # an empty window
    assert lake.scan("songs", W1).num_rows == 0 and lake.scan("songs", W2).num_rows == 1
    # registered in Glue as an Iceberg table, at the metadata pyiceberg committed last
    glue = boto3.client("glue").get_table(DatabaseName="glue_guarantees", Name="songs")["Table"]
    assert glue["Parameters"]["table_type"] == "ICEBERG"
    assert glue["Parameters"]["metadata_location"] == lake.load("songs").metadata_location


def test_glue_refuses_a_commit_made_on_a_stale_version(s3_env: dict[str, str], tmp_path: Path) -> None:
    """Two writers load the same version; the second commit is checked by Glue's VersionId
    (pyiceberg then refreshes and retries what it can), so no write is lost."""
    lake = _glue_client(s3_env["bucket"], "glue_concurrency", tmp_path)
    lake.replace("songs", _songs(W1, ["a"]), W1)
    first, second = lake.load("songs"), lake.load("songs")
    first.append(iceberg.to_arrow("songs", _songs(W2, ["b"])))
    second.append(iceberg.to_arrow("songs", _songs(W2, ["c"])))
    assert sorted(lake.scan("songs").column("song_id").to_pylist()) == ["a", "b", "c"]
    assert len(lake.load("songs").snapshots()) == 3


@pytest.fixture
def production_lake(monkeypatch: pytest.MonkeyPatch, s3_env: dict[str, str], emulator: SpotifyEmulator, tmp_path: Path):
    a_meta, a_rows = playlist("lake-a", 60)
    b_meta, _ = playlist("lake-b", 0)
    duet = track("lake-duet", artists=3, popularity=77)
    duet["album"]["artists"] = [artist("someone else")]
    emulator.add_playlist(a_meta, a_rows)
    emulator.add_playlist(b_meta, [row(duet), *a_rows[:5], row(duet), row(None)])
    api_env(monkeypatch, emulator, [a_meta["id"], b_meta["id"]])
    database = "spotify_assets"
    for name, value in {
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_WAREHOUSE": "iceberg",
        "SPOTIFY_ASSETS_S3_BUCKET": s3_env["bucket"],
        "SPOTIFY_ASSETS_LAKE_DATABASE": database,
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("glue").create_database(DatabaseInput={"Name": database})  # as sql/athena/setup.sh does
    athena = FakeAthena(_glue_client(s3_env["bucket"], database, tmp_path / "athena"), tmp_path / "athena")
    monkeypatch.setattr(lake_resources, "make_athena_client", lambda: athena)
    return athena, database, s3_env["bucket"]


def _materialize(key: str) -> dg.ExecuteInProcessResult:
    w = windowed()
    return dg.materialize(
        [w.raw, w.tables, *PLAYLIST_VIEWS, w.raw_checks, w.table_checks],
        partition_key=key,
        resources=build_resources(load_settings()),
    )


def test_raw_in_s3_tables_in_glue_views_and_checks_through_athena(production_lake) -> None:
    athena, database, bucket = production_lake
    key = windows().get_partition_keys()[-1]
    result = _materialize(key)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and [f"{c.asset_key.to_user_string()}/{c.check_name}" for c in checks if not c.passed] == []
    raw = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="spotify-assets/raw/")
    assert raw["KeyCount"] > 0  # raw snapshots in S3
    glue = {t["Name"]: t for t in boto3.client("glue").get_tables(DatabaseName=database)["TableList"]}
    assert set(TABLES) <= set(glue) and all(glue[t]["Parameters"]["table_type"] == "ICEBERG" for t in TABLES)

    lake = iceberg.IcebergClient(
        lambda: iceberg.glue_catalog(f"s3://{bucket}/spotify-assets/lake", lake_resources.aws_properties()),
        database,
        lambda c: iceberg.LocalSqlEngine(c, "/nonexistent"),
    )
    once = {t: lake.load(t).scan().to_pandas().sort_values(list(TABLES[t].key)).reset_index(drop=True) for t in TABLES}
    assert len(once["playlist_tracks"]) == 60 + 7 and len(once["songs"]) == 61 and len(once["playlists"]) == 2
    rerun = dg.materialize([windowed().tables], partition_key=key, resources=build_resources(load_settings()))
    assert rerun.success  # the tables' step again (three runs = one: test_glue_tables_keep_the_window_guarantees)
    again = {t: lake.load(t).scan().to_pandas().sort_values(list(TABLES[t].key)).reset_index(drop=True) for t in TABLES}
    for t in TABLES:  # a re-run changes nothing
        cols = [c for c in once[t].columns if c != "extracted_at"]
        pd.testing.assert_frame_equal(once[t][cols], again[t][cols], obj=t)

    # everything Athena was sent is Athena SQL; the views were created there
    assert athena.statements and all(sqlglot.parse_one(s, read="athena") for s in athena.statements)
    created = {iceberg.view_name(s) for s in athena.statements} - {None}
    assert created == {v.key.to_user_string() for v in PLAYLIST_VIEWS}
    assert any("information_schema" in s for s in athena.statements)  # the view assets described their columns
    engine = iceberg.AthenaEngine(lake, "spotify_assets", athena=athena)
    with engine.reader() as read:
        top = read(f"SELECT song_rank, rank_basis, playlist_appearances FROM {database}.current_top_songs ORDER BY song_rank")
    assert len(top) == 61 and str(top["song_rank"].dtype) == "Int64"
    assert list(top["playlist_appearances"][:7]) == [2, 2, 2, 2, 2, 2, 1]


def test_moto_athena_takes_the_engines_calls_but_runs_no_sql(s3_env: dict[str, str], tmp_path: Path) -> None:
    """Why the Athena stand-in: the AthenaEngine's boto3 calls (start, poll, paginated results in
    the workgroup) go through against moto's server, but moto answers every query with no rows
    ("Queries are not executed by Moto")."""
    athena = boto3.client("athena")
    athena.create_work_group(
        Name="spotify_assets", Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{s3_env['bucket']}/athena/"}}
    )
    lake = _glue_client(s3_env["bucket"], "moto_athena", tmp_path)
    engine = iceberg.AthenaEngine(lake, "spotify_assets", athena=athena, poll_s=0.01)
    with engine.reader() as read:
        answer = read("SELECT 1 AS one")
    assert len(answer) == 0
    started = athena.list_query_executions(WorkGroup="spotify_assets")["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=started[0])["QueryExecution"]
    assert sent["Query"] == "SELECT 1 AS one" and sent["QueryExecutionContext"]["Database"] == "moto_athena"
