"""The listening-history views (sql/views/listening_*.sql) against figures worked out by hand.

One small history (`streams_frame`: three listeners, 23 plays over January to March 2026) is
loaded into DuckDB and into fakesnow's Snowflake server; every view is checked, row by row,
against literal numbers computed by hand from the plays listed below. DuckDB runs three
times: in UTC, and in sessions set to Tokyo (+9) and Los Angeles (-8), since the views must
give UTC dates, hours and weekdays whatever the session's time zone.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.defs.analytics.views import references, view_names, view_sql
from spotify_assets.lib.listening.exports import play_ids
from spotify_assets.lib.tables.schema import DECLARED_TABLES, STREAMS
from spotify_assets.lib.warehouse.base import render
from spotify_assets.lib.warehouse.duckdb import duckdb_replace
from spotify_assets.lib.warehouse.snowflake import snowflake_replace
from spotify_assets_tests.support.snowflake import insert_rows

DATABASE = "LISTENING_VIEWS"
INGESTED_AT = datetime(2026, 4, 1, tzinfo=timezone.utc)

# (listener, played_at UTC, ms_played, track, artist, episode/show, country, skipped, format)
# Minutes: 180000 ms = 3, 240000 = 4, 15000 = 0.25, 1800000 = 30, 120000 = 2 …
# 2026-01-01 is a Thursday; 2026-02-01 and 2026-03-01 are Sundays.
PLAYS: list[tuple[Any, ...]] = [
    # ana: extended format, peaks between 18:00 and 21:00 UTC
    ("ana", "2026-01-05T18:10:00Z", 180000, "Song A1", "Artist A", None, "SE", False, "extended"),  # 1 Mon
    ("ana", "2026-01-05T19:20:00Z", 240000, "Song A2", "Artist A", None, "SE", False, "extended"),  # 2 Mon
    ("ana", "2026-01-05T20:30:00Z", 15000, "Song B1", "Artist B", None, "SE", True, "extended"),  # 3 Mon, short
    ("ana", "2026-01-07T08:00:00Z", 1800000, None, None, ("Ep 1", "Show X"), "SE", None, "extended"),  # 4 Wed, podcast
    ("ana", "2026-01-31T23:50:00Z", 180000, "Song A1", "Artist A", None, "US", False, "extended"),  # 5 Sat (Feb 1 in Tokyo)
    ("ana", "2026-02-01T00:10:00Z", 120000, "Song Z1", "Artist Z", None, "DE", False, "extended"),  # 6 Sun (Jan 31 in LA)
    ("ana", "2026-02-02T18:00:00Z", 180000, "Song Z1", "Artist Z", None, "SE", None, "extended"),  # 7 Mon
    ("ana", "2026-02-02T19:00:00Z", 20000, "Song A2", "Artist A", None, "SE", True, "extended"),  # 8 Mon, short
    ("ana", "2026-02-10T21:00:00Z", 240000, "Song D1", "Artist D", None, "SE", False, "extended"),  # 9 Tue
    ("ana", "2026-03-03T18:30:00Z", 180000, "Song Z1", "Artist Z", None, "SE", False, "extended"),  # 10 Tue
    ("ana", "2026-03-03T19:30:00Z", 1200000, None, None, ("Ep 2", "Show X"), "SE", None, "extended"),  # 11 Tue, podcast
    ("ana", "2026-03-04T20:00:00Z", 240000, "Song D1", "Artist D", None, "SE", False, "extended"),  # 12 Wed
    # ben: the account-data format in January (no country, no skips), extended afterwards
    ("ben", "2026-01-10T07:00:00Z", 180000, "Song E1", "Artist E", None, None, None, "account"),  # 13 Sat
    ("ben", "2026-01-10T07:30:00Z", 10000, "Song A1", "Artist A", None, None, None, "account"),  # 14 Sat, short
    ("ben", "2026-01-20T12:00:00Z", 300000, "Song E2", "Artist E", None, None, None, "account"),  # 15 Tue
    ("ben", "2026-02-14T18:45:00Z", 180000, "Song E1", "Artist E", None, "GB", False, "extended"),  # 16 Sat
    ("ben", "2026-02-14T19:15:00Z", 25000, "Song F1", "Artist F", None, "GB", True, "extended"),  # 17 Sat, short
    ("ben", "2026-02-15T19:45:00Z", 600000, None, None, ("Ep 9", "Show Y"), "GB", None, "extended"),  # 18 Sun, podcast
    ("ben", "2026-03-20T18:00:00Z", 240000, "Song F1", "Artist F", None, "US", False, "extended"),  # 19 Fri
    ("ben", "2026-03-20T18:05:00Z", 5000, None, None, None, "US", None, "extended"),  # 20 Fri, names nothing, short
    ("ben", "2026-03-21T20:10:00Z", 180000, "Song E2", "Artist E", None, "US", False, "extended"),  # 21 Sat
    # cleo: January and March only (nothing in February)
    ("cleo", "2026-01-15T09:00:00Z", 180000, "Song G1", "Artist G", None, "FR", False, "extended"),  # 22 Thu
    ("cleo", "2026-03-10T09:00:00Z", 180000, "Song G1", "Artist G", None, "FR", False, "extended"),  # 23 Tue
]


def streams_frame() -> pd.DataFrame:
    """The plays above as a `streams` frame (conformed to STREAMS)."""
    records = []
    for i, (listener, played_at, ms, track, artist, episode, country, skipped, fmt) in enumerate(PLAYS):
        sha = hashlib.sha256(f"{listener}/{fmt}".encode()).hexdigest()
        extended = fmt == "extended"
        records.append(
            {
                "listener": listener,
                "played_at": played_at,
                "ms_played": ms,
                "track_name": track,
                "artist_name": artist,
                "album_name": f"Album of {track}" if track and extended else None,
                "song_id": f"id{track.replace(' ', '')}" if track and extended else None,
                "track_uri": f"spotify:track:id{track.replace(' ', '')}" if track and extended else None,
                "episode_name": episode[0] if episode else None,
                "show_name": episode[1] if episode else None,
                "episode_uri": f"spotify:episode:{episode[0].replace(' ', '')}" if episode else None,
                "conn_country": country,
                "platform": "android" if extended else None,
                "ip_hash": None,
                "reason_start": "clickrow" if extended else None,
                "reason_end": ("fwdbtn" if skipped else "trackdone") if extended else None,
                "shuffle": False if extended else None,
                "skipped": skipped,
                "offline": False if extended else None,
                "offline_at": None,
                "incognito_mode": False if extended else None,
                "source_format": fmt,
                "source_file": f"{listener}/{fmt}.json",
                "source_sha256": sha,
                "source_row": i,
                "ingested_at": INGESTED_AT,
            }
        )
    frame = pd.DataFrame(records, columns=STREAMS.column_names)
    frame["skipped"] = frame["skipped"].astype("boolean")
    frame["play_id"] = play_ids(frame)
    return STREAMS.conform(frame)


def listening_views() -> list[str]:
    return [n for n in view_names() if n.startswith("listening_")]


def _create_order(names: list[str]) -> list[str]:
    done: list[str] = []
    while len(done) < len(names):
        ready = [n for n in names if n not in done and all(r in DECLARED_TABLES or r in done for r in references(n))]
        assert ready, f"views reading something neither a table nor a view: {sorted(set(names) - set(done))}"
        done.extend(ready)
    return done


# --- the engines --------------------------------------------------------------------------------

ENGINES = ["duckdb", "duckdb_tokyo", "duckdb_los_angeles", "snowflake"]
SESSION_ZONES = {"duckdb": "UTC", "duckdb_tokyo": "Asia/Tokyo", "duckdb_los_angeles": "America/Los_Angeles"}


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return pd.Timestamp(v).tz_convert("UTC") if v.tzinfo else pd.Timestamp(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


class Engine:
    def __init__(self, name: str, cursor_of, schema: str):
        self.name, self._cursor_of, self._schema = name, cursor_of, schema

    def rows(self, view: str) -> list[dict[str, Any]]:
        cur = self._cursor_of()
        cur.execute(f"SELECT * FROM {self._schema}.{view}")
        columns = [d[0].lower() for d in cur.description]
        return [{c: _value(v) for c, v in zip(columns, row)} for row in cur.fetchall()]

    def by(self, view: str, *key: str) -> dict[tuple, dict[str, Any]]:
        """The view's rows keyed by the given columns (which must be unique)."""
        out = {}
        for r in self.rows(view):
            k = tuple(r[c] for c in key)
            assert k not in out, f"{view}: two rows for {k}"
            out[k] = r
        return out


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    frame = streams_frame()
    if request.param.startswith("duckdb"):
        conn = duckdb.connect()
        conn.execute(f"SET TimeZone = '{SESSION_ZONES[request.param]}'")
        duckdb_replace(conn, "analytics", "streams", frame, None)
        for name in _create_order(listening_views()):
            conn.execute(render(view_sql(name), schema="analytics", recent_release_days=365))
        # the connection itself, not a cursor: a cursor is a new session, in the default time zone
        yield Engine(request.param, lambda: conn, "analytics")
    else:
        server = request.getfixturevalue("fakesnow_server")
        conn = snowflake.connector.connect(**server)
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        snowflake_replace(conn, DATABASE, "analytics", "streams", frame, None, stage=insert_rows)
        for name in _create_order(listening_views()):
            conn.cursor().execute(render(view_sql(name), schema=f"{DATABASE}.ANALYTICS", recent_release_days=365))
        yield Engine(request.param, conn.cursor, f"{DATABASE}.ANALYTICS")
    conn.close()


def _check(actual: dict[tuple, dict[str, Any]], expected: dict[tuple, tuple], columns: tuple[str, ...]) -> None:
    """Every expected row, and no other, with exactly these figures (floats to 1e-9)."""
    assert sorted(actual, key=str) == sorted(expected, key=str)
    for key, values in expected.items():
        got = tuple(actual[key][c] for c in columns)
        assert got == pytest.approx(values, abs=1e-9), (key, dict(zip(columns, got)))


# --- the views ----------------------------------------------------------------------------------


def test_every_listening_view_is_checked_here():
    assert listening_views() == sorted(
        [
            "listening_plays",
            "listening_activity",
            "listening_by_hour",
            "listening_by_weekday",
            "listening_by_country",
            "listening_skip_rate",
            "listening_active_days",
            "listening_top_artists",
            "listening_top_tracks",
            "listening_artist_churn",
        ]
    )


@pytest.mark.slow
def test_plays_carry_their_utc_calendar(engine):
    plays = {k[0]: r for k, r in engine.by("listening_plays", "source_row").items()}
    assert len(plays) == len(PLAYS)
    columns = ("played_date", "played_hour", "iso_weekday", "weekday_name", "week_start", "month_start")
    expected = {
        # 23:50 UTC on Saturday 31 January: already 1 February in Tokyo
        (4,): ("2026-01-31", 23, 6, "Saturday", "2026-01-26", "2026-01-01"),
        # 00:10 UTC on Sunday 1 February: still 31 January in Los Angeles; its ISO week began in January
        (5,): ("2026-02-01", 0, 7, "Sunday", "2026-01-26", "2026-02-01"),
        (0,): ("2026-01-05", 18, 1, "Monday", "2026-01-05", "2026-01-01"),
        (21,): ("2026-01-15", 9, 4, "Thursday", "2026-01-12", "2026-01-01"),
        (18,): ("2026-03-20", 18, 5, "Friday", "2026-03-16", "2026-03-01"),
        (8,): ("2026-02-10", 21, 2, "Tuesday", "2026-02-09", "2026-02-01"),
        (11,): ("2026-03-04", 20, 3, "Wednesday", "2026-03-02", "2026-03-01"),
    }
    _check({k: plays[k[0]] for k in expected}, expected, columns)
    assert plays[4]["played_at"] == pd.Timestamp("2026-01-31T23:50:00Z")
    content = {i: r["content_type"] for i, r in plays.items()}
    assert sorted(i for i, c in content.items() if c == "episode") == [3, 10, 17]
    assert [i for i, c in content.items() if c == "other"] == [19]
    assert sum(c == "track" for c in content.values()) == 19
    assert sorted(i for i, r in plays.items() if r["short_play"]) == [2, 7, 13, 16, 19]
    assert plays[0]["short_play"] is False and plays[3]["skipped"] is None and plays[2]["skipped"] is True


def test_activity_per_day_week_and_month(engine):
    expected = {
        ("ana", "day", "2026-01-05"): (3, 7.25),
        ("ana", "day", "2026-01-07"): (1, 30.0),
        ("ana", "day", "2026-01-31"): (1, 3.0),
        ("ana", "day", "2026-02-01"): (1, 2.0),
        ("ana", "day", "2026-02-02"): (2, 3.33),
        ("ana", "day", "2026-02-10"): (1, 4.0),
        ("ana", "day", "2026-03-03"): (2, 23.0),
        ("ana", "day", "2026-03-04"): (1, 4.0),
        ("ana", "week", "2026-01-05"): (4, 37.25),
        ("ana", "week", "2026-01-26"): (2, 5.0),  # Saturday 31 January and Sunday 1 February
        ("ana", "week", "2026-02-02"): (2, 3.33),
        ("ana", "week", "2026-02-09"): (1, 4.0),
        ("ana", "week", "2026-03-02"): (3, 27.0),
        ("ana", "month", "2026-01-01"): (5, 40.25),
        ("ana", "month", "2026-02-01"): (4, 9.33),
        ("ana", "month", "2026-03-01"): (3, 27.0),
        ("ben", "day", "2026-01-10"): (2, 3.17),
        ("ben", "day", "2026-01-20"): (1, 5.0),
        ("ben", "day", "2026-02-14"): (2, 3.42),
        ("ben", "day", "2026-02-15"): (1, 10.0),
        ("ben", "day", "2026-03-20"): (2, 4.08),
        ("ben", "day", "2026-03-21"): (1, 3.0),
        ("ben", "week", "2026-01-05"): (2, 3.17),
        ("ben", "week", "2026-01-19"): (1, 5.0),
        ("ben", "week", "2026-02-09"): (3, 13.42),
        ("ben", "week", "2026-03-16"): (3, 7.08),
        ("ben", "month", "2026-01-01"): (3, 8.17),
        ("ben", "month", "2026-02-01"): (3, 13.42),
        ("ben", "month", "2026-03-01"): (3, 7.08),
        ("cleo", "day", "2026-01-15"): (1, 3.0),
        ("cleo", "day", "2026-03-10"): (1, 3.0),
        ("cleo", "week", "2026-01-12"): (1, 3.0),
        ("cleo", "week", "2026-03-09"): (1, 3.0),
        ("cleo", "month", "2026-01-01"): (1, 3.0),
        ("cleo", "month", "2026-03-01"): (1, 3.0),
    }
    actual = engine.by("listening_activity", "listener", "period", "period_start")
    _check(actual, expected, ("streams", "minutes_played"))


def test_by_hour_of_day(engine):
    expected = {
        ("ana", 0): (1, 2.0, 0.0833),
        ("ana", 8): (1, 30.0, 0.0833),
        ("ana", 18): (3, 9.0, 0.25),
        ("ana", 19): (3, 24.33, 0.25),
        ("ana", 20): (2, 4.25, 0.1667),
        ("ana", 21): (1, 4.0, 0.0833),
        ("ana", 23): (1, 3.0, 0.0833),
        ("ben", 7): (2, 3.17, 0.2222),
        ("ben", 12): (1, 5.0, 0.1111),
        ("ben", 18): (3, 7.08, 0.3333),
        ("ben", 19): (2, 10.42, 0.2222),
        ("ben", 20): (1, 3.0, 0.1111),
        ("cleo", 9): (2, 6.0, 1.0),
    }
    actual = engine.by("listening_by_hour", "listener", "hour_of_day")
    _check(actual, expected, ("streams", "minutes_played", "share_of_streams"))


def test_by_weekday(engine):
    expected = {
        ("ana", 1): ("Monday", 5, 10.58, 0.4167),
        ("ana", 2): ("Tuesday", 3, 27.0, 0.25),
        ("ana", 3): ("Wednesday", 2, 34.0, 0.1667),
        ("ana", 6): ("Saturday", 1, 3.0, 0.0833),
        ("ana", 7): ("Sunday", 1, 2.0, 0.0833),
        ("ben", 2): ("Tuesday", 1, 5.0, 0.1111),
        ("ben", 5): ("Friday", 2, 4.08, 0.2222),
        ("ben", 6): ("Saturday", 5, 9.58, 0.5556),
        ("ben", 7): ("Sunday", 1, 10.0, 0.1111),
        ("cleo", 2): ("Tuesday", 1, 3.0, 0.5),
        ("cleo", 4): ("Thursday", 1, 3.0, 0.5),
    }
    actual = engine.by("listening_by_weekday", "listener", "iso_weekday")
    _check(actual, expected, ("weekday_name", "streams", "minutes_played", "share_of_streams"))


def test_by_country(engine):
    expected = {
        ("SE",): (10, 71.58, 1, 0.4348),
        ("US",): (4, 10.08, 2, 0.1739),  # ana once, ben three times
        ("GB",): (3, 13.42, 1, 0.1304),
        (None,): (3, 8.17, 1, 0.1304),  # ben's account-data plays name no country
        ("DE",): (1, 2.0, 1, 0.0435),
        ("FR",): (2, 6.0, 1, 0.087),
    }
    actual = engine.by("listening_by_country", "conn_country")
    _check(actual, expected, ("streams", "minutes_played", "listeners", "share_of_streams"))


def test_skip_rate_excludes_unknown_skips_and_short_plays_count_everywhere(engine):
    columns = (
        "plays",
        "plays_skip_known",
        "plays_skipped",
        "plays_skip_unknown",
        "skip_rate",
        "short_plays",
        "short_play_rate",
    )
    expected = {
        ("ana", "2026-01-01"): (5, 4, 1, 1, 0.25, 1, 0.2),
        ("ana", "2026-02-01"): (4, 3, 1, 1, 0.3333, 1, 0.25),
        ("ana", "2026-03-01"): (3, 2, 0, 1, 0.0, 0, 0.0),
        ("ben", "2026-01-01"): (3, 0, 0, 3, None, 1, 0.3333),  # account data: skips unknown
        ("ben", "2026-02-01"): (3, 2, 1, 1, 0.5, 1, 0.3333),
        ("ben", "2026-03-01"): (3, 2, 0, 1, 0.0, 1, 0.3333),
        ("cleo", "2026-01-01"): (1, 1, 0, 0, 0.0, 0, 0.0),
        ("cleo", "2026-03-01"): (1, 1, 0, 0, 0.0, 0, 0.0),
    }
    actual = engine.by("listening_skip_rate", "listener", "month_start")
    _check(actual, expected, columns)


def test_active_days_per_month(engine):
    expected = {
        ("ana", "2026-01-01"): (3, 31, 0.0968, 13.42),
        ("ana", "2026-02-01"): (3, 28, 0.1071, 3.11),
        ("ana", "2026-03-01"): (2, 31, 0.0645, 13.5),
        ("ben", "2026-01-01"): (2, 31, 0.0645, 4.08),
        ("ben", "2026-02-01"): (2, 28, 0.0714, 6.71),
        ("ben", "2026-03-01"): (2, 31, 0.0645, 3.54),
        ("cleo", "2026-01-01"): (1, 31, 0.0323, 3.0),
        ("cleo", "2026-03-01"): (1, 31, 0.0323, 3.0),
    }
    actual = engine.by("listening_active_days", "listener", "month_start")
    _check(actual, expected, ("active_days", "days_in_month", "active_day_share", "minutes_per_active_day"))


def test_top_artists_by_time_listened_music_only(engine):
    expected = {
        ("ana", 1): ("Artist A", 10.33, 4, 2),
        ("ana", 2): ("Artist Z", 8.0, 3, 1),  # same time as Artist D, more plays (ties go by plays, not name)
        ("ana", 3): ("Artist D", 8.0, 2, 1),
        ("ana", 4): ("Artist B", 0.25, 1, 1),
        ("ben", 1): ("Artist E", 14.0, 4, 2),
        ("ben", 2): ("Artist F", 4.42, 2, 1),
        ("ben", 3): ("Artist A", 0.17, 1, 1),
        ("cleo", 1): ("Artist G", 6.0, 2, 1),
    }
    actual = engine.by("listening_top_artists", "listener", "artist_rank")
    _check(actual, expected, ("artist_name", "minutes_played", "plays", "tracks"))


def test_top_tracks_by_time_listened_music_only(engine):
    expected = {
        ("ana", 1): ("Song Z1", "Artist Z", 8.0, 3),  # same time as Song D1, more plays
        ("ana", 2): ("Song D1", "Artist D", 8.0, 2),
        ("ana", 3): ("Song A1", "Artist A", 6.0, 2),
        ("ana", 4): ("Song A2", "Artist A", 4.33, 2),
        ("ana", 5): ("Song B1", "Artist B", 0.25, 1),
        ("ben", 1): ("Song E2", "Artist E", 8.0, 2),
        ("ben", 2): ("Song E1", "Artist E", 6.0, 2),
        ("ben", 3): ("Song F1", "Artist F", 4.42, 2),
        ("ben", 4): ("Song A1", "Artist A", 0.17, 1),
        ("cleo", 1): ("Song G1", "Artist G", 6.0, 2),
    }
    actual = engine.by("listening_top_tracks", "listener", "track_rank")
    _check(actual, expected, ("track_name", "artist_name", "minutes_played", "plays"))


def test_artists_gained_and_lost_month_over_month(engine):
    columns = ("artists", "new_artists", "retained_artists", "lost_artists", "previous_artists", "retention_rate")
    expected = {
        # ana: January {A, B}, February {A, Z, D}, March {Z, D}
        ("ana", "2026-01-01"): (2, 2, 0, 0, 0, None),
        ("ana", "2026-02-01"): (3, 2, 1, 1, 2, 0.5),
        ("ana", "2026-03-01"): (2, 0, 2, 1, 3, 0.6667),
        # ben: January {E, A} (A from the account data), February {E, F}, March {F, E};
        # his podcast and the play naming nothing bring no artist
        ("ben", "2026-01-01"): (2, 2, 0, 0, 0, None),
        ("ben", "2026-02-01"): (2, 1, 1, 1, 2, 0.5),
        ("ben", "2026-03-01"): (2, 0, 2, 0, 2, 1.0),
        # cleo: {G} in January and March, nothing in February: lost, then new again
        ("cleo", "2026-01-01"): (1, 1, 0, 0, 0, None),
        ("cleo", "2026-02-01"): (0, 0, 0, 1, 1, 0.0),
        ("cleo", "2026-03-01"): (1, 1, 0, 0, 0, None),
    }
    # no April rows: nobody played after March
    actual = engine.by("listening_artist_churn", "listener", "month_start")
    _check(actual, expected, columns)
