"""A deterministic SYNTHETIC listening-history export: three invented listeners' data downloads.

Nothing here is real Spotify data or anyone's listening. The listeners (`ana`, `ben`, `chloe`),
their plays, devices, countries and IP addresses are invented; the IP addresses come from the
ranges reserved for documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32), the podcast shows are named "Synthetic · ...", and the old-format files'
`username` is "synthetic-<listener>". Most songs are the synthetic catalogue's
(`sample_catalogue`), with the same ids, so plays join `songs` where the playlists list them;
the rest are invented "deep cuts" no playlist holds. The sample exists so the listening
pipeline runs end to end without anyone's personal data.

`write_sample_exports` writes the files a person would drop into the listening folder, one
subfolder per listener, in the three formats the pipeline reads:

- `ana/`: Extended streaming history, `Streaming_History_Audio_2025-2026_0.json`, `..._1.json`,
  and a small `Streaming_History_Video_2025-2026.json` (video podcasts: recognised, not ingested);
- `ben/`: an old-format `endsong_0.json` (2025-06 .. 2025-09: `ip_addr_decrypted`, `username`,
  `user_agent_decrypted`, offline_timestamp in seconds) and Extended history from 2025-10 on;
- `chloe/`: the short "Account data" format for her last year, `StreamingHistory_music_0.json`
  and `StreamingHistory_podcast_0.json`.

The quirks of real exports are all there: podcast plays with null track fields and episode
fields set, plays with no metadata at all, `skipped` null on some rows (most rows of the old
format), offline plays with `offline_timestamp` (milliseconds in the Extended files, seconds in
endsong), several `conn_country` values, shuffle on and off, private-session plays, plays
shorter than 30 seconds, and a usage peak between 18:00 and 21:00 in each listener's own time
zone (`SAMPLE_TIMEZONES`).

The content does not depend on when it is generated: plays cover SAMPLE_START .. SAMPLE_END
whatever `now` is, every value comes from `random.Random` seeded with a SHA-256 of fixed labels
(per listener and day), and the files serialise byte-identically in any process.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from spotify_assets.lib.samples.catalogue import sample_playlist_ids, sample_playlists, synthetic_id

SAMPLE_START = date(2025, 6, 1)
SAMPLE_END = date(2026, 10, 31)  # inclusive: plays end between SAMPLE_START and SAMPLE_END, UTC
SAMPLE_LISTENERS = ("ana", "ben", "chloe")
SAMPLE_TIMEZONES = {"ana": "Europe/Madrid", "ben": "America/New_York", "chloe": "Europe/London"}

_SALT = "spotify-assets/synthetic-listening/v1"
_UTC = timezone.utc
_FIRST = datetime.combine(SAMPLE_START, time(0), _UTC)
_LAST = datetime.combine(SAMPLE_END, time(23, 59, 59), _UTC)
_BEN_EXTENDED_FROM = date(2025, 10, 1)
_CHLOE_FROM = date(2025, 11, 1)
_ROWS_PER_FILE = 800  # Spotify splits long histories into numbered files; so do we, sooner

# When sessions start, by local hour: a small morning commute, lunch, and the evening peak.
_HOUR_WEIGHTS = (
    0.15, 0.08, 0.04, 0.02, 0.02, 0.1, 0.4, 1.6, 1.9, 0.8, 0.5, 0.6,
    1.1, 1.0, 0.5, 0.5, 0.6, 1.4, 5.0, 5.2, 3.6, 0.9, 0.6, 0.3,
)
_HOUR_CUMULATIVE = tuple(sum(_HOUR_WEIGHTS[: i + 1]) for i in range(24))


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join((_SALT, *map(str, parts))).encode()).digest()


def _rng(*parts: object) -> random.Random:
    return random.Random(_digest(*parts))


# --------------------------------------------------------------------------------------------
# What there is to play.


@dataclass(frozen=True)
class _Track:
    id: str
    name: str
    artist: str
    album: str
    duration_ms: int


@dataclass(frozen=True)
class _Episode:
    id: str
    name: str
    show: str
    duration_ms: int


_DEEP_ADJ = ("Borrowed", "Unlisted", "Backroom", "Porchlight", "Attic", "Unmarked", "Basement", "Leftover")
_DEEP_NOUN = ("Demo", "Waltz", "Lullaby", "Postcard", "Rehearsal", "Overture", "Voicemail", "Sketch")
_DEEP_ARTISTS = ("The Invented Tapes", "Nadia Imaginaire", "Placeholder Brass Band", "Kite & Ladder")
_SHOWS = (
    ("Synthetic · The Commute Briefing", ("Monday roundup", "Trains, delays and good news", "The week ahead",
                                           "Five things to know", "Weekend preview")),
    ("Synthetic · Made-Up History", ("The town that moved twice", "A very short war", "Lighthouse keepers",
                                      "The great tea mix-up")),
    ("Synthetic · Kitchen Science", ("Why bread rises", "Salt, explained", "The perfect boiled egg")),
)
_VIDEO_SHOW = "Synthetic · Studio Sessions (video)"


@lru_cache(maxsize=1)
def _playlist_order() -> tuple[str, ...]:
    return tuple(sample_playlist_ids())


@lru_cache(maxsize=32)
def _month_content(year: int, month: int) -> tuple[dict[str, tuple[_Track, ...]], tuple[_Episode, ...]]:
    """The catalogue's songs, by playlist id, and its episodes at the start of a month."""
    tracks: dict[str, tuple[_Track, ...]] = {}
    episodes: list[_Episode] = []
    for playlist in sample_playlists(datetime(year, month, 1, tzinfo=_UTC)):
        found: list[_Track] = []
        for row in playlist.rows:
            item = row["item"]
            if item is None or row["is_local"]:
                continue
            if item["type"] == "episode":
                episodes.append(_Episode(item["id"], item["name"], item["show"]["name"], item["duration_ms"]))
            elif item["type"] == "track" and item["id"]:
                artist = item["artists"][0]["name"] if item["artists"] else None
                found.append(_Track(item["id"], item["name"], artist, item["album"]["name"], item["duration_ms"]))
        tracks[playlist.meta["id"]] = tuple(found)
    return tracks, tuple(episodes)


@lru_cache(maxsize=8)
def _deep_cuts(listener: str) -> tuple[_Track, ...]:
    """Songs only this listener plays: in no playlist, so their plays join no song."""
    r = _rng("deep-cuts", listener)
    out = []
    for i in range(24):
        name = f"{r.choice(_DEEP_ADJ)} {r.choice(_DEEP_NOUN)}"
        artist = r.choice(_DEEP_ARTISTS)
        out.append(_Track(synthetic_id("track", ("listening", listener, i)), name, artist,
                          f"{artist}: Odds & Ends", r.randint(95_000, 330_000)))
    return tuple(out)


@lru_cache(maxsize=1)
def _podcast_episodes() -> tuple[_Episode, ...]:
    out = []
    for show, titles in _SHOWS:
        r = _rng("show", show)
        for n, title in enumerate(titles, start=1):
            out.append(_Episode(synthetic_id("episode", ("listening", show, n)), f"Ep. {n}: {title}", show,
                                r.randint(14, 55) * 60_000 + r.randint(0, 59_000)))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# The listeners.


@dataclass(frozen=True)
class _Listener:
    key: str
    tz: str
    home_country: str
    abroad: tuple[tuple[str, float], ...]  # (country, chance a week is spent there)
    home_ip: str
    mobile_net: str  # a documentation /24: the mobile network gives a new address per session
    abroad_net: str
    desktop: tuple[str, ...]
    mobile: tuple[str, ...]
    playlist_taste: tuple[float, ...]  # weight per sample playlist, in sample_playlist_ids() order
    active: float  # chance of listening on a given day
    podcast_share: float
    incognito: float


_LISTENERS = {
    "ana": _Listener("ana", SAMPLE_TIMEZONES["ana"], "ES", (("PT", 0.08), ("FR", 0.05)), "192.0.2.17",
                     "198.51.100", "203.0.113", ("windows", "web_player"), ("android",),
                     (5, 1, 1, 4, 1, 2), 0.5, 0.08, 0.03),
    "ben": _Listener("ben", SAMPLE_TIMEZONES["ben"], "US", (("CA", 0.1),), "2001:db8:4a2e::17",
                     "198.51.100", "203.0.113", ("osx",), ("ios",),
                     (1, 2, 5, 1, 2, 4), 0.5, 0.15, 0.02),
    "chloe": _Listener("chloe", SAMPLE_TIMEZONES["chloe"], "GB", (), "192.0.2.80",
                       "198.51.100", "203.0.113", ("windows",), ("android",),
                       (3, 5, 1, 1, 2, 1), 0.45, 0.1, 0.0),
}
# Old endsong exports spelled platforms out in full.
_OLD_PLATFORMS = {"osx": "OS X 14.5.0 [arm 0]", "ios": "iOS 17.5.1 (iPhone15,2)"}
_USER_AGENTS = {"osx": "Spotify/1.2.40 OSX/0 (MacBookPro18,3)", "ios": "Spotify/8.9.50 iOS/17.5.1 (iPhone15,2)"}


@dataclass
class _Play:
    end: datetime
    ms: int
    track: _Track | None
    episode: _Episode | None
    country: str
    ip: str
    platform: str
    reason_start: str
    reason_end: str
    shuffle: bool
    skipped: bool | None
    offline_since: datetime | None
    incognito: bool


def _taste(listener: _Listener, track_id: str) -> float:
    """A few favourites played often, most songs now and then."""
    u = int.from_bytes(_digest("taste", listener.key, track_id)[:4], "big") / 2**32
    return 0.15 + 6.0 * u**6


@lru_cache(maxsize=64)
def _pool(key: str, year: int, month: int) -> tuple[tuple[_Track, ...], tuple[float, ...]]:
    """What a listener plays in a month, with cumulative weights: the catalogue's songs of the
    month, weighted by their playlists and the listener's taste, and the listener's deep cuts."""
    listener = _LISTENERS[key]
    by_playlist, _ = _month_content(year, month)
    tracks: list[_Track] = []
    cumulative: list[float] = []
    total = 0.0
    weights = dict(zip(_playlist_order(), listener.playlist_taste, strict=False))
    for playlist_id, found in by_playlist.items():
        for track in found:
            total += weights.get(playlist_id, 1.0) * _taste(listener, track.id)
            tracks.append(track)
            cumulative.append(total)
    deep = _deep_cuts(key)
    share = 0.1 * total / len(deep)  # about a tenth of the plays
    for track in deep:
        total += share
        tracks.append(track)
        cumulative.append(total)
    return tuple(tracks), tuple(cumulative)


def _country(listener: _Listener, day: date) -> str:
    iso = day.isocalendar()
    u = int.from_bytes(_digest("week", listener.key, iso.year, iso.week)[:4], "big") / 2**32
    for country, chance in listener.abroad:
        if u < chance:
            return country
        u -= chance
    return listener.home_country


def _day_plays(listener: _Listener, day: date) -> list[_Play]:
    r = _rng("day", listener.key, day.isoformat())
    weekend = day.weekday() >= 5
    if r.random() > listener.active + (0.1 if weekend else 0.0):
        return []
    tz = ZoneInfo(listener.tz)
    tracks, cumulative = _pool(listener.key, day.year, day.month)
    _, catalogue_episodes = _month_content(day.year, day.month)
    episodes = _podcast_episodes() + catalogue_episodes
    country = _country(listener, day)
    sessions = 1 + (r.random() < 0.25)
    starts = sorted(
        bisect.bisect_right(_HOUR_CUMULATIVE, r.random() * _HOUR_CUMULATIVE[-1]) * 3600 + r.randrange(3600)
        for _ in range(sessions)
    )
    plays: list[_Play] = []
    for start_second in starts:
        local = datetime.combine(day, time(0), tz) + timedelta(seconds=start_second)
        moment = local.astimezone(_UTC)
        if plays and moment < plays[-1].end + timedelta(minutes=5):
            moment = plays[-1].end + timedelta(minutes=r.randint(5, 40))
        hour = local.hour
        on_the_move = 7 <= hour <= 9 or country != listener.home_country or r.random() < 0.3
        platform = r.choice(listener.mobile if on_the_move else listener.desktop)
        if country != listener.home_country:
            ip = f"{listener.abroad_net}.{r.randint(2, 254)}"
        elif on_the_move:
            ip = f"{listener.mobile_net}.{r.randint(2, 254)}"
        else:
            ip = listener.home_ip
        offline = on_the_move and r.random() < 0.3
        incognito = r.random() < listener.incognito
        shuffle = r.random() < 0.55
        podcast = r.random() < listener.podcast_share
        length = r.randint(1, 2) if podcast else max(1, round(r.expovariate(1 / (4.5 if hour >= 17 else 2.5))))
        reason_start = r.choice(("clickrow", "clickrow", "playbtn", "appload", "remote"))
        for i in range(length):
            last = i == length - 1
            track: _Track | None = None
            episode: _Episode | None = None
            if podcast:
                episode = r.choice(episodes)
                full = episode.duration_ms
            elif r.random() < 0.006:  # a play the export could not describe: no metadata at all
                full = r.randint(0, 12_000)
            else:
                track = tracks[bisect.bisect_right(cumulative, r.random() * cumulative[-1])]
                full = track.duration_ms
            u = r.random()
            if episode is not None:
                reason_end, ms = ("trackdone", full) if u < 0.4 else ("endplay", r.randint(60_000, full))
            elif track is None:
                reason_end, ms = "endplay", full
            elif u < 0.2:
                reason_end, ms = "fwdbtn", r.randint(400, min(full, 45_000))  # mostly under 30 s
            elif u < 0.23:
                reason_end, ms = "backbtn", r.randint(2_000, full)
            elif last and u < 0.5:
                reason_end, ms = r.choice(("endplay", "logout", "unexpected-exit-while-paused")), r.randint(5_000, full)
            else:
                reason_end, ms = "trackdone", full
            end = moment + timedelta(milliseconds=ms)
            plays.append(_Play(end, ms, track, episode, country, ip, platform, reason_start, reason_end,
                               shuffle, reason_end == "fwdbtn", moment if offline else None, incognito))
            moment = end + timedelta(milliseconds=r.randint(0, 2_500))
            reason_start = reason_end if reason_end in ("trackdone", "fwdbtn", "backbtn") else "clickrow"
            if r.random() < 0.035:  # the export does not always say whether a play was skipped
                plays[-1].skipped = None
    return plays


def _plays(listener: _Listener, first: date, last: date) -> list[_Play]:
    """A listener's plays ending between `first` and `last` (UTC days), one after another."""
    candidates: list[_Play] = []
    day = first - timedelta(days=1)  # the evening before can end after midnight UTC
    while day <= last:
        candidates.extend(p for p in _day_plays(listener, day) if _FIRST <= p.end <= _LAST
                          and first <= p.end.date() <= last)
        day += timedelta(days=1)
    candidates.sort(key=lambda p: p.end)
    out: list[_Play] = []
    for play in candidates:  # a late session running into the next day's first one: one device plays
        if not out or play.end - timedelta(milliseconds=play.ms) >= out[-1].end:
            out.append(play)
    return out


# --------------------------------------------------------------------------------------------
# The three file formats.


def _ts(moment: datetime) -> str:
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _extended_row(p: _Play) -> dict[str, Any]:
    t, e = p.track, p.episode
    return {
        "ts": _ts(p.end),
        "platform": p.platform,
        "ms_played": p.ms,
        "conn_country": p.country,
        "ip_addr": p.ip,
        "master_metadata_track_name": t.name if t else None,
        "master_metadata_album_artist_name": t.artist if t else None,
        "master_metadata_album_album_name": t.album if t else None,
        "spotify_track_uri": f"spotify:track:{t.id}" if t else None,
        "episode_name": e.name if e else None,
        "episode_show_name": e.show if e else None,
        "spotify_episode_uri": f"spotify:episode:{e.id}" if e else None,
        "reason_start": p.reason_start,
        "reason_end": p.reason_end,
        "shuffle": p.shuffle,
        "skipped": p.skipped,
        "offline": p.offline_since is not None,
        "offline_timestamp": _epoch_ms(p.offline_since) if p.offline_since else None,
        "incognito_mode": p.incognito,
    }


def _endsong_row(listener: _Listener, p: _Play, r: random.Random) -> dict[str, Any]:
    """The older format: the same plays with the fields old exports had, in their order."""
    row = _extended_row(p)
    return {
        "ts": row["ts"],
        "username": f"synthetic-{listener.key}",
        "platform": _OLD_PLATFORMS.get(p.platform, p.platform),
        "ms_played": row["ms_played"],
        "conn_country": row["conn_country"],
        "ip_addr_decrypted": row["ip_addr"],
        "user_agent_decrypted": _USER_AGENTS.get(p.platform, "unknown"),
        **{k: row[k] for k in (
            "master_metadata_track_name", "master_metadata_album_artist_name", "master_metadata_album_album_name",
            "spotify_track_uri", "episode_name", "episode_show_name", "spotify_episode_uri",
            "reason_start", "reason_end", "shuffle",
        )},
        # Old exports mostly left `skipped` unset, and gave offline_timestamp in seconds (0 online).
        "skipped": p.skipped if r.random() < 0.3 else None,
        "offline": row["offline"],
        "offline_timestamp": int(p.offline_since.timestamp()) if p.offline_since else 0,
        "incognito_mode": row["incognito_mode"],
    }


def _account_rows(plays: list[_Play]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    music, podcasts = [], []
    for p in plays:
        end = p.end.astimezone(_UTC).strftime("%Y-%m-%d %H:%M")
        if p.episode is not None:
            podcasts.append({"endTime": end, "podcastName": p.episode.show, "episodeName": p.episode.name,
                             "msPlayed": p.ms})
        elif p.track is not None:
            music.append({"endTime": end, "artistName": p.track.artist, "trackName": p.track.name, "msPlayed": p.ms})
        else:  # how the short format names a play it cannot describe
            music.append({"endTime": end, "artistName": "Unknown Artist", "trackName": "Unknown Track",
                          "msPlayed": p.ms})
    return music, podcasts


def _video_rows(listener: _Listener) -> list[dict[str, Any]]:
    r = _rng("video", listener.key)
    rows = []
    for n in range(1, 6):
        end = datetime(2025, 6, 1, 19, tzinfo=_UTC) + timedelta(days=r.randint(0, 500), minutes=r.randint(0, 120))
        ms = r.randint(60_000, 1_800_000)
        episode = _Episode(synthetic_id("episode", ("listening-video", n)), f"Session {n}", _VIDEO_SHOW, ms)
        play = _Play(end, ms, None, episode, listener.home_country, listener.home_ip, listener.desktop[0],
                     "clickrow", "endplay", False, False, None, False)
        rows.append(_extended_row(play))
    rows.sort(key=lambda row: row["ts"])
    return rows


def _dump(rows: list[dict[str, Any]]) -> bytes:
    return (json.dumps(rows, indent=2, ensure_ascii=False) + "\n").encode()


def _years(rows: list[dict[str, Any]]) -> str:
    first, last = rows[0]["ts"][:4], rows[-1]["ts"][:4]
    return first if first == last else f"{first}-{last}"


def _extended_files(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    files = {}
    for n, i in enumerate(range(0, len(rows), _ROWS_PER_FILE)):
        chunk = rows[i : i + _ROWS_PER_FILE]
        files[f"Streaming_History_Audio_{_years(chunk)}_{n}.json"] = _dump(chunk)
    return files


def sample_export_files() -> dict[str, bytes]:
    """Every synthetic export file's bytes, by path relative to the listening folder
    (`<listener>/<file name>`)."""
    files: dict[str, bytes] = {}
    ana = _LISTENERS["ana"]
    plays = _plays(ana, SAMPLE_START, SAMPLE_END)
    for name, data in _extended_files([_extended_row(p) for p in plays]).items():
        files[f"ana/{name}"] = data
    video = _video_rows(ana)
    files[f"ana/Streaming_History_Video_{_years(video)}.json"] = _dump(video)

    ben = _LISTENERS["ben"]
    old = _plays(ben, SAMPLE_START, _BEN_EXTENDED_FROM - timedelta(days=1))
    r = _rng("endsong", ben.key)
    files["ben/endsong_0.json"] = _dump([_endsong_row(ben, p, r) for p in old])
    new = _plays(ben, _BEN_EXTENDED_FROM, SAMPLE_END)
    for name, data in _extended_files([_extended_row(p) for p in new]).items():
        files[f"ben/{name}"] = data

    music, podcasts = _account_rows(_plays(_LISTENERS["chloe"], _CHLOE_FROM, SAMPLE_END))
    files["chloe/StreamingHistory_music_0.json"] = _dump(music)
    files["chloe/StreamingHistory_podcast_0.json"] = _dump(podcasts)
    return files


def write_sample_exports(folder: Path, *, now: datetime) -> list[Path]:
    """Write the synthetic exports into `folder` (one subfolder per listener); the paths written.

    The content is the same whatever `now` (timezone-aware) is: plays cover SAMPLE_START ..
    SAMPLE_END, so a second call rewrites identical bytes and nothing is ingested twice.
    Files of the same names are overwritten; other files in `folder` are left alone.
    """
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")
    folder = Path(folder)
    written = []
    for relative, data in sample_export_files().items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    return sorted(written)
