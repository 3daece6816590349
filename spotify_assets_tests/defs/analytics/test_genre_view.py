"""The genre view (sql/views/genres.sql) against figures worked out by hand, on DuckDB and on
Snowflake (fakesnow's server): with a listening history, without one, and without genres.

Two windows of two playlists. Songs and their credited artists: s1 (X), s2 (Y), s3 (X and Z),
s4 (W). P1 lists s1, s2, s3, s3, s4; P2 lists s1: appearances s1 2, s2 1, s3 2, s4 1.
Genres, from the enrichment: W1 X [rock], Y [pop, música mexicana], Z [jazz, pop], W [];
W2 X [pop, k-pop], Y as before, Z not enriched (null), W []. The newest window that gave an
artist genres wins: X is pop and k-pop (never rock), Z keeps W1's jazz and pop.

    genre            artists  songs       playlist rows   plays (ms)
    pop              X, Y, Z  s1 s2 s3    2 + 1 + 2 = 5   s1 180000, s2 240000, s3 60000 + 120000: 4, 10.0 min
    k-pop            X        s1 s3       4               s1, s3, s3: 3, 6.0 min
    jazz             Z        s3          2               s3, s3: 2, 3.0 min
    música mexicana  Y        s2          1               s2: 1, 4.0 min
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.defs.analytics.views import view_assets, view_sql
from spotify_assets.defs.warehouse import DuckDBWarehouse
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.tables.schema import STREAMS
from spotify_assets.lib.warehouse.base import render
from spotify_assets.lib.warehouse.duckdb import duckdb_replace
from spotify_assets.lib.warehouse.snowflake import snowflake_replace
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.fixtures import artist, document, playlist, row, track
from spotify_assets_tests.support.snowflake import insert_rows

W1 = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
W2 = W1 + timedelta(hours=8)
VIEWS = ["current_playlist_tracks", "current_songs", "genres"]

S = {name: track(name) for name in ("s1", "s2", "s3", "s4")}
S["s1"]["artists"], S["s2"]["artists"] = [artist("X")], [artist("Y")]
S["s3"]["artists"], S["s4"]["artists"] = [artist("X"), artist("Z")], [artist("W")]
A = {label: artist(label)["id"] for label in "XYZW"}
GENRES = {
    W1: {"X": ["rock"], "Y": ["pop", "música mexicana"], "Z": ["jazz", "pop"], "W": []},
    W2: {"X": ["pop", "k-pop"], "Y": ["pop", "música mexicana"], "W": []},
}
PLAYS = [("s1", 180000), ("s2", 240000), ("s3", 60000), ("s3", 120000), ("s4", 300000), (None, 500000)]

EXPECTED = {  # genre: (artist_count, song_count, playlist_rows, plays, minutes_played)
    "pop": (3, 3, 5, 4, 10.0),
    "k-pop": (1, 2, 4, 3, 6.0),
    "jazz": (1, 1, 2, 2, 3.0),
    "música mexicana": (1, 1, 1, 1, 4.0),
}


def _enrichment(window: datetime) -> dict[str, Any]:
    given = GENRES[window]
    ids = [A[label] for label in given]
    return {"batches": [{"endpoint": "artists", "ids": ids,
                         "response": {"artists": [{"id": A[label], "genres": genres} for label, genres in given.items()]}}]}


def _frames(genres: bool) -> dict[datetime, dict[str, pd.DataFrame]]:
    p1, _ = playlist("P1", 0)
    p2, _ = playlist("P2", 0)
    docs = [document(p1, [row(S[n]) for n in ("s1", "s2", "s3", "s3", "s4")]), document(p2, [row(S["s1"])])]
    return {w: normalize_documents(w, docs, _enrichment(w) if genres else None).frames for w in (W1, W2)}


def _streams(history: bool) -> pd.DataFrame:
    records = [
        {
            "listener": "ana", "played_at": f"2026-11-0{i + 1}T10:00:00Z", "ms_played": ms,
            "song_id": S[song]["id"] if song else "unknownSong", "track_name": song or "unknown",
            "source_format": "extended", "source_file": "ana/x.json",
            "source_sha256": hashlib.sha256(b"ana").hexdigest(), "source_row": i,
            "ingested_at": "2026-11-10T00:00:00Z", "play_id": f"play{i}",
        }
        for i, (song, ms) in enumerate(PLAYS if history else [])
    ]
    return STREAMS.conform(pd.DataFrame(records, columns=STREAMS.column_names))


SCENARIOS = {"history": (True, True), "no_history": (True, False), "no_genres": (False, True)}


def _duckdb(frames, streams) -> list[dict[str, Any]]:
    conn = duckdb.connect()
    for start, tables in frames.items():
        for name, frame in tables.items():
            duckdb_replace(conn, "analytics", name, frame, Window(start, start + timedelta(hours=8)))
    duckdb_replace(conn, "analytics", "streams", streams, None)
    for name in VIEWS:
        conn.execute(render(view_sql(name), schema="analytics", recent_release_days=365))
    cur = conn.execute("SELECT * FROM analytics.genres")
    return _rows(cur.description, cur.fetchall())


def _snowflake(frames, streams, server: dict, database: str) -> list[dict[str, Any]]:
    conn = snowflake.connector.connect(**server)
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    for start, tables in frames.items():
        for name, frame in tables.items():
            snowflake_replace(conn, database, "analytics", name, frame, Window(start, start + timedelta(hours=8)), stage=insert_rows)
    snowflake_replace(conn, database, "analytics", "streams", streams, None, stage=insert_rows)
    for name in VIEWS:
        conn.cursor().execute(render(view_sql(name), schema=f"{database}.ANALYTICS", recent_release_days=365))
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM {database}.ANALYTICS.genres")
    rows = _rows(cur.description, cur.fetchall())
    conn.close()
    return rows


def _rows(description, fetched) -> list[dict[str, Any]]:
    columns = [d[0].lower() for d in description]
    value = lambda v: float(v) if isinstance(v, Decimal) else v  # noqa: E731
    return sorted(({c: value(v) for c, v in zip(columns, r)} for r in fetched), key=lambda r: r["genre"])


def _expected(genres: bool, history: bool) -> list[dict[str, Any]]:
    if not genres:
        return []
    out = []
    for genre, (artists, songs, rows, plays, minutes) in EXPECTED.items():
        out.append({"genre": genre, "artist_count": artists, "song_count": songs, "playlist_rows": rows,
                    "plays": plays if history else None, "minutes_played": minutes if history else None})
    return sorted(out, key=lambda r: r["genre"])


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_genre_view_gives_the_figures_worked_out_by_hand_on_duckdb_and_snowflake(fakesnow_server, scenario):
    genres, history = SCENARIOS[scenario]
    frames, streams = _frames(genres), _streams(history)
    expected = _expected(genres, history)
    assert _duckdb(frames, streams) == expected
    assert _snowflake(frames, streams, fakesnow_server, f"GENRES_{scenario.upper()}") == expected


def test_the_genre_view_is_empty_without_genres_and_null_minutes_without_history_on_duckdb():
    assert _duckdb(_frames(False), _streams(True)) == []
    rows = _duckdb(_frames(True), _streams(False))
    assert [r["genre"] for r in rows] == sorted(EXPECTED) and {r["minutes_played"] for r in rows} == {None}


def _materialize_views(tmp_path, genres: bool) -> tuple[Any, dict]:
    """The tables of both windows in a DuckDB file WITHOUT a streams table, then the view
    assets as the 8-hour job runs them: (the database path, the genres materialization's metadata)."""
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as conn:
        for start, tables in _frames(genres).items():
            for name, frame in tables.items():
                duckdb_replace(conn, "analytics", name, frame, Window(start, start + timedelta(hours=8)))
    assets = [a for a in view_assets if a.key.to_user_string() in VIEWS]
    result = dg.materialize(assets, resources={"warehouse": DuckDBWarehouse(database=str(database))})
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "genres"]
    return database, event.materialization.metadata


@pytest.mark.slow
def test_the_genre_view_asset_builds_without_a_listening_history_table(tmp_path):
    """No listening export was ever dropped: `streams` does not exist. The view's asset
    creates it empty from its declaration, so the genres come with null minutes."""
    database, metadata = _materialize_views(tmp_path, genres=True)
    with duckdb.connect(str(database), read_only=True) as conn:
        assert conn.execute("SELECT COUNT(*) FROM analytics.streams").fetchall() == [(0,)]
        cur = conn.execute("SELECT * FROM analytics.genres")
        rows = _rows(cur.description, cur.fetchall())
    assert rows == _expected(True, False)
    assert metadata["dagster/row_count"].value == len(EXPECTED)


@pytest.mark.slow
def test_an_empty_genre_view_materializes_with_its_columns_only(tmp_path):
    """Development Mode: no artist has genres. The view is built, with no rows, and its preview
    shows the view's columns, not the count the asset adds to its query."""
    _, metadata = _materialize_views(tmp_path, genres=False)
    assert metadata["dagster/row_count"].value == 0 and metadata["preview"].records == []
    assert metadata["preview"].schema == metadata["dagster/column_schema"].value
