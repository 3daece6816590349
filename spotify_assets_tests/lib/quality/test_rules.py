"""The data-quality rules: each passes on good data and fails on data made bad in exactly the
way it guards against, and only that one fails. Table checks run on DuckDB and on Snowflake's
dialect (fakesnow's server); raw checks and freshness are pure functions of their inputs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.lib.quality import rules as quality
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.warehouse import duckdb as duckdb_target, snowflake as snowflake_target
from spotify_assets.lib.warehouse.duckdb import duckdb_replace
from spotify_assets.lib.warehouse.snowflake import snowflake_replace
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.fixtures import document, playlist, row, track
from spotify_assets_tests.support.snowflake import insert_rows

W1 = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
W2 = W1 + timedelta(hours=8)
HOURS8 = timedelta(hours=8)


def _documents(window: datetime) -> list[dict]:
    a_meta, a_rows = playlist("A", 5)
    b_meta, _ = playlist("B", 0)
    duet = track("duet", artists=2, popularity=90)
    month = track("month", popularity=40)
    month["album"]["release_date"], month["album"]["release_date_precision"] = "2019-02", "month"
    day = track("day", popularity=41)
    day["album"]["release_date"], day["album"]["release_date_precision"] = "2024-02-29", "day"
    zero = track("zero", popularity=3)
    zero["album"]["release_date"] = "0000"
    b_rows = [row(duet), row(duet), row(month), row(day), row(zero), row(None)]
    return [document(a_meta, a_rows), document(b_meta, b_rows)]


def _frames() -> dict[datetime, dict[str, pd.DataFrame]]:
    return {w: normalize_documents(w, _documents(w)).frames for w in (W1, W2)}


def _lit(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S+00:00")


class Duck:
    dialect = duckdb_target.DIALECT
    schema = "analytics"

    def __init__(self) -> None:
        self.conn = duckdb.connect()
        self.conn.execute("SET TimeZone = 'UTC'")
        for start, frames in _frames().items():
            for name, frame in frames.items():
                duckdb_replace(self.conn, "analytics", name, frame, Window(start, start + HOURS8))

    def query(self, sql: str) -> pd.DataFrame:
        frame = self.conn.execute(sql).fetchdf()
        frame.columns = [c.lower() for c in frame.columns]
        return frame

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def close(self) -> None:
        self.conn.close()


class Snow:
    dialect = snowflake_target.DIALECT

    def __init__(self, server: dict, database: str) -> None:
        self.schema = f"{database}.ANALYTICS"
        self.conn = snowflake.connector.connect(**server)
        self.conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        for start, frames in _frames().items():
            for name, frame in frames.items():
                snowflake_replace(self.conn, database, "analytics", name, frame, Window(start, start + HOURS8), stage=insert_rows)

    def query(self, sql: str) -> pd.DataFrame:
        cur = self.conn.cursor()
        cur.execute(sql)
        frame = pd.DataFrame(cur.fetchall(), columns=[d[0].lower() for d in cur.description])
        return frame

    def execute(self, sql: str) -> None:
        self.conn.cursor().execute(sql)

    def close(self) -> None:
        self.conn.close()


def _failing(wh, window: datetime = W2) -> dict[str, quality.Outcome]:
    scope = quality.WindowScope(wh.query, wh.schema, Window(window, window + HOURS8), wh.dialect)
    outcomes = {f"{c.table}/{c.name}": c.run(scope) for c in quality.TABLE_CHECKS}
    return {k: o for k, o in outcomes.items() if not o.passed}


def _in(table: str, schema: str, window: datetime = W2) -> str:
    return f"{schema}.{table} WHERE window_start = '{_lit(window)}'"


# Each corruption: SQL statements (with {s} for the schema and {w2}/{w1} for the windows'
# literals) that break exactly one rule in window 2, and the check that must catch it.
SONG = "(SELECT MIN(song_id) FROM {s}.songs WHERE window_start = '{w2}')"
ALBUM = "(SELECT MIN(album_id) FROM {s}.albums WHERE window_start = '{w2}' AND release_date_precision = 'year' AND release_year IS NOT NULL)"
W2_ = "window_start = '{w2}'"

CORRUPTIONS = {
    # one more row for a playlist is also one song row more than its total says
    "duplicate_playlist_tracks": (
        [f"INSERT INTO {{s}}.playlist_tracks SELECT * FROM {{s}}.playlist_tracks WHERE {W2_} AND position = 0"],
        "playlist_tracks/unique_key+playlist_tracks/playlists_complete",
    ),
    **{
        f"duplicate_{t}": ([f"INSERT INTO {{s}}.{t} SELECT * FROM {{s}}.{t} WHERE {W2_} AND {k} = (SELECT MIN({k}) FROM {{s}}.{t} WHERE {W2_})"], f"{t}/unique_key")
        for t, k in (
            ("songs", "song_id"),
            ("artists", "artist_id"),
            ("albums", "album_id"),
            ("song_artists", "song_id"),
            ("playlists", "playlist_id"),
        )
    },
    "song_album_missing": ([f"DELETE FROM {{s}}.albums WHERE {W2_} AND album_id = (SELECT MIN(album_id) FROM {{s}}.songs WHERE {W2_})"], "songs/references_resolve"),
    "song_artist_missing": ([f"UPDATE {{s}}.song_artists SET artist_id = 'nobody' WHERE {W2_} AND song_id = {SONG}"], "song_artists/references_resolve"),
    "track_song_missing": ([f"UPDATE {{s}}.playlist_tracks SET song_id = 'gone' WHERE {W2_} AND position = 1"], "playlist_tracks/references_resolve"),
    "album_artist_missing": ([f"UPDATE {{s}}.albums SET artist_id = 'nobody' WHERE {W2_} AND album_id = {ALBUM}"], "albums/references_resolve"),
    "popularity_101": ([f"UPDATE {{s}}.songs SET popularity = 101 WHERE {W2_} AND song_id = {SONG}"], "songs/popularity_in_range"),
    "popularity_negative": ([f"UPDATE {{s}}.songs SET popularity = -1 WHERE {W2_} AND song_id = {SONG}"], "songs/popularity_in_range"),
    "duration_zero": ([f"UPDATE {{s}}.songs SET duration_ms = 0 WHERE {W2_} AND song_id = {SONG}"], "songs/duration_in_range"),
    "duration_a_day": ([f"UPDATE {{s}}.songs SET duration_ms = 86400000 WHERE {W2_} AND song_id = {SONG}"], "songs/duration_in_range"),
    "release_1970": (
        [f"UPDATE {{s}}.albums SET release_period_start = DATE '1970-01-01', release_period_end = DATE '1970-12-31', release_year = 1970 WHERE {W2_} AND album_id = {ALBUM}"],
        "albums/release_dates_consistent",
    ),
    "year_as_january_first": (
        [f"UPDATE {{s}}.albums SET release_period_end = release_period_start WHERE {W2_} AND album_id = {ALBUM}"],
        "albums/release_dates_consistent",
    ),
    "zero_year_invented": (
        [f"UPDATE {{s}}.albums SET release_year = 2000, release_period_start = DATE '2000-01-01', release_period_end = DATE '2000-12-31' WHERE {W2_} AND release_date = '0000'"],
        "albums/release_dates_consistent",
    ),
    "month_as_year": (
        [f"UPDATE {{s}}.albums SET release_period_start = DATE '2019-01-01', release_period_end = DATE '2019-12-31' WHERE {W2_} AND release_date = '2019-02'"],
        "albums/release_dates_consistent",
    ),
    "unknown_precision": ([f"UPDATE {{s}}.albums SET release_date_precision = 'week' WHERE {W2_} AND album_id = {ALBUM}"], "albums/release_dates_consistent"),
    "added_tomorrow": (
        [f"UPDATE {{s}}.playlist_tracks SET added_at = TIMESTAMP '2030-01-01 00:00:00' WHERE {W2_} AND position = 2"],
        "playlist_tracks/added_at_not_in_future",
    ),
    "track_row_lost": ([f"DELETE FROM {{s}}.playlist_tracks WHERE {W2_} AND position = 3"], "playlist_tracks/playlists_complete"),
    "document_unreadable": (
        [f"UPDATE {{s}}.playlists SET status = 'unreadable', error_message = 'items[3].item.id: expected str' WHERE {W2_} AND name = 'Fixture B'"],
        "playlists/documents_decoded",
    ),
    "popularity_dropped": ([f"UPDATE {{s}}.songs SET popularity = NULL WHERE {W2_}"], "songs/api_fields_returned"),
    "genres_dropped": ([f"UPDATE {{s}}.artists SET genres = '[\"pop\"]' WHERE window_start = '{{w1}}'"], "artists/api_fields_returned"),
}


def _corrupt(wh, name: str) -> set[str]:
    statements, expected = CORRUPTIONS[name]
    for sql in statements:
        wh.execute(sql.format(s=wh.schema, w1=_lit(W1), w2=_lit(W2)))
    return set(expected.split("+"))


@pytest.fixture
def duck():
    wh = Duck()
    yield wh
    wh.close()


def test_every_table_check_passes_on_good_data(duck):
    assert _failing(duck, W1) == {}
    assert _failing(duck, W2) == {}


@pytest.mark.slow
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_each_table_check_fails_on_exactly_what_it_guards_against(duck, corruption):
    expected = _corrupt(duck, corruption)
    failing = _failing(duck)
    assert set(failing) == expected
    for outcome in failing.values():
        assert outcome.summary and any(v for v in outcome.counts.values())
    assert _failing(duck, W1) == {} or corruption == "genres_dropped"  # no other window changes


def test_a_duplicated_key_names_the_key_and_counts_the_copies(duck):
    _corrupt(duck, "duplicate_songs")
    outcome = _failing(duck)["songs/unique_key"]
    assert outcome.counts["duplicated_keys"] == 1 and outcome.counts["extra_rows"] == 1
    assert outcome.sample[0]["copies"] == 2 and outcome.sample[0]["song_id"]


def test_completeness_and_future_rows_name_the_playlist(duck):
    _corrupt(duck, "track_row_lost")
    _corrupt(duck, "added_tomorrow")
    failing = _failing(duck)
    assert "Fixture A" in failing["playlist_tracks/playlists_complete"].summary
    assert "Fixture A" in failing["playlist_tracks/added_at_not_in_future"].summary


def test_a_field_never_returned_is_not_drift(duck):
    # artists never had genres in these windows (playlist responses carry simplified artists)
    outcomes = {c.name: c.run(quality.WindowScope(duck.query, duck.schema, Window(W2, W2 + HOURS8), duck.dialect))
                for c in quality.TABLE_CHECKS if c.table == "artists"}
    assert outcomes["api_fields_returned"].passed
    assert "never returned so far: popularity, followers, genres" in outcomes["api_fields_returned"].summary


@pytest.fixture(scope="module")
def snow(fakesnow_server):
    wh = Snow(fakesnow_server, "QUALITY_GOOD")
    yield wh
    wh.close()


@pytest.mark.slow
def test_every_table_check_passes_on_good_data_in_snowflake(snow):
    assert _failing(snow, W1) == {}
    assert _failing(snow, W2) == {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "corruption",
    ["duplicate_songs", "song_album_missing", "popularity_101", "duration_zero", "release_1970", "month_as_year",
     "zero_year_invented", "added_tomorrow", "track_row_lost", "document_unreadable", "popularity_dropped"],
)
def test_table_checks_catch_the_same_faults_in_snowflake(fakesnow_server, corruption):
    wh = Snow(fakesnow_server, f"QUALITY_{corruption.upper()}")
    try:
        expected = _corrupt(wh, corruption)
        assert set(_failing(wh)) == expected
    finally:
        wh.close()


# --- raw checks -------------------------------------------------------------------------


def _manifest(**playlists: dict) -> dict[str, dict]:
    base = {"status": "ok", "rows_total": 100, "rows_read": 100, "error": None}
    return {pid: {**base, "name": f"List {pid}", **facts} for pid, facts in playlists.items()}


def _raw(name: str):
    return next(c for c in quality.RAW_CHECKS if c.name == name).run


def test_raw_checks_pass_on_a_complete_window():
    now = _manifest(a={}, b={"rows_total": 7, "rows_read": 7})
    for check in quality.RAW_CHECKS:
        assert check.run(now, now, 0.5).passed, check.name


def test_all_rows_read_fails_when_a_playlist_stored_fewer_rows_than_its_total():
    outcome = _raw("all_rows_read")(_manifest(a={}, b={"rows_read": 50}), None, 0.5)
    assert not outcome.passed and "List b (b)" in outcome.summary
    assert outcome.sample == [{"playlist": "List b (b)", "rows_total": 100, "rows_read": 50}]


def test_playlists_readable_lists_the_failures_with_their_reasons():
    failed = {"status": "failed", "rows_read": 0, "error": {"kind": "forbidden", "message": "403: not the owner"}}
    limited = {"status": "failed", "rows_read": 0, "error": {"kind": "rate_limited", "message": "Retry-After 86400 s exceeds the bound"}}
    outcome = _raw("playlists_readable")(_manifest(a={}, b=failed, c=limited), None, 0.5)
    assert not outcome.passed
    assert outcome.counts["failed_forbidden"] == 1 and outcome.counts["failed_rate_limited"] == 1
    assert {r["reason"] for r in outcome.sample} == {"403: not the owner", "Retry-After 86400 s exceeds the bound"}


def test_playlists_readable_reports_playlists_whose_previous_document_was_kept():
    kept = {"kept": {"from_version": "20261121T080000000000Z", "reason": "failed on this run", "error": {"kind": "forbidden", "message": "403"}}}
    gone = {"kept": {"from_version": "20261121T080000000000Z", "reason": "no longer configured", "error": None}}
    outcome = _raw("playlists_readable")(_manifest(a={}, b=kept, c=gone), None, 0.5)
    assert not outcome.passed and outcome.counts["kept_playlists"] == 2 and outcome.counts["failed_playlists"] == 0
    assert "keep the window's previous document" in outcome.summary and "List b (b): forbidden" in outcome.summary
    assert {r["kind"] for r in outcome.sample} == {"forbidden", "kept"}
    # a kept playlist still counts as read for completeness: its rows are there
    assert _raw("all_rows_read")(_manifest(a={}, b=kept), None, 0.5).passed


def test_volume_warns_when_a_playlist_loses_more_than_the_share():
    before = _manifest(a={}, b={})
    assert _raw("volume_stable")(_manifest(a={"rows_read": 50, "rows_total": 50}, b={}), before, 0.5).passed  # exactly half
    outcome = _raw("volume_stable")(_manifest(a={"rows_read": 49, "rows_total": 49}, b={}), before, 0.5)
    assert not outcome.passed and "List a (a) 100 -> 49" in outcome.summary
    assert _raw("volume_stable")(_manifest(a={"rows_read": 49, "rows_total": 49}, b={}), before, 0.6).passed


def test_volume_ignores_playlists_that_failed_and_windows_without_a_predecessor():
    failed = {"status": "failed", "rows_read": 0, "error": {"kind": "not_found", "message": "404"}}
    assert _raw("volume_stable")(_manifest(a=failed), _manifest(a={}), 0.5).passed
    assert _raw("volume_stable")(_manifest(a={}), None, 0.5).passed


def test_a_manifest_without_facts_asks_for_a_rematerialization():
    old = {"a": {"key": "k", "sha256": "x", "bytes": 1, "status": "ok"}}
    outcome = _raw("all_rows_read")(old, None, 0.5)
    assert not outcome.passed and "re-materialize" in outcome.summary


def test_freshness_allows_eight_hours_plus_the_grace():
    end = datetime(2026, 11, 21, 0, tzinfo=timezone.utc)
    assert quality.freshness(end, end + timedelta(hours=9), 1.0).passed
    stale = quality.freshness(end, end + timedelta(hours=9, minutes=1), 1.0)
    assert not stale.passed and stale.counts["age_hours"] == 9.02
    assert not quality.freshness(None, end, 1.0).passed
