"""The production deployment end to end: the Spotify API emulator -> raw snapshots in S3
(moto's server) -> six tables in Snowflake (fakesnow's server) -> the views, all over loopback
with the real spotipy, boto3 and Snowflake connector. Only the bulk file transfer of
write_pandas is replaced (see support/snowflake.py)."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.defs.resources import build_resources
from spotify_assets.lib.settings import load_settings
from spotify_assets.defs.analytics.views import view_assets

# the views over the playlist tables (the listening views read streams: defs/listening/test_assets.py)
PLAYLIST_VIEWS = [v for v in view_assets if not v.key.to_user_string().startswith("listening_")]
from spotify_assets.lib.quality import rules as quality
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import artist, playlist, row, track
from spotify_assets_tests.support.production import configure
from spotify_assets_tests.support.windows import windowed, windows

pytestmark = pytest.mark.slow


@pytest.fixture
def production(monkeypatch, s3_env, fakesnow_server, snowflake_database, emulator: SpotifyEmulator):
    a_meta, a_rows = playlist("prod-a", 120)
    b_meta, _ = playlist("prod-b", 0)
    duet = track("prod-duet", artists=3, popularity=77)
    duet["album"]["artists"] = [artist("someone else")]
    b_rows = [row(duet), *a_rows[:5], row(duet), row(None)]
    emulator.add_playlist(a_meta, a_rows)
    emulator.add_playlist(b_meta, b_rows)
    configure(
        monkeypatch,
        s3_env=s3_env,
        fakesnow_server=fakesnow_server,
        database=snowflake_database,
        emulator=emulator,
        playlist_ids=[a_meta["id"], b_meta["id"]],
    )
    conn = snowflake.connector.connect(**fakesnow_server)
    yield conn, snowflake_database
    conn.close()


def _materialize(key: str):
    w = windowed()
    return dg.materialize(
        [w.raw, w.tables, *PLAYLIST_VIEWS, w.raw_checks, w.table_checks],
        partition_key=key,
        resources=build_resources(load_settings()),
    )


def _counts(conn, database: str, table: str) -> dict[str, int]:
    cur = conn.cursor()
    cur.execute(f"SELECT window_start, COUNT(*) FROM {database}.ANALYTICS.{table} GROUP BY 1 ORDER BY 1")
    return {w.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M"): n for w, n in cur.fetchall()}


def test_raw_to_tables_to_views_in_production(production):
    conn, database = production
    keys = windows().get_partition_keys()[-2:]  # recent: the live API may stand for them
    for key in keys:
        result = _materialize(key)
        assert result.success
        # every window check ran against S3 and Snowflake, and passed
        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(quality.TABLE_CHECKS) + len(quality.RAW_CHECKS)
        assert [f"{c.asset_key.to_user_string()}/{c.check_name}: {c.description}" for c in checks if not c.passed] == []
    once = {name: _counts(conn, database, name) for name in TABLES}
    _materialize(keys[-1])
    _materialize(keys[-1])
    assert {name: _counts(conn, database, name) for name in TABLES} == once  # three times = once

    newest = datetime.strptime(keys[-1], "%Y-%m-%d-%H:%M").strftime("%Y-%m-%d %H:%M")
    assert once["playlist_tracks"][newest] == 120 + 7  # the duet twice; the null row not
    assert once["songs"][newest] == 121
    assert once["song_artists"][newest] == 120 + 3
    assert once["playlists"][newest] == 2

    cur = conn.cursor()
    cur.execute(f"SELECT artist_id, song_count FROM {database}.ANALYTICS.TOP_ARTISTS ORDER BY artist_rank")
    assert len(cur.fetchall()) == 5
    # The emulator answers as for a Development Mode app: no popularity, so songs rank by
    # how many playlist rows list them (the duet and A's first five songs: twice each).
    cur.execute(
        f"SELECT rank_basis, popularity, playlist_appearances FROM {database}.ANALYTICS.CURRENT_TOP_SONGS ORDER BY song_rank"
    )
    ranked = cur.fetchall()
    assert {r[0] for r in ranked} == {"playlist_appearances"} and {r[1] for r in ranked} == {None}
    assert [r[2] for r in ranked[:7]] == [2, 2, 2, 2, 2, 2, 1] and len(ranked) == 121
    cur.execute(f"SELECT COUNT(*) FROM {database}.ANALYTICS.POPULARITY_HISTORY WHERE previous_window_start IS NOT NULL")
    assert cur.fetchone()[0] == 121  # every song of the newest window was in the one before

    # the materializations say where the rows went
    events = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in _materialize(keys[-1]).get_asset_materialization_events()
    }
    assert events["songs"]["dagster/partition_row_count"].value == 121
    assert events["songs"]["dagster/row_count"].value == sum(once["songs"].values())  # the whole table
    assert events["songs"]["rows_replaced"].value == 121
    assert events["songs"]["dagster/table_name"].value.upper() == f"{database}.ANALYTICS.SONGS"
    assert events["current_top_songs"]["dagster/row_count"].value == 121
    schema = events["songs"]["dagster/column_schema"].value
    assert [c.name for c in schema.columns] == TABLES["songs"].column_names
    preview = events["songs"]["preview"]
    assert isinstance(preview, dg.TableMetadataValue) and [c.name for c in preview.schema.columns] == TABLES["songs"].column_names
    # every view: its columns as Snowflake describes them, and a preview with every one of them
    for view in PLAYLIST_VIEWS:
        name = view.key.to_user_string()
        cur.execute(f"SELECT * FROM {database}.ANALYTICS.{name} LIMIT 1")
        columns = [d[0].lower() for d in cur.description]
        view_schema = events[name]["dagster/column_schema"].value
        assert [c.name for c in view_schema.columns] == columns, name
        assert all(c.type for c in view_schema.columns), name
        view_preview = events[name]["preview"]
        assert isinstance(view_preview, dg.TableMetadataValue) and view_preview.schema == view_schema, name
        assert all(set(r.data) == set(columns) for r in view_preview.records), name


def test_snowflake_tables_load_back_with_the_dtypes_they_were_written_with(production):
    conn, database = production
    key = windows().get_partition_keys()[-1]
    assert _materialize(key).success

    @dg.asset(partitions_def=windows(), ins={name: dg.AssetIn(key=name) for name in ("playlist_tracks", "albums")})
    def reader(playlist_tracks: pd.DataFrame, albums: pd.DataFrame) -> None:
        assert len(playlist_tracks) == 127
        assert str(playlist_tracks["added_at"].dtype) == "datetime64[us, UTC]"
        assert playlist_tracks["added_at"].notna().all()
        assert set(albums["release_date"]) == {"2002"}  # year precision survives as given
        assert str(albums["release_period_start"].dtype) == "datetime64[s]"

    resources = build_resources(load_settings())
    result = dg.materialize(
        [windowed().tables, reader],
        partition_key=key,
        resources={**resources, "io_manager": resources["warehouse_io_manager"]},
        selection=[reader],
    )
    assert result.success
