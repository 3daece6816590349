"""Listening-history exports: the three formats parsed into `streams` rows, personal data kept
out, malformed files refused whole, and the synthetic sample export."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from spotify_assets.lib.listening.exports import ExportError, detect_format, hash_ip, parse_export, skip_reason
from spotify_assets.lib.samples.catalogue import sample_playlists
from spotify_assets.lib.samples.listening import (
    SAMPLE_END,
    SAMPLE_LISTENERS,
    SAMPLE_START,
    SAMPLE_TIMEZONES,
    write_sample_exports,
)
from spotify_assets.lib.tables.schema import STREAMS, TYPES

INGESTED = datetime(2026, 11, 21, 8, 30, tzinfo=timezone.utc)
KEY = b"test-ip-hash-key"


def _hmac(ip: str, key: bytes = KEY) -> str:
    """The expected ip_hash, computed here independently of the code under test."""
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


def _parse(data: bytes, fmt: str, *, key: bytes | None = KEY, source_file: str = "ana/export.json",
           listener: str = "ana") -> pd.DataFrame:
    return parse_export(data, fmt=fmt, listener=listener, source_file=source_file, ingested_at=INGESTED,
                        ip_hash_key=key)


def _expected(data: bytes, fmt: str, rows: list[dict[str, Any]], *, source_file: str = "ana/export.json",
              listener: str = "ana") -> pd.DataFrame:
    common = {
        "listener": listener,
        "source_format": fmt,
        "source_file": source_file,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "ingested_at": "2026-11-21T08:30:00Z",
    }
    records = [{**dict.fromkeys(STREAMS.column_names), **common, **row, "source_row": i} for i, row in enumerate(rows)]
    seen: dict[str, int] = {}
    for record in records:
        record["play_id"] = _play_id(record, seen)
    return STREAMS.conform(pd.DataFrame.from_records(records, columns=STREAMS.column_names))


def _play_id(record: dict[str, Any], seen: dict[str, int]) -> str:
    """The documented natural key, computed here independently of the code under test: family,
    listener, end time to the microsecond, what was played, ms played, occurrence in the file."""
    family = "account" if record["source_format"] == "account" else "extended"
    ended = pd.Timestamp(record["played_at"]).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = {k: record.get(k) or "" for k in ("track_uri", "episode_uri", "episode_name", "show_name", "artist_name", "track_name", "album_name")}
    if text["track_uri"] or text["episode_uri"]:
        what = "uri:" + (text["track_uri"] or text["episode_uri"])
    elif text["episode_name"] or text["show_name"]:
        what = f"episode:{text['show_name']}\x1e{text['episode_name']}"
    else:
        what = f"track:{text['artist_name']}\x1e{text['track_name']}\x1e{text['album_name']}"
    base = "\x1f".join((family, record["listener"], ended, what, str(record["ms_played"])))
    n = seen.get(base, 0)
    seen[base] = n + 1
    return hashlib.sha256(f"{base}\x1f{n}".encode()).hexdigest()[:32]


def _cells(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns] + [str(v) for v in frame.astype(object).to_numpy().ravel()]


# --------------------------------------------------------------------------------------------
# File names.


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("Streaming_History_Audio_2019-2021_0.json", "extended"),
        ("Streaming_History_Audio_2023_7.json", "extended"),
        ("ana/Spotify Extended Streaming History/Streaming_History_Audio_2024-2025_3.json", "extended"),
        ("ana\\Spotify Extended Streaming History\\Streaming_History_Audio_2024_1.json", "extended"),
        ("endsong_0.json", "endsong"),
        ("ben/MyData/endsong_12.json", "endsong"),
        ("StreamingHistory_music_0.json", "account"),
        ("StreamingHistory_podcast_1.json", "account"),
        ("StreamingHistory0.json", "account"),
        ("chloe/MyData/StreamingHistory3.json", "account"),
        # not listening exports (or not ones we ingest)
        ("Streaming_History_Video_2019-2023.json", None),
        ("Userdata.json", None),
        ("Playlist1.json", None),
        ("SearchQueries.json", None),
        ("ReadMe.pdf", None),
        ("Streaming_History_Audio_2023_0.json.bak", None),
        ("Streaming_History_Audio_2023_0.csv", None),
        ("endsong.json", None),
        ("StreamingHistory_music_0.csv", None),
        ("StreamingHistory_audiobook_0.json", None),
        ("Streaming_History_Audio_2023_0.json/", None),
        ("", None),
    ],
)
def test_detect_format(name: str, fmt: str | None) -> None:
    assert detect_format(name) == fmt


def test_video_history_is_recognised_and_skipped_with_a_reason() -> None:
    name = "Spotify Extended Streaming History/Streaming_History_Video_2019-2023.json"
    assert detect_format(name) is None
    assert "video" in (skip_reason(name) or "")
    assert skip_reason("Streaming_History_Audio_2023_0.json") is None
    assert skip_reason("Userdata.json") is None


# --------------------------------------------------------------------------------------------
# The extended format.

EXTENDED = """[
  {"ts": "2025-06-03T19:02:11Z", "platform": "android", "ms_played": 201000, "conn_country": "ES",
   "ip_addr": "192.0.2.7", "master_metadata_track_name": "Slow Down, Caroline",
   "master_metadata_album_artist_name": "Harlan, Bell & Oduya", "master_metadata_album_album_name": "Porch Lights, Vol. 1",
   "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC", "episode_name": null, "episode_show_name": null,
   "spotify_episode_uri": null, "reason_start": "clickrow", "reason_end": "trackdone", "shuffle": false,
   "skipped": false, "offline": false, "offline_timestamp": null, "incognito_mode": false},
  {"ts": "2025-06-03T19:40:00Z", "platform": "android", "ms_played": 1800000, "conn_country": "ES",
   "ip_addr": "192.0.2.7", "master_metadata_track_name": null, "master_metadata_album_artist_name": null,
   "master_metadata_album_album_name": null, "spotify_track_uri": null, "episode_name": "Ep. 3: Salt, explained",
   "episode_show_name": "Kitchen Science", "spotify_episode_uri": "spotify:episode:0aBcDeFgHiJkLmNoPqRsTu",
   "reason_start": "clickrow", "reason_end": "endplay", "shuffle": false, "skipped": null, "offline": true,
   "offline_timestamp": 1748977200000, "incognito_mode": true},
  {"ts": "2025-06-04T07:15:09Z", "platform": "ios", "ms_played": 4200, "conn_country": "PT",
   "ip_addr": "198.51.100.23", "master_metadata_track_name": "夜の高速道路", "master_metadata_album_artist_name": "夜明けシグナル",
   "master_metadata_album_album_name": "青い時間", "spotify_track_uri": "spotify:track:0VjIjW4GlUZAMYd2vXMi3b",
   "episode_name": null, "episode_show_name": null, "spotify_episode_uri": null, "reason_start": "trackdone",
   "reason_end": "fwdbtn", "shuffle": true, "skipped": true, "offline": false, "offline_timestamp": 0,
   "incognito_mode": false},
  {"ts": "2025-06-04T07:15:10Z", "platform": "ios", "ms_played": 0, "conn_country": "PT", "ip_addr": null,
   "master_metadata_track_name": null, "master_metadata_album_artist_name": null,
   "master_metadata_album_album_name": null, "spotify_track_uri": null, "episode_name": null,
   "episode_show_name": null, "spotify_episode_uri": null, "reason_start": "fwdbtn", "reason_end": "endplay",
   "shuffle": true, "skipped": null, "offline": false, "offline_timestamp": null, "incognito_mode": false},
  {"ts": "2025-06-04T07:19:00Z", "platform": "windows", "ms_played": 215000, "conn_country": "ES",
   "ip_addr": "192.0.2.7", "master_metadata_track_name": "Demo 3", "master_metadata_album_artist_name": "Me",
   "master_metadata_album_album_name": "Home Recordings", "spotify_track_uri": "spotify:local:Me:Home+Recordings:Demo+3:215",
   "episode_name": null, "episode_show_name": null, "spotify_episode_uri": null, "reason_start": "clickrow",
   "reason_end": "trackdone", "shuffle": false, "skipped": false, "offline": false, "offline_timestamp": null,
   "incognito_mode": false, "audiobook_title": null, "a_field_spotify_may_add": {"x": 1}}
]""".encode()


def test_extended_rows_exactly() -> None:
    frame = _parse(EXTENDED, "extended")
    song = {"conn_country": "ES", "platform": "android", "incognito_mode": False, "offline": False}
    expected = _expected(EXTENDED, "extended", [
        {**song, "played_at": "2025-06-03T19:02:11Z", "ms_played": 201000, "track_name": "Slow Down, Caroline",
         "artist_name": "Harlan, Bell & Oduya", "album_name": "Porch Lights, Vol. 1",
         "song_id": "4uLU6hMCjMI75M1A2tKUQC", "track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
         "ip_hash": _hmac("192.0.2.7"), "reason_start": "clickrow", "reason_end": "trackdone",
         "shuffle": False, "skipped": False},
        {**song, "played_at": "2025-06-03T19:40:00Z", "ms_played": 1800000, "episode_name": "Ep. 3: Salt, explained",
         "show_name": "Kitchen Science", "episode_uri": "spotify:episode:0aBcDeFgHiJkLmNoPqRsTu",
         "ip_hash": _hmac("192.0.2.7"), "reason_start": "clickrow", "reason_end": "endplay", "shuffle": False,
         "skipped": None, "offline": True, "offline_at": "2025-06-03T19:00:00Z", "incognito_mode": True},
        {"played_at": "2025-06-04T07:15:09Z", "ms_played": 4200, "track_name": "夜の高速道路",
         "artist_name": "夜明けシグナル", "album_name": "青い時間", "song_id": "0VjIjW4GlUZAMYd2vXMi3b",
         "track_uri": "spotify:track:0VjIjW4GlUZAMYd2vXMi3b", "conn_country": "PT", "platform": "ios",
         "ip_hash": _hmac("198.51.100.23"), "reason_start": "trackdone", "reason_end": "fwdbtn", "shuffle": True,
         "skipped": True, "offline": False, "incognito_mode": False},
        {"played_at": "2025-06-04T07:15:10Z", "ms_played": 0, "conn_country": "PT", "platform": "ios",
         "reason_start": "fwdbtn", "reason_end": "endplay", "shuffle": True, "skipped": None, "offline": False,
         "incognito_mode": False},
        {"played_at": "2025-06-04T07:19:00Z", "ms_played": 215000, "track_name": "Demo 3", "artist_name": "Me",
         "album_name": "Home Recordings", "track_uri": "spotify:local:Me:Home+Recordings:Demo+3:215",
         "conn_country": "ES", "platform": "windows", "ip_hash": _hmac("192.0.2.7"), "reason_start": "clickrow",
         "reason_end": "trackdone", "shuffle": False, "skipped": False, "offline": False, "incognito_mode": False},
    ])
    pd.testing.assert_frame_equal(frame, expected)
    # What the table declares, dtype for dtype.
    assert list(frame.columns) == STREAMS.column_names
    assert [str(t) for t in frame.dtypes] == [TYPES[c.type] for c in STREAMS.columns]


def test_skipped_null_stays_null_and_podcasts_have_no_track() -> None:
    frame = _parse(EXTENDED, "extended")
    assert frame["skipped"].isna().tolist() == [False, True, False, True, False]
    podcast = frame.iloc[1]
    assert podcast["track_name"] is None and podcast["song_id"] is None and podcast["track_uri"] is None
    assert podcast["show_name"] == "Kitchen Science"


def test_song_id_only_from_a_track_uri() -> None:
    frame = _parse(EXTENDED, "extended")
    assert frame["song_id"].tolist() == ["4uLU6hMCjMI75M1A2tKUQC", None, "0VjIjW4GlUZAMYd2vXMi3b", None, None]
    uris = ["spotify:track:6rqhFgbbKwnb9MLmUQDhG6", "spotify:track:", "spotify:episode:6rqhFgbbKwnb9MLmUQDhG6",
            "https://open.spotify.com/track/6rqhFgbbKwnb9MLmUQDhG6", "spotify:track:6rqhFgbb Kwnb9", "spotify:track:a:b",
            "spotify:local:::Title:100", ""]
    data = json.dumps([{"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "spotify_track_uri": u} for u in uris]).encode()
    frame = _parse(data, "extended")
    assert frame["song_id"].tolist() == ["6rqhFgbbKwnb9MLmUQDhG6"] + [None] * 7
    assert frame["track_uri"].tolist() == uris  # the uri itself is kept as exported


ENDSONG = """[
  {"ts": "2016-03-05T07:42:18Z", "username": "oldname123", "platform": "Android OS 6.0.1 API 23 (samsung, SM-G920F)",
   "ms_played": 187000, "conn_country": "DE", "ip_addr_decrypted": "203.0.113.45",
   "user_agent_decrypted": "unknown", "master_metadata_track_name": "Café de l'Aube",
   "master_metadata_album_artist_name": "Zoé Marchand", "master_metadata_album_album_name": "Rêves Éveillés",
   "spotify_track_uri": "spotify:track:2takcwOaAZWiXQijPHIx7B", "episode_name": null, "episode_show_name": null,
   "spotify_episode_uri": null, "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": false,
   "skipped": null, "offline": true, "offline_timestamp": 1457163000, "incognito_mode": false},
  {"ts": "2016-03-05T08:01:00Z", "username": "oldname123", "platform": "Android OS 6.0.1 API 23 (samsung, SM-G920F)",
   "ms_played": 12000, "conn_country": "DE", "ip_addr_decrypted": "2001:DB8:0:0::1",
   "user_agent_decrypted": "Spotify/8.4.1 Android/23 (SM-G920F)", "master_metadata_track_name": "Fjärran Ö",
   "master_metadata_album_artist_name": "Søren Ålvik Trio", "master_metadata_album_album_name": "Nordlys",
   "spotify_track_uri": "spotify:track:5KdW0RJz4RDM1M2oNxZz3D", "episode_name": null, "episode_show_name": null,
   "spotify_episode_uri": null, "reason_start": "clickrow", "reason_end": "fwdbtn", "shuffle": true,
   "skipped": true, "offline": false, "offline_timestamp": 0, "incognito_mode": true}
]""".encode()


def test_endsong_rows_exactly() -> None:
    frame = _parse(ENDSONG, "endsong", source_file="ben/endsong_0.json", listener="ben")
    common = {"conn_country": "DE", "platform": "Android OS 6.0.1 API 23 (samsung, SM-G920F)"}
    expected = _expected(ENDSONG, "endsong", [
        {**common, "played_at": "2016-03-05T07:42:18Z", "ms_played": 187000, "track_name": "Café de l'Aube",
         "artist_name": "Zoé Marchand", "album_name": "Rêves Éveillés", "song_id": "2takcwOaAZWiXQijPHIx7B",
         "track_uri": "spotify:track:2takcwOaAZWiXQijPHIx7B", "ip_hash": _hmac("203.0.113.45"),
         "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": False, "skipped": None,
         "offline": True, "offline_at": "2016-03-05T07:30:00Z", "incognito_mode": False},
        {**common, "played_at": "2016-03-05T08:01:00Z", "ms_played": 12000, "track_name": "Fjärran Ö",
         "artist_name": "Søren Ålvik Trio", "album_name": "Nordlys", "song_id": "5KdW0RJz4RDM1M2oNxZz3D",
         "track_uri": "spotify:track:5KdW0RJz4RDM1M2oNxZz3D", "ip_hash": _hmac("2001:db8::1"),
         "reason_start": "clickrow", "reason_end": "fwdbtn", "shuffle": True, "skipped": True, "offline": False,
         "incognito_mode": True},
    ], source_file="ben/endsong_0.json", listener="ben")
    pd.testing.assert_frame_equal(frame, expected)
    cells = _cells(frame)
    for private in ("oldname123", "Spotify/8.4.1", "203.0.113.45", "2001:DB8", "2001:db8"):
        assert not any(private in c for c in cells), private


ACCOUNT_MUSIC = """[
  {"endTime": "2021-02-04 19:02", "artistName": "Northern Tigers", "trackName": "Heavy Weekend", "msPlayed": 213456},
  {"endTime": "2021-02-04 23:59", "artistName": "Unknown Artist", "trackName": "Unknown Track", "msPlayed": 0},
  {"endTime": "2021-02-05 00:03", "artistName": "Северный Маяк", "trackName": "Белые ночи", "msPlayed": 29999}
]""".encode()

ACCOUNT_PODCAST = b"""[
  {"endTime": "2021-02-06 08:15", "podcastName": "Made-Up History", "episodeName": "A very short war", "msPlayed": 1500000}
]"""


def test_account_music_rows_exactly() -> None:
    frame = _parse(ACCOUNT_MUSIC, "account", source_file="chloe/StreamingHistory_music_0.json", listener="chloe")
    expected = _expected(ACCOUNT_MUSIC, "account", [
        {"played_at": "2021-02-04T19:02:00Z", "ms_played": 213456, "artist_name": "Northern Tigers",
         "track_name": "Heavy Weekend"},
        {"played_at": "2021-02-04T23:59:00Z", "ms_played": 0, "artist_name": "Unknown Artist",
         "track_name": "Unknown Track"},
        {"played_at": "2021-02-05T00:03:00Z", "ms_played": 29999, "artist_name": "Северный Маяк",
         "track_name": "Белые ночи"},
    ], source_file="chloe/StreamingHistory_music_0.json", listener="chloe")
    pd.testing.assert_frame_equal(frame, expected)


def test_account_podcast_rows_exactly() -> None:
    frame = _parse(ACCOUNT_PODCAST, "account", source_file="chloe/StreamingHistory_podcast_0.json", listener="chloe")
    expected = _expected(ACCOUNT_PODCAST, "account", [
        {"played_at": "2021-02-06T08:15:00Z", "ms_played": 1500000, "show_name": "Made-Up History",
         "episode_name": "A very short war"},
    ], source_file="chloe/StreamingHistory_podcast_0.json", listener="chloe")
    pd.testing.assert_frame_equal(frame, expected)


def test_timestamps_become_utc() -> None:
    data = json.dumps([
        {"ts": "2025-06-03T21:02:11+02:00", "ms_played": 1},  # an offset is honoured
        {"ts": "2025-06-03T19:02:11.250Z", "ms_played": 1},  # fractions of a second are kept
        {"ts": "2025-06-03T19:02:11", "ms_played": 1},  # no offset: UTC, as Spotify documents ts
        {"ts": "2025-11-02T01:30:00-05:00", "ms_played": 1},
    ]).encode()
    played = _parse(data, "extended")["played_at"]
    assert str(played.dtype) == "datetime64[us, UTC]"
    assert played.tolist() == [
        pd.Timestamp("2025-06-03T19:02:11Z"),
        pd.Timestamp("2025-06-03T19:02:11.250Z"),
        pd.Timestamp("2025-06-03T19:02:11Z"),
        pd.Timestamp("2025-11-02T06:30:00Z"),
    ]
    # endTime is UTC too: no local time zone is applied, whatever the machine's.
    account = _parse(b'[{"endTime": "2021-07-01 23:30", "msPlayed": 5}]', "account")
    assert account["played_at"].tolist() == [pd.Timestamp("2021-07-01T23:30:00Z")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1748977200, "2025-06-03T19:00:00Z"),  # seconds
        (1748977200000, "2025-06-03T19:00:00Z"),  # milliseconds
        (1748977200123, "2025-06-03T19:00:00.123Z"),
        (1748977200.5, "2025-06-03T19:00:00.500Z"),  # fractional seconds
        (1457163000, "2016-03-05T07:30:00Z"),
        (0, None),
        (None, None),
    ],
)
def test_offline_timestamp_seconds_or_milliseconds(value: Any, expected: str | None) -> None:
    data = json.dumps([{"ts": "2025-06-03T19:05:00Z", "ms_played": 1, "offline": True,
                        "offline_timestamp": value}]).encode()
    offline_at = _parse(data, "extended")["offline_at"]
    assert str(offline_at.dtype) == "datetime64[us, UTC]"
    if expected is None:
        assert offline_at.isna().all()
    else:
        assert offline_at.tolist() == [pd.Timestamp(expected)]


def test_missing_offline_timestamp_field_is_null() -> None:
    frame = _parse(b'[{"ts": "2025-06-03T19:05:00Z", "ms_played": 1}]', "extended")
    assert frame["offline_at"].isna().all() and frame["offline"].isna().all()


# --------------------------------------------------------------------------------------------
# The IP address.


def test_ip_address_never_appears_in_the_frame() -> None:
    for key in (KEY, None):
        for data, fmt in ((EXTENDED, "extended"), (ENDSONG, "endsong")):
            frame = _parse(data, fmt, key=key)
            addresses = [r.get("ip_addr") or r.get("ip_addr_decrypted") for r in json.loads(data)]
            for ip in filter(None, addresses):
                spellings = {ip, ip.lower(), str(ipaddress.ip_address(ip))}
                assert not any(s in cell for s in spellings for cell in _cells(frame)), ip
                # nor an unkeyed hash of it, which anyone could recompute from a guessed address
                assert not any(hashlib.sha256(ip.encode()).hexdigest()[:32] in c for c in _cells(frame))


def test_ip_hash_only_with_a_key() -> None:
    assert _parse(EXTENDED, "extended", key=None)["ip_hash"].isna().all()
    with_key = _parse(EXTENDED, "extended", key=KEY)["ip_hash"]
    assert with_key.tolist() == [_hmac("192.0.2.7"), _hmac("192.0.2.7"), _hmac("198.51.100.23"), None,
                                 _hmac("192.0.2.7")]
    other = _parse(EXTENDED, "extended", key=b"another key")["ip_hash"]
    assert other[0] != with_key[0] and other[0] == _hmac("192.0.2.7", b"another key")
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in with_key.dropna())


def test_ip_hash_is_the_same_for_every_spelling_of_an_address() -> None:
    assert hash_ip("2001:DB8:0:0::1", KEY) == hash_ip("2001:db8::1", KEY) == _hmac("2001:db8::1")
    assert hash_ip(" 192.0.2.7 ", KEY) == _hmac("192.0.2.7")
    assert hash_ip("not-an-address", KEY) == _hmac("not-an-address")


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="ip_hash_key"):
        _parse(EXTENDED, "extended", key=b"")


# --------------------------------------------------------------------------------------------
# Malformed files.


def _rows(*rows: dict[str, Any]) -> bytes:
    good = {"ts": "2025-06-03T19:02:11Z", "ms_played": 1000}
    return json.dumps([good, *rows]).encode()


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "extended", "ben/x.json: not valid JSON"),
        (b"\x89PNG\r\n", "extended", "ben/x.json: not valid JSON"),
        (b'[{"ts": "2025-06-03T19:02:11Z", "ms_played": 1000},', "extended", "ben/x.json: not valid JSON"),
        (b'{"ts": "2025-06-03T19:02:11Z", "ms_played": 1}', "extended", "ben/x.json: expected a JSON list of plays, got an object"),
        (b"null", "extended", "ben/x.json: expected a JSON list of plays, got null"),
        (b'[{"ts": "2025-06-03T19:02:11Z", "ms_played": 1}, 7]', "extended", "ben/x.json: row 1: expected an object (a play), got a number"),
        (_rows({"ts": "yesterday", "ms_played": 1}), "extended", "ben/x.json: row 1: 'ts' is not an ISO 8601 timestamp: 'yesterday'"),
        (_rows({"ts": "2025-06-03", "ms_played": 1}), "extended", "ben/x.json: row 1: 'ts' is not an ISO 8601 timestamp: '2025-06-03'"),
        (_rows({"ts": "2025-02-30T10:00:00Z", "ms_played": 1}), "extended", "row 1: 'ts' is not an ISO 8601 timestamp: '2025-02-30T10:00:00Z'"),
        (_rows({"ts": 1748977200, "ms_played": 1}), "extended", "row 1: 'ts' is not an ISO 8601 timestamp: 1748977200"),
        (_rows({"ms_played": 1}), "extended", "ben/x.json: row 1: missing 'ts'"),
        (_rows({"ts": None, "ms_played": 1}), "extended", "ben/x.json: row 1: null 'ts'"),
        (_rows({"ts": "2025-06-03T19:02:11Z"}), "extended", "ben/x.json: row 1: missing 'ms_played'"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": "1000"}), "extended", "row 1: 'ms_played' is not a whole, non-negative number of milliseconds: '1000'"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": -5}), "extended", "row 1: 'ms_played' is not a whole, non-negative number of milliseconds: -5"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1.5}), "extended", "row 1: 'ms_played' is not a whole"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": True}), "extended", "row 1: 'ms_played' is not a whole"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "skipped": "yes"}), "extended", "row 1: 'skipped' is not true, false or null: 'yes'"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "platform": ["android"]}), "extended", "row 1: 'platform' is not a string"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "offline_timestamp": "soon"}), "extended", "row 1: 'offline_timestamp' is not epoch seconds or milliseconds: 'soon'"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "offline_timestamp": -1}), "extended", "row 1: 'offline_timestamp' is not epoch"),
        (_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "offline_timestamp": 10**17}), "extended", "row 1: 'offline_timestamp' is not epoch"),
        # an account file given as extended (and the other way round)
        (b'[{"endTime": "2021-02-04 19:02", "artistName": "A", "trackName": "B", "msPlayed": 1}]', "extended", "ben/x.json: row 0: missing 'ts'"),
        (_rows(), "account", "ben/x.json: row 0: missing 'endTime'"),
        (b'[{"endTime": "04/02/2021 19:02", "msPlayed": 1}]', "account", "row 0: 'endTime' is not an ISO 8601 timestamp: '04/02/2021 19:02'"),
        (b'[{"endTime": "2021-02-04 19:02", "msPlayed": null}]', "account", "ben/x.json: row 0: null 'msPlayed'"),
    ],
)
def test_malformed_files_raise_naming_the_file_and_row(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(ExportError) as raised:
        _parse(data, fmt, source_file="ben/x.json")
    assert message in str(raised.value)
    assert str(raised.value).startswith("ben/x.json: ")
    assert isinstance(raised.value, ValueError)
    assert raised.value.source_file == "ben/x.json"


def test_a_bad_last_row_fails_the_whole_file() -> None:
    rows = [{"ts": f"2025-06-03T19:{m:02d}:00Z", "ms_played": 1000} for m in range(40)]
    rows.append({"ts": "2025-06-03T20:00:00Z", "ms_played": "oops"})
    with pytest.raises(ExportError, match="row 40: 'ms_played'") as raised:
        _parse(json.dumps(rows).encode(), "extended")
    assert raised.value.row == 40


def test_an_ip_address_is_never_quoted_in_an_error() -> None:
    with pytest.raises(ExportError) as raised:
        _parse(_rows({"ts": "2025-06-03T19:02:11Z", "ms_played": 1, "ip_addr": ["192.0.2.99"]}), "extended")
    assert "row 1" in str(raised.value) and "192.0.2.99" not in str(raised.value)


def test_bad_arguments_are_not_export_errors() -> None:
    for kwargs in ({"fmt": "csv"}, {"listener": ""}, {"ingested_at": datetime(2026, 1, 1)}):
        args = {"fmt": "extended", "listener": "ana", "source_file": "x", "ingested_at": INGESTED,
                "ip_hash_key": None, **kwargs}
        with pytest.raises(ValueError) as raised:
            parse_export(EXTENDED, **args)
        assert not isinstance(raised.value, ExportError)


def test_an_empty_export_is_an_empty_typed_frame() -> None:
    frame = _parse(b"[]", "extended")
    assert frame.empty and list(frame.columns) == STREAMS.column_names
    assert [str(t) for t in frame.dtypes] == [TYPES[c.type] for c in STREAMS.columns]


def test_a_byte_order_mark_is_tolerated_and_the_sha_is_of_the_bytes_given() -> None:
    data = b"\xef\xbb\xbf" + ACCOUNT_PODCAST
    frame = _parse(data, "account")
    assert frame["source_sha256"].tolist() == [hashlib.sha256(data).hexdigest()]


def test_a_large_extended_file_parses_quickly() -> None:
    row = json.loads(EXTENDED)[0]
    rows = []
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(16_000):
        rows.append({**row, "ts": (start + timedelta(minutes=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "ip_addr": f"198.51.100.{i % 250}", "offline_timestamp": 1704067200000 + i if i % 9 == 0 else None,
                     "master_metadata_track_name": f"Song {i % 700}", "skipped": None if i % 31 == 0 else i % 4 == 0})
    data = json.dumps(rows, indent=2).encode()
    assert len(data) > 8_000_000
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        frame = _parse(data, "extended")
        best = min(best, time.perf_counter() - started)
    assert len(frame) == 16_000 and frame["source_row"].tolist() == list(range(16_000))
    assert best < 1.0, f"16,000 plays took {best:.2f} s"


# --------------------------------------------------------------------------------------------
# The synthetic sample.


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], pd.DataFrame]:
    folder = tmp_path_factory.mktemp("listening")
    paths = write_sample_exports(folder, now=datetime(2026, 11, 21, 8, tzinfo=timezone.utc))
    frames = []
    for path in paths:
        relative = path.relative_to(folder).as_posix()
        fmt = detect_format(relative)
        if fmt is None:
            continue
        frames.append(parse_export(path.read_bytes(), fmt=fmt, listener=relative.split("/")[0], source_file=relative,
                                   ingested_at=INGESTED, ip_hash_key=KEY))
    return folder, paths, pd.concat(frames, ignore_index=True)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sample_is_deterministic_and_independent_of_now(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, paths, _ = sample
    other = tmp_path / "other"
    again = write_sample_exports(other, now=datetime(2031, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=9))))
    assert [p.relative_to(other) for p in again] == [p.relative_to(folder) for p in paths]
    assert _tree(other) == _tree(folder)
    # Writing again over the same folder changes nothing, and leaves other files alone.
    (other / "ana" / "notes.txt").write_text("mine")
    assert write_sample_exports(other, now=datetime.now(timezone.utc)) == again
    assert (other / "ana" / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="timezone-aware"):
        write_sample_exports(tmp_path / "naive", now=datetime(2026, 1, 1))


def test_sample_bytes_are_the_same_in_another_process(sample) -> None:  # type: ignore[no-untyped-def]
    folder, _, _ = sample
    script = (
        "import hashlib, sys, tempfile\nfrom datetime import datetime, timezone\nfrom pathlib import Path\n"
        "from spotify_assets.lib.samples.listening import write_sample_exports\n"
        "d = Path(tempfile.mkdtemp())\n"
        "for p in write_sample_exports(d, now=datetime.now(timezone.utc)):\n"
        "    print(p.relative_to(d).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env).stdout
    here = {k: hashlib.sha256(v).hexdigest() for k, v in _tree(folder).items()}
    assert dict(line.split(" ") for line in out.splitlines()) == here


def test_sample_files_listeners_and_formats(sample) -> None:  # type: ignore[no-untyped-def]
    folder, paths, frame = sample
    names = {p.relative_to(folder).as_posix() for p in paths}
    assert {n.split("/")[0] for n in names} == set(SAMPLE_LISTENERS)
    assert all(len(n.split("/")) == 2 for n in names)
    assert "ben/endsong_0.json" in names and "chloe/StreamingHistory_music_0.json" in names
    assert any(n.startswith("ana/Streaming_History_Audio_") and n.endswith("_1.json") for n in names)
    video = [n for n in names if detect_format(n) is None]
    assert video and all(skip_reason(n) for n in video)  # recognised, deliberately not ingested
    formats = frame.groupby("listener")["source_format"].agg(lambda s: set(s)).to_dict()
    assert formats == {"ana": {"extended"}, "ben": {"endsong", "extended"}, "chloe": {"account"}}
    per_listener = frame.groupby("listener").size()
    assert 2_000 <= len(frame) <= 6_000 and per_listener.min() >= 500, per_listener.to_dict()
    assert sum(p.stat().st_size for p in paths) < 4_000_000
    assert frame["played_at"].min() >= pd.Timestamp(SAMPLE_START.isoformat(), tz="UTC")
    assert frame["played_at"].max() < pd.Timestamp((SAMPLE_END + timedelta(days=1)).isoformat(), tz="UTC")
    assert frame["played_at"].max() - frame["played_at"].min() > pd.Timedelta(days=480)
    # One file, one sha; a play is its file's sha and its row.
    assert frame.groupby("source_file")["source_sha256"].nunique().eq(1).all()
    assert not frame.duplicated(["source_sha256", "source_row"]).any()
    # Each listener's history is one sequence: a play starts after the one before it ended
    # (`ts` is whole seconds, hence the second of slack).
    for _, plays in frame[frame["source_format"] != "account"].groupby("listener"):
        plays = plays.sort_values("played_at")
        started = plays["played_at"] - pd.to_timedelta(plays["ms_played"].astype("int64"), unit="ms")
        assert (started.iloc[1:].to_numpy() >= (plays["played_at"].iloc[:-1] - pd.Timedelta(seconds=1)).to_numpy()).all()


def test_sample_has_the_quirks_of_real_exports(sample) -> None:  # type: ignore[no-untyped-def]
    _, _, frame = sample
    extended = frame[frame["source_format"] != "account"]
    podcasts = extended[extended["episode_uri"].notna()]
    assert len(podcasts) >= 20
    assert podcasts["track_name"].isna().all() and podcasts["song_id"].isna().all()
    assert podcasts["show_name"].notna().all() and podcasts["episode_name"].notna().all()
    assert podcasts["show_name"].str.startswith("Synthetic").all()
    unknown = extended[extended["track_name"].isna() & extended["episode_name"].isna()]
    assert len(unknown) >= 1
    assert extended["skipped"].eq(True).sum() >= 100 and extended["skipped"].eq(False).sum() >= 100
    assert extended.loc[extended["source_format"] == "extended", "skipped"].isna().sum() >= 20
    assert extended.loc[extended["source_format"] == "endsong", "skipped"].isna().mean() > 0.5
    offline = extended[extended["offline"].fillna(False)]
    assert len(offline) >= 50 and offline["offline_at"].notna().all()
    assert (offline["offline_at"] <= offline["played_at"]).all()
    assert (offline["played_at"] - offline["offline_at"]).max() < pd.Timedelta(hours=12)
    assert extended.loc[~extended["offline"].fillna(False), "offline_at"].isna().all()
    assert set(extended["conn_country"]) >= {"ES", "PT", "FR", "US", "CA"}
    assert set(extended["shuffle"]) == {True, False}
    assert extended["incognito_mode"].sum() >= 5
    assert (frame["ms_played"] < 30_000).sum() >= 100
    assert frame.loc[frame["source_format"] == "account", "ip_hash"].isna().all()  # that format has no IP
    assert extended["ip_hash"].notna().all()
    # Some plays are songs the synthetic catalogue's playlists list, with the same ids; some not.
    listed = {
        r["item"]["id"]
        for p in sample_playlists(datetime(2026, 11, 20, 8, tzinfo=timezone.utc))
        for r in p.rows
        if r["item"] and r["item"]["type"] == "track" and r["item"]["id"]
    }
    played = set(frame["song_id"].dropna())
    assert len(played & listed) >= 50 and played - listed
    assert frame["song_id"].dropna().str.fullmatch(r"[0-9A-Za-z]{22}").all()


def test_sample_peaks_in_the_evening_local_time(sample) -> None:  # type: ignore[no-untyped-def]
    _, _, frame = sample
    for listener, tz in SAMPLE_TIMEZONES.items():
        hours = frame.loc[frame["listener"] == listener, "played_at"].dt.tz_convert(tz).dt.hour
        counts = hours.value_counts().reindex(range(24), fill_value=0)
        bands = {h: sum(counts[(h + i) % 24] for i in range(3)) for h in range(24)}
        assert max(bands, key=bands.get) == 18, (listener, counts.to_dict())
        assert bands[18] > 0.4 * len(hours)


def test_sample_ip_addresses_are_documentation_addresses_and_never_stored(sample) -> None:  # type: ignore[no-untyped-def]
    folder, paths, frame = sample
    reserved = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
    addresses = set()
    for path in paths:
        for row in json.loads(path.read_bytes()):
            ip = row.get("ip_addr") or row.get("ip_addr_decrypted")
            if ip:
                addresses.add(ip)
    assert len(addresses) >= 20
    assert all(any(ipaddress.ip_address(ip) in net for net in reserved) for ip in addresses)
    everything = "\n".join(_cells(frame)).lower()
    assert not [ip for ip in addresses if ip.lower() in everything]
    assert "synthetic-" not in everything  # the old format's username is dropped
    # The same address hashes alike across files and formats.
    assert frame.loc[frame["listener"] == "ana", "ip_hash"].value_counts().iloc[0] > 100


# --- play_id: the natural key of a play --------------------------------------------------


def _extended_play(ts: str, uri: str = "spotify:track:4uLU6hMCjMI75M1A2tKUQC", ms: int = 1000, **extra: Any) -> dict[str, Any]:
    return {"ts": ts, "ms_played": ms, "spotify_track_uri": uri, "master_metadata_track_name": "T",
            "master_metadata_album_artist_name": "A", "platform": "ios", **extra}


def test_a_play_keeps_its_id_in_a_later_cumulative_export() -> None:
    old = orjson.dumps([_extended_play("2024-01-01T10:00:00Z"), _extended_play("2024-01-01T10:05:00Z")])
    new = orjson.dumps([_extended_play("2024-01-01T10:00:00Z"), _extended_play("2024-01-01T10:05:00Z"),
                        _extended_play("2024-01-02T09:00:00Z")])
    a = _parse(old, "extended", source_file="ana/Streaming_History_Audio_2024_0.json")
    b = _parse(new, "extended", source_file="ana/Streaming_History_Audio_2024_0 (1).json")
    assert a["play_id"].tolist() == b["play_id"].tolist()[:2] and b["play_id"].is_unique
    # another listener's identical play is another play
    assert set(_parse(old, "extended", listener="ben")["play_id"]).isdisjoint(a["play_id"])


def test_identical_plays_in_one_file_are_distinct_and_stay_so_in_a_re_export() -> None:
    # two zero-millisecond skips of one track ending in the same second are two plays
    data = orjson.dumps([_extended_play("2024-01-01T10:00:00Z", ms=0), _extended_play("2024-01-01T10:00:00Z", ms=0)])
    first = _parse(data, "extended")
    assert first["play_id"].is_unique
    assert _parse(data, "extended", source_file="ana/copy.json")["play_id"].tolist() == first["play_id"].tolist()
    # the key uses the end time to the second: one second apart is another play
    other = _parse(orjson.dumps([_extended_play("2024-01-01T10:00:01Z", ms=0)]), "extended")
    assert other["play_id"].iloc[0] not in set(first["play_id"])


def test_cross_format_extended_and_endsong_are_one_family_account_another() -> None:
    play = _extended_play("2024-01-01T10:00:00Z", ms=61000, ip_addr="192.0.2.1")
    endsong = dict(play, ip_addr_decrypted="192.0.2.1", username="ana", user_agent_decrypted="x")
    del endsong["ip_addr"]
    ext = _parse(orjson.dumps([play]), "extended")
    old = _parse(orjson.dumps([endsong]), "endsong")
    assert ext["play_id"].tolist() == old["play_id"].tolist()  # the same play counts once
    account = _parse(orjson.dumps([{"endTime": "2024-01-01 10:00", "artistName": "A", "trackName": "T", "msPlayed": 61000}]), "account")
    # minute precision, names only: not matched with the extended play (documented decision)
    assert account["play_id"].iloc[0] != ext["play_id"].iloc[0]
    assert _parse(orjson.dumps([{"endTime": "2024-01-01 10:00", "artistName": "A", "trackName": "T", "msPlayed": 61000}]),
                  "account", source_file="ana/StreamingHistory_music_1.json")["play_id"].tolist() == account["play_id"].tolist()
