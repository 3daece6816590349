"""The analytics views: the same answers on DuckDB and on Snowflake (fakesnow's server),
and the right answers when the newest window is partial or the API dropped popularity."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.defs.io_managers import preview_table
from spotify_assets.defs.analytics.views import references, view_assets, view_names, view_schema, view_sql
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.tables.schema import DECLARED_TABLES
from spotify_assets.lib.warehouse.base import describe_columns, render
from spotify_assets.lib.warehouse.duckdb import duckdb_replace
from spotify_assets.lib.warehouse.snowflake import snowflake_replace
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.fixtures import document, playlist, row, track
from spotify_assets_tests.support.snowflake import insert_rows
from spotify_assets_tests.defs.analytics.test_listening_views import streams_frame

W1 = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
W2 = W1 + timedelta(hours=8)
RECENT_DAYS = 365


def _windows(scenario: str) -> dict[datetime, dict[str, pd.DataFrame]]:
    """Two windows of three playlists. 'partial': C fails in the newest window.
    'no_popularity': the newest window has no popularity at all (Development Mode)."""
    a_meta, a_rows = playlist("A", 6)
    b_meta, _ = playlist("B", 0)
    c_meta, _ = playlist("C", 0)
    duet = track("duet", artists=2, popularity=90)
    b_rows = a_rows[:2] + [row(duet), row(duet)]
    c_rows = [row(track(f"C-{i}", popularity=10 + i)) for i in range(3)]
    recent = track("recent", popularity=66)
    recent["album"]["release_date"], recent["album"]["release_date_precision"] = "2026-06-01", "day"
    c_rows.append(row(recent))

    def docs(window: datetime, popularity_delta: int, drop_popularity: bool, c_fails: bool) -> list[dict[str, Any]]:
        out = []
        for meta, rows in ((a_meta, a_rows), (b_meta, b_rows), (c_meta, c_rows)):
            rows = [
                {**r, "item": {**r["item"], "popularity": None if drop_popularity else r["item"]["popularity"] + popularity_delta}}
                for r in rows
            ]
            if drop_popularity:
                for r in rows:
                    del r["item"]["popularity"]
            if meta is c_meta and c_fails:
                out.append(document(meta, rows, error={"kind": "rate_limited", "status": 429, "message": "429"}))
            else:
                out.append(document(meta, rows))
        return out

    newest = docs(W2, 3, scenario == "no_popularity", scenario == "partial")
    # genres for some artists, in the older window only (the genre view reads the newest given)
    credited = [a["id"] for r in a_rows[:3] + [row(duet)] for a in r["item"]["artists"]]
    genres = {"batches": [{"endpoint": "artists", "ids": credited, "response": {"artists": [
        {"id": aid, "genres": ["pop", "swedish pop"][: 1 + i % 2]} for i, aid in enumerate(credited)
    ]}}]}
    return {
        W1: normalize_documents(W1, docs(W1, 0, False, False), enrichment=genres).frames,
        W2: normalize_documents(W2, newest).frames,
    }


def predictions_frame(windows) -> pd.DataFrame:
    """A stored forecast of the newest window's songs (the rising_songs view's table): every
    other song expected to rise, by 1 to 6 points, every third one new in the window."""
    from spotify_assets.lib.tables.schema import MODEL_TABLES

    newest = max(windows)
    songs = windows[newest]["songs"].sort_values("song_id", ignore_index=True)
    change = [(1 + i % 6) * (1 if i % 2 == 0 else -1) for i in range(len(songs))]
    now = [40 + i for i in range(len(songs))]
    frame = pd.DataFrame(
        {
            "song_id": songs["song_id"],
            "window_start": pd.Timestamp(newest),
            "forecast_window": pd.Timestamp(newest + timedelta(hours=24)),
            "horizon_windows": 3,
            "name": songs["name"],
            "artist_id": songs["artist_id"],
            "popularity": now,
            "predicted_popularity": [float(n + c) for n, c in zip(now, change)],
            "expected_change": [float(c) for c in change],
            "new_song": [i % 3 == 0 for i in range(len(songs))],
            "model": "random_forest",
            "model_version": "0123456789ab",
            "predicted_at": pd.Timestamp(newest + timedelta(hours=1)),
        }
    )
    return MODEL_TABLES["song_popularity_predictions"].conform(frame)


def _load_duckdb(windows) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    for start, frames in windows.items():
        for name, frame in frames.items():
            duckdb_replace(conn, "analytics", name, frame, Window(start, start + timedelta(hours=8)))
    duckdb_replace(conn, "analytics", "streams", streams_frame(), None)  # the listening views' table
    duckdb_replace(conn, "analytics", "song_popularity_predictions", predictions_frame(windows), None)  # rising_songs'
    for name in _create_order(view_names()):
        conn.execute(render(view_sql(name), schema="analytics", recent_release_days=RECENT_DAYS))
    return conn


def _create_order(names: list[str]) -> list[str]:
    done: list[str] = []
    while len(done) < len(names):
        for n in names:
            if n not in done and all(r in DECLARED_TABLES or r in done for r in references(n)):
                done.append(n)
    return done


def _load_snowflake(windows, server: dict, database: str):
    conn = snowflake.connector.connect(**server)
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    for start, frames in windows.items():
        for name, frame in frames.items():
            snowflake_replace(conn, database, "analytics", name, frame, Window(start, start + timedelta(hours=8)), stage=insert_rows)
    snowflake_replace(conn, database, "analytics", "streams", streams_frame(), None, stage=insert_rows)
    snowflake_replace(conn, database, "analytics", "song_popularity_predictions", predictions_frame(windows), None, stage=insert_rows)
    for name in _create_order(view_names()):
        conn.cursor().execute(render(view_sql(name), schema=f"{database}.ANALYTICS", recent_release_days=RECENT_DAYS))
    return conn


def _duck(conn, view: str) -> pd.DataFrame:
    return _canonical(conn.execute(f"SELECT * FROM analytics.{view}").fetchdf())


def _snow(conn, database: str, view: str) -> pd.DataFrame:
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM {database}.ANALYTICS.{view}")
    columns = [d[0] for d in cur.description]
    return _canonical(pd.DataFrame(cur.fetchall(), columns=columns))


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-case names, UTC instants (dates as their midnight), numbers as floats, rows in a fixed order."""
    frame = frame.copy()
    frame.columns = [str(c).lower() for c in frame.columns]
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_datetime64_any_dtype(s) or (s.dropna().map(lambda v: isinstance(v, (datetime, date))).all() and s.notna().any()):
            frame[c] = pd.to_datetime(s, utc=True)
        elif s.dropna().map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) or hasattr(v, "as_integer_ratio")).all() and s.notna().any():
            frame[c] = pd.to_numeric(s.astype(object), errors="coerce").astype(float).round(6)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.sort_values(list(frame.columns), key=lambda s: s.map(str)).reset_index(drop=True)


def _loaded(scenario: str, server: dict):
    """(DuckDB connection, Snowflake connection, its database, the windows), closed after."""
    windows = _windows(scenario)
    database = f"VIEWS_{scenario.upper()}"
    duck, snow = _load_duckdb(windows), _load_snowflake(windows, server, database)
    yield duck, snow, database, windows
    duck.close()
    snow.close()


@pytest.fixture(scope="module")
def partial(fakesnow_server):
    yield from _loaded("partial", fakesnow_server)


@pytest.fixture(scope="module")
def no_popularity(fakesnow_server):
    yield from _loaded("no_popularity", fakesnow_server)


@pytest.fixture(params=["partial", "no_popularity"])
def both(request):
    return request.getfixturevalue(request.param)


@pytest.mark.slow
@pytest.mark.parametrize("view", view_names())
def test_every_view_gives_the_same_answer_on_duckdb_and_snowflake(both, view):
    duck, snow, database, _ = both
    expected = _duck(duck, view)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(_snow(snow, database, view), expected, check_dtype=False)


def test_a_failed_playlist_keeps_its_previous_snapshot_in_current_views(partial):
    duck, *_, windows = partial
    current = _duck(duck, "current_playlist_tracks")
    playlists = windows[W2]["playlists"].set_index("name")
    c_id = playlists.loc["Fixture C", "playlist_id"]
    c_rows = current[current["playlist_id"] == c_id]
    assert len(c_rows) == 4 and {pd.Timestamp(t) for t in c_rows["window_start"]} == {pd.Timestamp(W1)}
    a_id = playlists.loc["Fixture A", "playlist_id"]
    assert {pd.Timestamp(t) for t in current[current["playlist_id"] == a_id]["window_start"]} == {pd.Timestamp(W2)}
    trends = _duck(duck, "popularity_trends")
    newest = trends[trends["window_start"] == pd.Timestamp(W2)]
    assert newest["window_complete"].tolist() == [False] * len(newest)
    top = _duck(duck, "current_top_songs").sort_values("song_rank")
    assert top.iloc[0]["name"] == "duet" and top.iloc[0]["popularity"] == 93  # newest value, W2


def test_without_popularity_songs_rank_by_appearances_and_history_says_null(no_popularity):
    duck, *_ = no_popularity
    top = _duck(duck, "current_top_songs").sort_values("song_rank")
    assert set(top["rank_basis"]) == {"playlist_appearances"}
    # A-0, A-1 (in A and B) and duet (twice in B) are listed twice; ties broken by song id
    assert sorted(top.head(3)["name"]) == ["A-0", "A-1", "duet"]
    assert top.iloc[3]["playlist_appearances"] == 1
    history = _duck(duck, "popularity_history")
    newest = history[history["window_start"] == pd.Timestamp(W2)]
    assert newest["popularity"].isna().all() and newest["popularity_change"].isna().all()
    assert newest["previous_popularity"].notna().all()


def test_recent_releases_are_classified_by_their_whole_period(both):
    duck, *_ = both
    trends = _duck(duck, "popularity_trends")
    w1 = trends[trends["window_start"] == pd.Timestamp(W1)].set_index("release_group")
    # fixtures: every album is '2002' (year precision) except 'recent' (2026-06-01)
    assert w1.loc["recent", "song_count"] == 1 and w1.loc["recent", "avg_popularity"] == 66
    assert w1.loc["older", "song_count"] == 6 + 1 + 3


def test_top_artists_are_five_by_song_count(both):
    duck, *_ = both
    top = _duck(duck, "top_artists").sort_values("artist_rank")
    assert top["artist_rank"].tolist() == [1, 2, 3, 4, 5]
    analytics = _duck(duck, "artist_analytics")
    assert top["song_count"].tolist() == sorted(analytics["song_count"], reverse=True)[:5]


def test_rising_songs_ranks_the_forecasts_expected_to_rise(partial):
    duck, *_ = partial
    stored = predictions_frame(_windows("partial"))
    rising = _duck(duck, "rising_songs").sort_values("rising_rank", ignore_index=True)
    expected = stored[stored["expected_change"] > 0].sort_values(
        ["expected_change", "predicted_popularity", "song_id"], ascending=[False, False, True], ignore_index=True
    )
    assert rising["rising_rank"].tolist() == list(range(1, len(expected) + 1))
    assert rising["song_id"].tolist() == expected["song_id"].tolist()
    assert (rising["expected_change"] > 0).all() and rising["new_song"].tolist() == expected["new_song"].tolist()
    assert rising["artist_name"].notna().all()  # the artist as listed in the forecast's window


class _Catalog:
    """What view_schema needs of a Warehouse: a view's columns, described by the catalog."""

    def __init__(self, catalog: tuple[str, str], query):
        self.catalog, self.query = catalog, query

    def columns(self, name: str) -> pd.DataFrame:
        return describe_columns(self.query, self.catalog, name)


def _snow_query(conn):
    def query(sql: str) -> pd.DataFrame:
        cur = conn.cursor()
        cur.execute(sql)
        frame = pd.DataFrame(cur.fetchall(), columns=[d[0].lower() for d in cur.description])
        return frame

    return query


@pytest.mark.slow
@pytest.mark.parametrize("view", view_names())
def test_every_view_has_its_column_schema_from_the_warehouse_on_duckdb_and_snowflake(partial, view):
    duck, snow, database, _ = partial
    engines = {
        "duckdb": (_Catalog(("information_schema.tables", "analytics"), lambda sql: duck.execute(sql).fetchdf()), _duck(duck, view)),
        "snowflake": (_Catalog((f"{database}.INFORMATION_SCHEMA.TABLES", "ANALYTICS"), _snow_query(snow)), _snow(snow, database, view)),
    }
    for engine, (warehouse, rows) in engines.items():
        schema = view_schema(warehouse, view)  # type: ignore[arg-type]
        assert [c.name for c in schema.columns] == list(rows.columns), engine  # every column, in order
        assert all(c.type and c.type != "none" for c in schema.columns), (engine, schema)
        preview = preview_table(rows, 10, schema)
        assert isinstance(preview, dg.TableMetadataValue) and preview.schema == schema
        assert len(preview.records) == min(10, len(rows))
        assert all(set(r.data) == {c.name for c in schema.columns} for r in preview.records)


def test_the_listening_views_are_in_the_listening_group_the_forecasts_in_model_the_others_in_analytics():
    groups = {a.key.to_user_string(): a.group_names_by_key[a.key] for a in view_assets}
    assert {n for n, g in groups.items() if g == "listening"} == {n for n in groups if n.startswith("listening_")}
    assert {n for n, g in groups.items() if g == "model"} == {"rising_songs"}
    assert {g for n, g in groups.items() if not n.startswith("listening_") and n != "rising_songs"} == {"analytics"}
