"""Normalization: raw snapshot documents -> the six tables, with the seeds' mistakes avoided."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone

import orjson
import pandas as pd
import pytest

from spotify_assets.lib.spotify.extract import summarize_rows
from spotify_assets.lib.tables.normalize import normalize_documents, release_period
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets_tests.support.fixtures import artist, document, playlist, row, track

WINDOW = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)


def _edge_case_playlist():
    """One playlist with every row kind the API sends."""
    meta, _ = playlist("edge", 0)
    duet = track("duet", artists=2, popularity=70)
    duet["album"]["artists"] = [artist("compilation curator")]  # album artist differs
    duet["album"]["release_date"], duet["album"]["release_date_precision"] = "1999-05", "month"
    solo = track("solo", popularity=40)  # year precision '2002'
    episode = {**track("podcast"), "type": "episode"}
    local = {**track("local"), "id": None, "is_local": True, "uri": "spotify:local:a:b:c:200"}
    local_row = {**row(local), "is_local": True}
    rows = [
        row(duet, added_at="2026-11-01T10:00:00Z"),
        row(None),
        row(solo, added_at="2026-11-02T10:00:00Z"),
        local_row,
        row(episode),
        row(duet, added_at="2026-10-01T09:30:00Z"),  # the same song again, added earlier
        {**row(track("old")), "added_at": None, "added_by": None},
    ]
    return meta, rows, duet, solo


def test_edge_cases_are_counted_not_loaded_and_songs_are_right():
    meta, rows, duet, solo = _edge_case_playlist()
    t = normalize_documents(WINDOW, [document(meta, rows)]).frames

    songs = t["songs"].set_index("song_id")
    assert sorted(songs.index) == sorted([duet["id"], solo["id"], track("old")["id"]])
    # the song's artist is its first TRACK artist, not the album's
    assert songs.loc[duet["id"], "artist_id"] == duet["artists"][0]["id"]
    assert songs.loc[duet["id"], "artist_id"] != duet["album"]["artists"][0]["id"]
    assert songs.loc[duet["id"], "artist_count"] == 2
    assert songs.loc[duet["id"], "playlist_appearances"] == 2
    # added_date is the earliest of the song's rows, in UTC
    assert songs.loc[duet["id"], "added_date"] == pd.Timestamp("2026-10-01T09:30:00Z")
    assert pd.isna(songs.loc[track("old")["id"], "added_date"])

    # a song listed twice is two playlist rows, at their own positions; skipped rows leave gaps
    pt = t["playlist_tracks"]
    assert list(pt["position"]) == [0, 2, 5, 6]
    assert list(pt["song_id"]).count(duet["id"]) == 2

    sa = t["song_artists"]
    duet_credits = sa[sa["song_id"] == duet["id"]].sort_values("artist_position")
    assert list(duet_credits["artist_id"]) == [a["id"] for a in duet["artists"]]
    assert list(duet_credits["artist_position"]) == [0, 1]

    # album artists are artists too
    assert duet["album"]["artists"][0]["id"] in set(t["artists"]["artist_id"])

    p = t["playlists"].iloc[0]
    assert (p["status"], p["rows_total"], p["rows_read"], p["song_rows"]) == ("ok", 7, 7, 4)
    assert (p["episode_rows"], p["local_rows"], p["unavailable_rows"], p["repeated_song_rows"]) == (1, 1, 1, 1)
    # the same classification as the extractor's summary
    summary = summarize_rows(rows)["rows"]
    assert (summary["track"], summary["episode"], summary["local"], summary["unavailable"]) == (4, 1, 1, 1)


def test_release_dates_keep_their_precision():
    meta, rows, duet, solo = _edge_case_playlist()
    albums = normalize_documents(WINDOW, [document(meta, rows)]).frames["albums"].set_index("album_id")
    year = albums.loc[solo["album"]["id"]]
    assert (year["release_date"], year["release_date_precision"], year["release_year"]) == ("2002", "year", 2002)
    assert year["release_period_start"] == pd.Timestamp("2002-01-01")
    assert year["release_period_end"] == pd.Timestamp("2002-12-31")
    month = albums.loc[duet["album"]["id"]]
    assert month["release_date"] == "1999-05"
    assert (month["release_period_start"], month["release_period_end"]) == (pd.Timestamp("1999-05-01"), pd.Timestamp("1999-05-31"))
    assert not (albums["release_period_start"] < pd.Timestamp("1900-01-01")).any()  # never 1970-style junk


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        ("2002-05-17", "day", (2002, date(2002, 5, 17), date(2002, 5, 17))),
        ("2002-02", "month", (2002, date(2002, 2, 1), date(2002, 2, 28))),
        ("2000-02", "month", (2000, date(2000, 2, 1), date(2000, 2, 29))),
        ("2002", "year", (2002, date(2002, 1, 1), date(2002, 12, 31))),
        ("2002-05-17", "year", (2002, date(2002, 1, 1), date(2002, 12, 31))),  # the stated precision wins
        ("0000", "year", (None, None, None)),
        ("", None, (None, None, None)),
        (None, None, (None, None, None)),
        ("May 2002", "month", (None, None, None)),
    ],
)
def test_release_period(value, precision, expected):
    assert release_period(value, precision) == expected


def test_both_api_shapes_give_the_same_tables():
    meta, rows, *_ = _edge_case_playlist()
    new = normalize_documents(WINDOW, [document(meta, rows, shape="2026")]).frames
    old = normalize_documents(WINDOW, [document(meta, rows, shape="2025")]).frames
    for name in TABLES:
        pd.testing.assert_frame_equal(new[name], old[name], check_like=False)


def test_keys_unique_per_window_across_playlists():
    a_meta, a_rows = playlist("a", 30)
    b_meta, _ = playlist("b", 0)
    b_rows = a_rows[10:20] + [row(track("b-only"))]  # overlap with playlist a
    t = normalize_documents(WINDOW, [document(a_meta, a_rows), document(b_meta, b_rows)]).frames
    for name, spec in TABLES.items():
        frame = t[name]
        assert not frame.duplicated(["window_start", *spec.key]).any(), name
        assert (frame["window_start"] == pd.Timestamp(WINDOW)).all(), name
    songs = t["songs"].set_index("song_id")
    assert len(songs) == 31
    assert songs.loc[a_rows[15]["item"]["id"], "playlist_appearances"] == 2
    assert len(t["playlist_tracks"]) == 41


def test_failed_and_malformed_documents_are_reported_and_the_rest_loads():
    good_meta, good_rows = playlist("good", 5)
    failed_meta, _ = playlist("failed", 0)
    bad_meta, bad_rows = playlist("bad", 3)
    bad = document(bad_meta, bad_rows)
    bad["items"][1]["item"]["duration_ms"] = "three minutes"
    docs = [
        document(good_meta, good_rows),
        document(failed_meta, [], error={"kind": "forbidden", "status": 403, "message": "403 Forbidden: not yours"}),
        orjson.dumps(bad),
    ]
    result = normalize_documents(WINDOW, docs)
    playlists = result.frames["playlists"].set_index("playlist_id")
    assert playlists.loc[good_meta["id"], "status"] == "ok"
    assert playlists.loc[failed_meta["id"], ["status", "error_kind"]].tolist() == ["failed", "forbidden"]
    assert playlists.loc[bad_meta["id"], "status"] == "unreadable"
    message = playlists.loc[bad_meta["id"], "error_message"]
    assert "$.items[1].item.duration_ms" in message  # says where
    assert [p["playlist_id"] for p in result.problems] == [bad_meta["id"]]
    assert len(result.frames["songs"]) == 5  # nothing of the bad document, all of the good one


def test_missing_popularity_is_null_not_zero():
    meta, rows = playlist("devmode", 3)
    for r in rows:
        del r["item"]["popularity"]
    songs = normalize_documents(WINDOW, [document(meta, rows)]).frames["songs"]
    assert songs["popularity"].isna().all()
    assert str(songs["popularity"].dtype) == "Int32"


def test_artist_details_are_taken_where_the_api_still_returns_them():
    meta, rows = playlist("extended", 1)
    rows[0]["item"]["artists"][0] |= {"popularity": 61, "followers": {"total": 1234}, "genres": ["indie, folk", "pop"]}
    artists = normalize_documents(WINDOW, [document(meta, rows)]).frames["artists"].set_index("artist_id")
    a = artists.loc[rows[0]["item"]["artists"][0]["id"]]
    assert (a["popularity"], a["followers"]) == (61, 1234)
    assert orjson.loads(a["genres"]) == ["indie, folk", "pop"]


def test_bad_timestamps_become_null_and_are_reported():
    meta, rows = playlist("ts", 2)
    rows = copy.deepcopy(rows)
    rows[1]["added_at"] = "yesterday"
    result = normalize_documents(WINDOW, [document(meta, rows)])
    assert result.frames["playlist_tracks"]["added_at"].isna().tolist() == [False, True]
    assert any("'yesterday'" in p["message"] for p in result.problems)


def test_empty_window_gives_typed_empty_tables():
    result = normalize_documents(WINDOW, [])
    for name, spec in TABLES.items():
        frame = result.frames[name]
        assert frame.empty and list(frame.columns) == spec.column_names
        assert str(frame["window_start"].dtype) == "datetime64[us, UTC]"
