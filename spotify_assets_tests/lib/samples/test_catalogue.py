"""The synthetic sample: API shape, edge cases, change between windows, learnable popularity that
moves like real data (release curves, months-scale trends, little per-window noise)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import unicodedata
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from spotify_assets.lib.samples import catalogue as cat
from spotify_assets.lib.samples.catalogue import (
    SAMPLE_SOURCE_LABEL,
    WINDOW_HOURS,
    SamplePlaylist,
    sample_playlist,
    sample_playlist_ids,
    sample_playlists,
)
from spotify_assets.lib.timestamps import iso_z

WINDOW = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
STEP = timedelta(hours=WINDOW_HOURS)
TEN_WINDOWS = [WINDOW + i * STEP for i in range(10)]
BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")


def _dump(playlists: list[SamplePlaylist]) -> str:
    return json.dumps([[p.meta, p.rows] for p in playlists], sort_keys=True, ensure_ascii=False)


def _songs(playlists: list[SamplePlaylist]) -> dict[str, dict[str, Any]]:
    """Catalogue tracks (not local files, not episodes) by id."""
    return {
        r["item"]["id"]: r["item"]
        for p in playlists
        for r in p.rows
        if r["item"] and r["item"]["type"] == "track" and not r["is_local"]
    }


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    item = row["item"]
    return (item["uri"] if item else None, row["added_at"], (row["added_by"] or {}).get("id"))


def _keys(playlists: list[SamplePlaylist]) -> dict[tuple[Any, ...], int | None]:
    return {
        (p.meta["id"], *_row_key(r)): (r["item"] or {}).get("popularity")
        for p in playlists
        for r in p.rows
    }


def test_ids_are_stable_and_each_playlist_is_served_alone() -> None:
    ids = sample_playlist_ids()
    assert 5 <= len(ids) <= 8
    assert len(set(ids)) == len(ids)
    assert all(BASE62_ID.match(i) for i in ids)
    everything = sample_playlists(WINDOW)
    assert [p.meta["id"] for p in everything] == ids
    for whole in everything:
        alone = sample_playlist(whole.meta["id"], WINDOW)
        assert _dump([alone]) == _dump([whole])


def test_same_window_is_identical_and_results_are_not_shared() -> None:
    first = sample_playlists(WINDOW)
    text = _dump(first)
    first[0].rows.clear()
    first[0].meta["name"] = "mutated"
    assert _dump(sample_playlists(WINDOW)) == text


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_window_is_byte_identical_in_another_process(hash_seed: str) -> None:
    code = (
        "import hashlib, json, sys\n"
        "from datetime import datetime, timezone\n"
        "from spotify_assets.lib.samples.catalogue import sample_playlists\n"
        "ps = sample_playlists(datetime(2026, 11, 20, 8, tzinfo=timezone.utc))\n"
        "text = json.dumps([[p.meta, p.rows] for p in ps], sort_keys=True, ensure_ascii=False)\n"
        "sys.stdout.write(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}  # a different str hash() salt
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout == hashlib.sha256(_dump(sample_playlists(WINDOW)).encode()).hexdigest()


def test_consecutive_windows_turn_over_a_few_rows_and_drift_popularity() -> None:
    for start in TEN_WINDOWS:
        before, after = _keys(sample_playlists(start)), _keys(sample_playlists(start + STEP))
        added, removed = after.keys() - before.keys(), before.keys() - after.keys()
        kept = before.keys() & after.keys()
        assert added and removed, start
        assert len(kept) >= 0.9 * len(before)
        # Every added row was added during the new window, never later than its end.
        window_end = start + 2 * STEP
        assert all(iso_z(start + STEP) <= k[2] < iso_z(window_end) for k in added)
        changed = [k for k in kept if before[k] is not None and before[k] != after[k]]
        comparable = [k for k in kept if before[k] is not None]
        # Popularity is smooth: a quarter of the rows change between windows (not four in five).
        assert 0.1 * len(comparable) < len(changed) < 0.5 * len(comparable)
        assert max(abs(before[k] - after[k]) for k in changed) <= 15


def test_popularity_trends_over_days_more_than_between_windows() -> None:
    moments = (WINDOW, WINDOW + STEP, WINDOW + timedelta(days=30))
    now, next_window, month_later = (_songs(sample_playlists(t)) for t in moments)
    step = [abs(now[i]["popularity"] - next_window[i]["popularity"]) for i in now.keys() & next_window]
    month = [abs(now[i]["popularity"] - month_later[i]["popularity"]) for i in now.keys() & month_later]
    assert statistics.mean(month) > 1.5 * statistics.mean(step)


def test_playlist_sizes_stay_roughly_stable_over_a_year() -> None:
    sizes = [[len(p.rows) for p in sample_playlists(WINDOW + timedelta(days=d))] for d in range(0, 365, 30)]
    for column in zip(*sizes, strict=True):
        assert max(column) - min(column) <= max(4, 0.25 * statistics.mean(column)), column


@pytest.mark.parametrize("start", TEN_WINDOWS, ids=lambda t: t.isoformat())
def test_every_edge_case_is_present(start: datetime) -> None:
    playlists = sample_playlists(start)
    rows = [r for p in playlists for r in p.rows]

    unavailable = [r for r in rows if r["item"] is None]
    assert unavailable and all(not r["is_local"] for r in unavailable)

    local = [r for r in rows if r["is_local"]]
    assert local
    for r in local:
        item = r["item"]
        assert item["id"] is None and item["href"] is None and item["is_local"] is True
        assert item["album"]["id"] is None and item["album"]["uri"] is None
        assert all(a["id"] is None and a["uri"] is None for a in item["artists"])
        assert item["popularity"] == 0 and "isrc" not in item["external_ids"]
        assert re.fullmatch(r"spotify:local:[^:]*:[^:]*:[^:]*:\d+", item["uri"])
        assert "+" in item["uri"] and " " not in item["uri"]

    episodes = [r["item"] for r in rows if r["item"] and r["item"]["type"] == "episode"]
    assert episodes
    for e in episodes:
        assert e["episode"] is True and e["track"] is False
        assert "album" not in e and "artists" not in e and "popularity" not in e
        assert BASE62_ID.match(e["id"]) and e["uri"] == f"spotify:episode:{e['id']}"
        assert e["show"]["type"] == "show" and e["show"]["name"] and e["show"]["publisher"]
        assert e["release_date_precision"] in {"year", "month", "day"}

    assert any(r["added_at"] is None and r["added_by"] is None and r["item"] for r in rows)

    twice = [
        p.meta["name"]
        for p in playlists
        for _, n in Counter(r["item"]["id"] for r in p.rows if r["item"] and r["item"]["id"]).items()
        if n > 1
    ]
    assert twice

    ids_by_isrc: dict[str, set[str]] = {}
    for song in _songs(playlists).values():
        ids_by_isrc.setdefault(song["external_ids"]["isrc"], set()).add(song["id"])
    assert any(len(ids) > 1 for ids in ids_by_isrc.values())


def test_catalogue_figures_are_in_range() -> None:
    playlists = sample_playlists(WINDOW)
    sizes = [len(p.rows) for p in playlists]
    assert max(sizes) > 150  # more than three pages of 50
    assert min(sizes) < 20
    songs = _songs(playlists)
    assert 300 <= len(songs) <= 450
    artists = {a["id"] for s in songs.values() for a in (*s["artists"], *s["album"]["artists"])}
    assert 80 <= len(artists) <= 120
    assert 150 <= len({s["album"]["id"] for s in songs.values()}) <= 300  # the New Release Radar: 72 fresh releases
    playlists_of: dict[str, set[str]] = {}
    for p in playlists:
        for r in p.rows:
            if r["item"] and r["item"]["id"]:
                playlists_of.setdefault(r["item"]["id"], set()).add(p.meta["id"])
    assert sum(len(v) > 1 for v in playlists_of.values()) >= 10  # shared between playlists


def test_multi_artist_tracks_and_album_artist_differing_from_track_artist() -> None:
    songs = list(_songs(sample_playlists(WINDOW)).values())
    multi = [s for s in songs if len(s["artists"]) > 1]
    assert 0.12 <= len(multi) / len(songs) <= 0.3
    assert max(len(s["artists"]) for s in songs) == 3
    differs = [s for s in songs if s["album"]["artists"][0]["id"] != s["artists"][0]["id"]]
    assert any(s["album"]["artists"][0]["name"] == "Various Artists" for s in differs)
    assert any(s["album"]["album_type"] != "compilation" for s in differs)  # a guest leads


def test_release_dates_match_their_precision_and_span_the_decades() -> None:
    songs = _songs(sample_playlists(WINDOW)).values()
    formats = {"year": r"\d{4}", "month": r"\d{4}-\d{2}", "day": r"\d{4}-\d{2}-\d{2}"}
    for s in songs:
        album = s["album"]
        assert re.fullmatch(formats[album["release_date_precision"]], album["release_date"]), album
    assert {s["album"]["release_date_precision"] for s in songs} == set(formats)
    years = [int(s["album"]["release_date"][:4]) for s in songs]
    assert min(years) < 1975 and max(years) == WINDOW.year
    window_end = (WINDOW + STEP).date().isoformat()
    assert all(s["album"]["release_date"] <= window_end for s in songs)
    last_year = (WINDOW - timedelta(days=365)).date().isoformat()
    recent = [
        s for s in songs
        if s["album"]["release_date_precision"] == "day" and s["album"]["release_date"] >= last_year
    ]
    assert 0.05 * len(songs) <= len(recent) <= 0.4 * len(songs)


@pytest.mark.parametrize(
    "start", [*TEN_WINDOWS[:3], datetime(2016, 3, 1, 16, tzinfo=timezone.utc)], ids=lambda t: t.isoformat()
)
def test_rows_end_at_the_window_end_and_are_in_added_order(start: datetime) -> None:
    window_end = iso_z(start + STEP)
    for p in sample_playlists(start):
        stamps = [r["added_at"] for r in p.rows]
        utc_second = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
        assert all(s is None or (re.fullmatch(utc_second, s) and s < window_end) for s in stamps)
        # Rows without a date are the playlist's oldest, so they come first.
        dated = [s for s in stamps if s is not None]
        assert stamps == [None] * (len(stamps) - len(dated)) + sorted(dated)


def test_names_with_commas_quotes_and_non_latin_scripts() -> None:
    songs = _songs(sample_playlists(WINDOW)).values()
    for names in ([s["name"] for s in songs], [a["name"] for s in songs for a in s["artists"]]):
        assert any("," in n for n in names)
        assert any('"' in n for n in names)
        assert any("'" in n for n in names)
        scripts = {unicodedata.name(c).split()[0] for n in names for c in n if ord(c) > 0x24F}
        assert {"CYRILLIC", "GREEK", "ARABIC", "HANGUL"} <= scripts
        assert scripts & {"HIRAGANA", "KATAKANA", "CJK"}
        assert any(unicodedata.name(c).startswith("LATIN") and ord(c) > 0x7F for n in names for c in n)


def test_sample_is_labelled_synthetic() -> None:
    assert SAMPLE_SOURCE_LABEL == "synthetic-sample"
    for p in sample_playlists(WINDOW):
        assert p.meta["name"].startswith("Synthetic · ")
        assert "synthetic sample generated by spotify-assets" in p.meta["description"].lower()
        assert p.meta["owner"]["display_name"] == "spotify-assets synthetic sample"


def test_objects_have_the_2026_api_shape() -> None:
    playlists = sample_playlists(WINDOW)
    for p in playlists:
        meta, pid = p.meta, p.meta["id"]
        assert set(meta) == {
            "collaborative", "description", "external_urls", "followers", "href", "id", "images", "name",
            "owner", "primary_color", "public", "snapshot_id", "type", "uri",
        }
        assert meta["type"] == "playlist" and meta["uri"] == f"spotify:playlist:{pid}"
        assert meta["href"] == f"https://api.spotify.com/v1/playlists/{pid}"
        assert meta["external_urls"] == {"spotify": f"https://open.spotify.com/playlist/{pid}"}
        assert meta["followers"]["href"] is None and isinstance(meta["followers"]["total"], int)
        assert {"display_name", "external_urls", "href", "id", "type", "uri"} == set(meta["owner"])
        assert all(set(i) == {"url", "height", "width"} for i in meta["images"])
        for r in p.rows:
            assert set(r) == {"added_at", "added_by", "is_local", "item", "primary_color", "video_thumbnail"}
            assert "track" not in r  # the 2026 row shape carries "item" only
            if r["added_by"] is not None:
                assert set(r["added_by"]) == {"external_urls", "href", "id", "type", "uri"}
                assert r["added_by"]["type"] == "user"
    for s in _songs(playlists).values():
        assert s["track"] is True and s["episode"] is False and s["is_playable"] is True
        assert s["uri"] == f"spotify:track:{s['id']}" and BASE62_ID.match(s["id"])
        assert re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", s["external_ids"]["isrc"])
        assert isinstance(s["popularity"], int) and 0 <= s["popularity"] <= 100
        assert s["preview_url"] is None and "available_markets" not in s
        album = s["album"]
        assert album["type"] == "album" and album["album_type"] in {"album", "single", "compilation"}
        assert album["uri"] == f"spotify:album:{album['id']}" and "available_markets" not in album
        assert [i["height"] for i in album["images"]] == [640, 300, 64]
        assert s["disc_number"] >= 1 and 1 <= s["track_number"] <= album["total_tracks"]
        for a in (*s["artists"], *album["artists"]):
            assert a["type"] == "artist" and a["uri"] == f"spotify:artist:{a['id']}"
            assert set(a) == {"external_urls", "href", "id", "name", "type", "uri"}


@pytest.mark.parametrize(
    "bad",
    [
        datetime(2026, 11, 20, 8),  # naive
        datetime(2026, 11, 20, 9, tzinfo=timezone.utc),  # not on the 8-hour grid
        datetime(2026, 11, 20, 8, 0, 1, tzinfo=timezone.utc),
        datetime(2026, 11, 20, 8, tzinfo=timezone(timedelta(hours=1))),  # not UTC
    ],
    ids=["naive", "hour", "second", "offset"],
)
def test_window_start_must_be_an_aligned_utc_instant(bad: datetime) -> None:
    with pytest.raises(ValueError, match=re.escape(bad.isoformat())):
        sample_playlists(bad)
    with pytest.raises(ValueError):
        sample_playlist(sample_playlist_ids()[0], bad)


def test_unknown_playlist_id_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="37i9dQZF1DXcBWIGoYBM5M"):
        sample_playlist("37i9dQZF1DXcBWIGoYBM5M", WINDOW)


def test_snapshot_id_changes_exactly_when_rows_change() -> None:
    same = different = 0
    previous: dict[str, tuple[str, list[tuple[Any, ...]]]] = {}
    for i in range(30):
        for p in sample_playlists(WINDOW + i * STEP):
            state = (p.meta["snapshot_id"], [_row_key(r) for r in p.rows])
            if p.meta["id"] in previous:
                old = previous[p.meta["id"]]
                assert (old[0] == state[0]) == (old[1] == state[1]), p.meta["name"]
                same += old[0] == state[0]
                different += old[0] != state[0]
            previous[p.meta["id"]] = state
    assert same and different
    assert len({p.meta["snapshot_id"] for p in sample_playlists(WINDOW)}) == len(sample_playlist_ids())


W = cat._window_index(WINDOW)
DAY = 3  # windows


def _listed(w: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Tracks listed at window w by id, and the fresh releases among them with their join window."""
    tracks: dict[str, Any] = {}
    fresh: dict[str, int] = {}
    for spec in cat._catalogue().playlists.values():
        for r in cat._rows_at(spec, w):
            if isinstance(r.content, cat._Track):
                tracks[r.content.id] = r.content
                if r.order[0] == 1 and spec.slots[r.order[1]].fresh_max_age_days:
                    fresh[r.content.id] = (r.added_at - cat._EPOCH) // cat._WINDOW
    return tracks, fresh


def _fresh_arrivals(first: int, last: int) -> list[tuple[Any, int]]:
    """(track, join window) of every fresh release that joins a playlist in windows first..last-1."""
    arrivals: dict[str, tuple[Any, int]] = {}
    for w in range(first, last):
        tracks, fresh = _listed(w)
        arrivals.update({i: (tracks[i], j) for i, j in fresh.items() if j == w})
    return list(arrivals.values())


def test_fresh_releases_climb_when_they_join_then_peak_and_decay() -> None:
    arrivals = _fresh_arrivals(W - 60, W + 60)
    assert len(arrivals) > 150
    pop = cat._popularity
    one_day = [pop(t, j + DAY) - pop(t, j) for t, j in arrivals]
    two_days = [pop(t, j + 2 * DAY) - pop(t, j) for t, j in arrivals]
    rose, fell = sum(d > 0 for d in one_day), sum(d < 0 for d in one_day)
    assert rose > 0.4 * len(arrivals) and rose > 4 * fell, (rose, fell, len(arrivals))  # the rest: unchanged
    assert sum(d > 0 for d in two_days) > 0.55 * len(arrivals)
    assert sum(d < 0 for d in two_days) < 0.15 * len(arrivals)

    # The release curve: low at release, a peak days or weeks later, lower again months later.
    peaked = decayed = 0
    for t, _ in arrivals:
        released = cat._window_index(datetime.combine(t.album.released, datetime.min.time(), timezone.utc))
        daily = [cat._popularity_value(t, released + d * DAY) for d in range(0, 241)]
        top = max(range(len(daily)), key=daily.__getitem__)
        peaked += 3 <= top <= 65 and daily[top] - daily[0] >= 8
        decayed += daily[top] - daily[240] >= 5
    assert peaked > 0.85 * len(arrivals), (peaked, len(arrivals))
    assert decayed > 0.85 * len(arrivals), (decayed, len(arrivals))


@pytest.mark.parametrize("start", [W, W - 600, W + 300])
def test_over_two_months_most_songs_move_a_little_both_ways(start: int) -> None:
    """Calibrated on real data: of 84 songs seen two months apart, 49 moved, by -11..+13."""
    (before, fresh_before), (after, fresh_after) = _listed(start), _listed(start + 180)
    both = sorted(before.keys() & after.keys() - fresh_before.keys() - fresh_after.keys())
    assert len(both) > 100
    change = [cat._popularity(after[i], start + 180) - cat._popularity(before[i], start) for i in both]
    moved = [d for d in change if d]
    assert 0.45 * len(both) < len(moved) < 0.85 * len(both), (len(moved), len(both))
    assert min(change) <= -4 and max(change) >= 4, (min(change), max(change))
    assert max(map(abs, change)) <= 20, (min(change), max(change))
    assert len(moved) - sum(abs(d) <= 5 for d in moved) < 0.25 * len(both)  # few move by more than 5


def test_one_day_changes_are_mostly_systematic() -> None:
    # Per-window noise is small: second differences of the unrounded value over 8-hour windows
    # remove everything smooth, and what is left is about sqrt(6) times the noise's sd.
    tracks = sorted(_listed(W)[0].values(), key=lambda t: t.id)
    second = [
        cat._popularity_value(t, w - 1) - 2 * cat._popularity_value(t, w) + cat._popularity_value(t, w + 1)
        for t in tracks
        for w in range(W, W + 30)
    ]
    assert float(np.std(second)) / 6**0.5 < 0.3

    # Persistence beats the mean by far, and knowing release age beats persistence on young songs.
    rows = []
    for w in range(W - 90, W + 90, DAY):
        now, later = _listed(w)[0], _listed(w + DAY)[0]
        for i in now.keys() & later.keys():
            age = (cat._window_start(w + 1).date() - now[i].album.released).days
            rows.append((w, age, cat._popularity(now[i], w), cat._popularity(later[i], w + DAY)))
    w_, age, p0, p1 = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    young = age < 60
    assert (p1 - p0)[young].mean() > 0.3  # fresh songs rise on average
    train, test = w_ < W, w_ >= W
    persistence = np.abs(p1 - p0)[test].mean()
    assert persistence < 0.05 * np.abs(p1 - p0[train].mean())[test].mean()
    buckets = np.digitize(age, [0, 3, 7, 14, 21, 30, 45, 60, 90, 150, 365])
    drift = {b: (p1 - p0)[train & (buckets == b)].mean() for b in set(buckets[train].tolist())}
    aware = np.abs(p1 - p0 - np.array([drift.get(b, 0.0) for b in buckets]))
    assert aware[test & young].mean() < 0.95 * np.abs(p1 - p0)[test & young].mean()


@pytest.mark.parametrize("start", [WINDOW, WINDOW + timedelta(days=41), WINDOW - timedelta(days=200)],
                         ids=lambda t: t.isoformat())
def test_popularity_is_learnable_from_simple_features(start: datetime) -> None:
    songs = list(_songs(sample_playlists(start)).values())
    tracks_by_lead = Counter(s["artists"][0]["id"] for s in songs)
    year_now = start.year + start.timetuple().tm_yday / 365.25

    def features(s: dict[str, Any]) -> list[float]:
        age = max(0.0, year_now - int(s["album"]["release_date"][:4]) - 0.5)
        return [
            1.0,
            float(np.log1p(tracks_by_lead[s["artists"][0]["id"]])),
            float(np.log1p(age)),
            float(s["album"]["album_type"] == "single"),
            float(s["album"]["album_type"] == "compilation"),
            float(s["explicit"]),
            abs(s["duration_ms"] / 60_000 - 3.5),
        ]

    x = np.array([features(s) for s in songs])
    y = np.array([s["popularity"] for s in songs], dtype=float)
    train = np.arange(len(y)) % 2 == 0  # fit on half, score on the other half
    coef, *_ = np.linalg.lstsq(x[train], y[train], rcond=None)
    residual = ((y[~train] - x[~train] @ coef) ** 2).sum()
    baseline = ((y[~train] - y[train].mean()) ** 2).sum()
    assert 1 - residual / baseline > 0.35
    assert y.std() > 8  # not a constant the mean would already predict


def test_the_sample_answers_the_batch_endpoints_like_an_extended_quota_app() -> None:
    from spotify_assets.lib.samples.source import SampleSource
    from spotify_assets.lib.spotify.client import SpotifyHttpError

    source = SampleSource(WINDOW)
    rows = [r for p in sample_playlists(WINDOW) for r in p.rows if r.get("item") and r["item"].get("type") == "track" and r["item"].get("id")]
    artist_ids = list(dict.fromkeys(a["id"] for r in rows for a in r["item"]["artists"]))
    album_ids = list(dict.fromkeys(r["item"]["album"]["id"] for r in rows))
    artists = source.get("artists", ids=",".join(artist_ids[:50]))["artists"]
    assert [a["id"] for a in artists] == artist_ids[:50]
    assert all(isinstance(a["genres"], list) and a["followers"]["total"] > 0 and 0 <= a["popularity"] <= 100 for a in artists)
    assert any(a["genres"] for a in artists) and any(not a["genres"] for a in artists)
    albums = source.get("albums", ids=",".join(album_ids[:19]) + ",unknownAlbumId00000000")["albums"]
    assert [a["id"] for a in albums[:19]] == album_ids[:19] and albums[19] is None  # null for an unknown id
    assert all(a["label"] and 0 <= a["popularity"] <= 100 for a in albums[:19])
    # fixed per id: another window gives the same genres
    later_window = WINDOW + 9 * STEP
    later_ids = {a["id"] for p in sample_playlists(later_window) for r in p.rows if r.get("item") for a in r["item"].get("artists", ())}
    both = [a for a in artists if a["id"] in later_ids][:5]
    assert both
    later = SampleSource(later_window).get("artists", ids=",".join(a["id"] for a in both))["artists"]
    assert [a["genres"] for a in later] == [a["genres"] for a in both]
    with pytest.raises(SpotifyHttpError):
        source.get("artists", ids=",".join(artist_ids[:51]))
