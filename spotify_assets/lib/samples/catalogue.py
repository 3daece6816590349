"""A deterministic SYNTHETIC Spotify catalogue: playlists and rows for any 8-hour window.

Nothing here is real Spotify data. Every artist, album, track, episode, user and id is invented
from hashes and word lists, and every playlist says so in its name ("Synthetic · ..."), its
description and its owner's display name. The sample exists so the pipeline can run end to end
without credentials, and so the popularity model has data the operator is free to train on.

The objects have exactly the shape an Extended-Quota app gets from the 2026 Web API
(`GET /playlists/{id}` and `GET /playlists/{id}/items`): rows carry `item`, tracks carry
`popularity` and `external_ids`, and the row-level oddities of real payloads are all present in
every recent window: an unavailable row (`item: null`), a local file, a podcast episode, a row
with null `added_at`/`added_by`, the same track twice in one playlist, two track ids sharing an
ISRC, year/month/day release precisions, and names with commas, quotes and non-Latin scripts.

Change over time is a pure function of the window index `w = epoch_seconds // (8 * 3600)`:
each playlist has slots, each slot holds one track per tenure (tenures are a fixed-period grid
with a per-slot phase), so any window is computed directly, sizes stay stable and a few rows
turn over between consecutive windows. Popularity's level is a function of artist fame, release
recency, album type, explicitness and duration, plus a fixed per-track offset; over `w` it moves
like real popularity: a release curve (a climb to a peak 5-60 days after release, then a decay
back to the level; the new releases playlists add mostly still climb when they join), a slow
months-scale trend per song (most barely move, some drift by several points a month), a small
days-scale wiggle and a little per-window noise (sd 0.2), so a day's change is mostly systematic.

No randomness leaks in: the static catalogue comes from `random.Random(<fixed seed>)`, and all
per-window values from SHA-256, so a window serialises byte-identically in any process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from statistics import NormalDist
from typing import Any
from urllib.parse import quote_plus

from spotify_assets.lib.timestamps import iso_z
from spotify_assets.lib.window import WINDOW_HOURS, WINDOW_LENGTH

SAMPLE_SOURCE_LABEL = "synthetic-sample"
_WINDOW = WINDOW_LENGTH
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SALT = "spotify-assets/synthetic-sample/v1"
_SEED = 20261120
_API = "https://api.spotify.com/v1"
_OPEN = "https://open.spotify.com"
_NORMAL = NormalDist()
_LAST_CATALOGUE_RELEASE = date(2025, 10, 31)  # newer music comes from the "fresh" slots
_PLAYLIST_IMAGE = "https://image-cdn-ak.spotifycdn.com/image/ab67706c0000da84"


@dataclass(frozen=True)
class SamplePlaylist:
    """One synthetic playlist at the end of one window."""

    meta: dict  # playlist object WITHOUT the "items" container
    rows: list[dict]  # all rows of the playlist at that window, in playlist order


# --------------------------------------------------------------------------------------------
# Hashing helpers: the only source of per-window variation (never Python's salted hash()).


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join((_SALT, *map(str, parts))).encode()).digest()


def _int(*parts: object) -> int:
    return int.from_bytes(_digest(*parts)[:8], "big")


def _unit(*parts: object) -> float:
    return _int(*parts) / 2.0**64


def _gauss(*parts: object) -> float:
    return _NORMAL.inv_cdf(min(max(_unit(*parts), 1e-9), 1.0 - 1e-9))


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _encode(digest: bytes, alphabet: str, length: int) -> str:
    n = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        n, r = divmod(n, len(alphabet))
        chars.append(alphabet[r])
    return "".join(chars)


def synthetic_id(kind: str, label: object) -> str:
    """A 22-character base62 id, like Spotify's, derived from a label."""
    return _encode(_digest("id", kind, label), _B62, 22)


def _user_id(label: str) -> str:
    """Newer Spotify user ids are 28 lowercase alphanumerics."""
    return _encode(_digest("user", label), _B36, 28)


def _image_hex(label: str) -> str:
    return _digest("image", label).hex()[:24]


# --------------------------------------------------------------------------------------------
# The static catalogue.


@dataclass(frozen=True)
class _Artist:
    id: str
    name: str


@dataclass(frozen=True)
class _Album:
    id: str
    name: str
    album_type: str  # album | single | compilation
    artists: tuple[_Artist, ...]
    released: date  # the true date; `release_date` shows only what `precision` allows
    precision: str  # year | month | day
    total_tracks: int

    @property
    def release_date(self) -> str:
        if self.precision == "year":
            return f"{self.released.year:04d}"
        if self.precision == "month":
            return f"{self.released.year:04d}-{self.released.month:02d}"
        return self.released.isoformat()


@dataclass(frozen=True)
class _Track:
    id: str
    name: str
    album: _Album
    artists: tuple[_Artist, ...]
    disc_number: int
    track_number: int
    duration_ms: int
    explicit: bool
    isrc: str
    fame: float  # ln(1 + catalogue tracks of the lead artist): famous artists are more popular
    noise: float  # fixed per-track popularity offset (what no feature explains)
    peak_days: float = 0.0  # days from release to the release-curve peak; 0: from the track's hash
    peak_height: float = 0.0  # points the release curve climbs; 0: from the track's hash


@dataclass(frozen=True)
class _Show:
    id: str
    name: str
    publisher: str
    description: str
    total_episodes: int


@dataclass(frozen=True)
class _Episode:
    id: str
    name: str
    show: _Show
    released: date
    duration_ms: int
    description: str


@dataclass(frozen=True)
class _LocalFile:
    artist: str
    album: str
    title: str
    seconds: int


_Content = _Track | _Episode | _LocalFile | None


@dataclass(frozen=True)
class _User:
    id: str
    display_name: str | None = None


@dataclass(frozen=True)
class _FixedRow:
    """A row that stays put: pinned songs, edge cases, rows from the playlist's early days."""

    content: _Content
    added_at: datetime | None
    added_by: _User | None


@dataclass(frozen=True)
class _Slot:
    """One position that rotates: a track per tenure of `period` windows, shifted by `phase`."""

    index: int
    period: int
    phase: int
    pool: tuple[_Track, ...]  # empty for fresh slots, which invent a new release per tenure
    fresh_max_age_days: int


@dataclass(frozen=True)
class _PlaylistSpec:
    key: str
    id: str
    name: str
    description: str
    public: bool
    collaborative: bool
    owner: _User
    contributors: tuple[_User, ...]
    fixed: tuple[_FixedRow, ...]
    slots: tuple[_Slot, ...]
    followers_base: int
    followers_per_day: float


@dataclass(frozen=True)
class _Catalogue:
    artists: tuple[_Artist, ...]
    fame: dict[str, float]  # artist id -> ln(1 + catalogue tracks)
    fresh_artists: tuple[_Artist, ...]  # who releases new music, weighted by fame
    fresh_cumweights: tuple[float, ...]
    playlists: dict[str, _PlaylistSpec]  # by playlist id, in a stable order


_ADJ = (
    "Velvet", "Paper", "Hollow", "Silver", "Quiet", "Electric", "Midnight", "Amber", "Crimson",
    "Golden", "Neon", "Lunar", "Glass", "Static", "Cobalt", "Faded", "Northern", "Lucky",
    "Copper", "Distant", "Gentle", "Restless", "Violet", "Marble", "Rusty", "Sleepy", "Sunday",
    "Winter", "Coastal", "Secret",
)
_NOUNS = (
    "Harbors", "Lanterns", "Foxes", "Satellites", "Orchards", "Pilots", "Tides", "Ghosts",
    "Engines", "Sparrows", "Canyons", "Rivers", "Signals", "Kites", "Comets", "Lighthouses",
    "Gardens", "Strangers", "Mirrors", "Parades", "Oceans", "Postcards", "Anchors", "Meadows",
    "Circuits", "Echoes", "Islands", "Magnets", "Tigers", "Wires",
)
_FIRST = (
    "Mara", "Tobias", "Ines", "Dev", "Lena", "Otis", "Priya", "Jonas", "Amara", "Felix", "Noor",
    "Hugo", "Saoirse", "Kenji", "Lucia", "Ezra", "Yara", "Mateo", "Freya", "Idris", "Clara",
    "Rafael", "Hana", "Silas",
)
_LAST = (
    "Lindqvist", "Okafor", "Carvalho", "Raman", "Hartley", "Moreau", "Castellano", "Whitfield",
    "Adeyemi", "Novak", "Brennan", "Sato", "Kowalski", "Ferreira", "Delacroix", "Halvorsen",
    "Mensah", "Quinn", "Varga", "Ashby",
)
_TITLE_ADJ = (
    "Slow", "Bright", "Lonely", "Endless", "Sweet", "Wild", "Lost", "Broken", "Golden", "Cold",
    "Tender", "Heavy", "Silent", "Burning", "Paper", "Neon", "Electric", "Hidden", "Open", "Late",
)
_TITLE_NOUN = (
    "Heart", "Summer", "Highway", "Window", "Signal", "Motel", "Letter", "Morning", "Weekend",
    "Skyline", "Ocean", "Fever", "Shadow", "Engine", "Promise", "Radio", "Garden", "River",
    "Satellite", "Daydream", "Horizon", "Avenue", "Lullaby", "Mirror",
)
_TITLE_TAIL = (
    "in the Rain", "After Midnight", "on Repeat", "for You", "Again", "Tonight", "Forever",
    "at Dawn", "(Reprise)", "Part II",
)

# Artists and songs whose names break naive CSV, SQL and ASCII handling. Each pair is
# (artist, their first song, that song's album); all invented.
_SPECIAL = (
    ("Harlan, Bell & Oduya", "Slow Down, Caroline", "Porch Lights, Vol. 1"),
    ('Johnny "Two Strings" Vance', 'She Said "Maybe"', 'Live at "The Anchor"'),
    ("O'Rourke's Kitchen Band", "Don't Wait Up", "Kettle's On"),
    ("夜明けシグナル", "夜の高速道路", "青い時間"),
    ("달빛 우체국", "서울의 밤하늘", "편지"),
    ("Северный Маяк", "Белые ночи", "Полярный свет"),
    ("Οι Νυχτερινοί Γλάροι", "Καλοκαίρι στη Σύρο", "Λιμάνι"),
    ("فرقة نخيل الليل", "ليلة على الشاطئ", "نخيل"),
    ("Zoé Marchand", "Café de l'Aube", "Rêves Éveillés"),
    ("Søren Ålvik Trio", "Fjärran Ö", "Nordlys"),
)
_COMPILATIONS = (
    'Songs for "Later", Vol. 2',
    "Road Trip, Vol. 3",
    "Synthetic Summer Hits",
    "Best of the Late Shows",
    "Late Night Radio Classics",
    "Covers & Curiosities",
    "Café Sessions",
    "Decades: The Collection",
    "Kitchen Radio, Vol. 1",
    "Soundtrack for Nobody",
    "Rainy Day Anthology",
    "Indie Drive",
)


def _track_title(rng: random.Random) -> str:
    a, n, t = rng.choice(_TITLE_ADJ), rng.choice(_TITLE_NOUN), rng.choice(_TITLE_TAIL)
    return rng.choice((f"{a} {n}", f"{a} {n}", f"{a} {n} {t}", f"{n} {t}", f"{n}s"))


def _album_title(rng: random.Random) -> str:
    a, n = rng.choice(_ADJ), rng.choice(_NOUNS)
    return rng.choice(
        (f"{a} {n}", f"{n} Sessions", f"Songs from the {rng.choice(_TITLE_NOUN)}", f"{a} Hours",
         f"The {rng.choice(_TITLE_NOUN)} Tapes", f"{a} {rng.choice(_TITLE_NOUN)}")
    )


def _artist_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    seen = {s[0] for s in _SPECIAL}
    while len(names) < count:
        a, n, f, last = rng.choice(_ADJ), rng.choice(_NOUNS), rng.choice(_FIRST), rng.choice(_LAST)
        name = rng.choice(
            (f"The {a} {n}", f"{f} {last}", f"{f} {last}", f"{a} {n}", f"{f} & the {n}",
             f"{last} {rng.choice(('Trio', 'Quartet', 'Collective', 'Ensemble'))}", f"DJ {a}")
        )
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _random_release(rng: random.Random, start_year: int) -> tuple[date, str]:
    year = min(start_year + int(rng.expovariate(1 / 7)), _LAST_CATALOGUE_RELEASE.year)
    released = date(year, rng.randint(1, 12), rng.randint(1, 28))
    released = min(released, _LAST_CATALOGUE_RELEASE)
    # Old releases often have only a year or a month on record, as in real metadata.
    weights = (30, 15, 55) if year < 1985 else (6, 6, 88)
    precision = rng.choices(("year", "month", "day"), weights=weights)[0]
    return released, precision


def _isrc(rng: random.Random, year: int) -> str:
    registrant = rng.choice(("ES7", "AB1", "K42", "R8X", "M0N", "T5L"))
    return f"QZ{registrant}{year % 100:02d}{rng.randrange(100000):05d}"


def _duration_ms(rng: random.Random) -> int:
    return int(min(max(rng.gauss(215, 50), 95), 540) * 1000) + rng.randrange(1000)


def _explicit(rng: random.Random, year: int) -> bool:
    return rng.random() < (0.35 if year >= 1995 else 0.07)


@dataclass
class _TrackDraft:
    name: str
    album: _Album
    artists: tuple[_Artist, ...]
    disc_number: int
    track_number: int
    duration_ms: int
    explicit: bool
    isrc: str


def _build_music(rng: random.Random) -> tuple[list[_Artist], list[_TrackDraft], dict[str, _TrackDraft]]:
    """Artists with a skewed number of songs, grouped into albums; compilations; features."""
    names = [s[0] for s in _SPECIAL] + _artist_names(rng, 98)
    artists = [_Artist(synthetic_id("artist", n), n) for n in names]
    various = _Artist(synthetic_id("artist", "Various Artists"), "Various Artists")
    order = list(range(len(artists)))
    rng.shuffle(order)
    # Zipf-like: a few prolific artists, a long tail of one- and two-song artists.
    counts = {artists[i]: max(1, round(40 * (rank + 1) ** -0.72)) for rank, i in enumerate(order)}
    for special in artists[: len(_SPECIAL)]:
        counts[special] = max(counts[special], 2)

    drafts: list[_TrackDraft] = []
    specials: dict[str, _TrackDraft] = {}
    special_by_artist = {s[0]: s for s in _SPECIAL}
    for artist in artists:
        remaining = counts[artist]
        start_year = rng.randint(1965, 2021)
        first = True
        while remaining > 0:
            take = min(remaining, rng.choice((1, 1, 2, 3, 4, 5)))
            remaining -= take
            released, precision = _random_release(rng, start_year)
            if take == 1 and rng.random() < 0.7:
                album_type, total = "single", rng.randint(1, 3)
            else:
                album_type, total = "album", rng.randint(max(take, 7), 16)
            special = special_by_artist.get(artist.name) if first else None
            album_name = special[2] if special else _album_title(rng)
            if special:
                album_type, total = "album", max(total, 8)
            album = _Album(
                synthetic_id("album", (artist.id, album_name, released.isoformat())),
                album_name, album_type, (artist,), released, precision, total,
            )
            numbers = sorted(rng.sample(range(1, total + 1), take))
            for i, number in enumerate(numbers):
                title = special[1] if special and i == 0 else _track_title(rng)
                two_discs = album.total_tracks >= 14 and number > album.total_tracks // 2
                draft = _TrackDraft(
                    title, album, (artist,), 2 if two_discs else 1,
                    number - album.total_tracks // 2 if two_discs else number,
                    _duration_ms(rng), _explicit(rng, released.year), _isrc(rng, released.year),
                )
                drafts.append(draft)
                if special and i == 0:
                    specials[artist.name] = draft
            first = False

    # Features: ~20% of songs have 2-3 artists; some are led by the guest, so the album's first
    # artist is not the track's first artist.
    for draft in drafts:
        if draft.album.artists[0].name in specials and draft is specials[draft.album.artists[0].name]:
            continue
        r = rng.random()
        if r < 0.2:
            guests = tuple(a for a in rng.sample(artists, 2) if a != draft.artists[0])
            guests = guests[: 1 if rng.random() < 0.7 else 2]
            lead = draft.artists[0]
            draft.artists = (guests[0], lead, *guests[1:]) if r < 0.05 else (lead, *guests)

    # Compilations by "Various Artists": new recordings, plus re-releases that keep the ISRC of
    # the original (same recording, another track id).
    originals = [d for d in drafts if d.album.album_type != "compilation"]
    for c, title in enumerate(_COMPILATIONS):
        released, precision = _random_release(rng, rng.randint(1985, 2020))
        size = rng.randint(3, 6)
        album = _Album(
            synthetic_id("album", ("compilation", title)), title, "compilation", (various,),
            released, precision, rng.randint(max(size, 12), 24),
        )
        numbers = sorted(rng.sample(range(1, album.total_tracks + 1), size))
        for j, number in enumerate(numbers):
            source = rng.choice(originals)
            if j < 2 and source.album.released <= released:
                # A re-release: same recording, same ISRC, different track id and album.
                drafts.append(_TrackDraft(
                    source.name, album, source.artists, 1, number, source.duration_ms,
                    source.explicit, source.isrc,
                ))
            else:
                performer = rng.choice(artists)
                drafts.append(_TrackDraft(
                    _track_title(rng), album, (performer,), 1, number, _duration_ms(rng),
                    _explicit(rng, released.year), _isrc(rng, released.year),
                ))
        if c == 0:
            # The pinned ISRC pair: an original song and its compilation re-release.
            special_titles = {s[1] for s in _SPECIAL}
            source = next(
                d for d in originals if d.album.released < released and d.name not in special_titles
            )
            twin = _TrackDraft(source.name, album, source.artists, 1, album.total_tracks,
                               source.duration_ms, source.explicit, source.isrc)
            drafts.append(twin)
            specials["isrc-original"] = source
            specials["isrc-twin"] = twin
    return artists, drafts, specials


def _finish_tracks(rng: random.Random, drafts: list[_TrackDraft]) -> tuple[list[_Track], dict[str, float]]:
    appearances: Counter[str] = Counter()
    for d in drafts:
        for a in d.artists:
            appearances[a.id] += 1
    fame = {artist_id: math.log1p(n) for artist_id, n in appearances.items()}
    tracks = []
    seen: set[str] = set()
    for n, d in enumerate(drafts):
        track_id = synthetic_id("track", (d.album.id, d.track_number, d.disc_number, d.name, n))
        assert track_id not in seen
        seen.add(track_id)
        tracks.append(_Track(
            track_id, d.name, d.album, d.artists, d.disc_number, d.track_number, d.duration_ms,
            d.explicit, d.isrc, fame[d.artists[0].id], rng.gauss(0, 8.5),
        ))
    return tracks, fame


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def _slots(key: str, count: int, mean_period: int, pool: list[_Track], fresh: int,
           fresh_max_age_days: int) -> tuple[_Slot, ...]:
    slots = []
    static = count - fresh
    for i in range(count):
        period = max(3, round(mean_period * (0.5 + _unit(key, "period", i))))
        phase = _int(key, "phase", i) % period
        sub_pool = tuple(pool[i::static]) if i < static else ()
        slots.append(_Slot(i, period, phase, sub_pool, 0 if i < static else fresh_max_age_days))
    return tuple(slots)


@lru_cache(maxsize=1)
def _catalogue() -> _Catalogue:
    rng = random.Random(_SEED)
    artists, drafts, specials = _build_music(rng)
    tracks, fame = _finish_tracks(rng, drafts)
    by_draft = {id(d): t for d, t in zip(drafts, tracks, strict=True)}

    def special(name: str) -> _Track:
        return by_draft[id(specials[name])]

    owner = _User("spotify_assets_synthetic", "spotify-assets synthetic sample")
    friends = tuple(_User(_user_id(f"synthetic-friend-{n}")) for n in range(3))
    show = _Show(
        synthetic_id("show", "liner-notes"), "Synthetic · Liner Notes",
        "spotify-assets synthetic sample",
        "An invented podcast about invented records, part of the spotify-assets synthetic sample.",
        48,
    )
    episodes = [
        _Episode(synthetic_id("episode", "liner-notes-12"),
                 'Ep. 12: Why "B-sides" matter, and why they don\'t', show,
                 date(2024, 5, 17), 2_417_000, "Two hosts argue about B-sides, deep cuts and shuffle."),
        _Episode(synthetic_id("episode", "liner-notes-31"), "Ep. 31: Sampling, explained", show,
                 date(2025, 9, 2), 1_834_000, "Where loops come from and who gets paid."),
    ]
    local = _LocalFile("Garage Tapes", "Demo '99", "Basement Jam, Take 3", 187)
    old_tracks = sorted(
        (t for t in tracks if t.album.released.year < 2003 and t.album.album_type != "compilation"),
        key=lambda t: t.id,
    )
    famous = sorted((t for t in tracks if t.album.album_type == "album"), key=lambda t: (-t.fame, t.id))
    anchors = famous[:4]  # pinned in two playlists at once: shared tracks in every window
    duplicate = famous[4]  # listed twice in one playlist
    legacy = old_tracks[:3]

    def row(content: _Content, added: str | None, by: _User | None) -> _FixedRow:
        return _FixedRow(content, _utc(added) if added else None, by)

    fixed: dict[str, tuple[_FixedRow, ...]] = {
        "night-drive": (
            row(anchors[0], "2019-02-03T22:14:09", owner),
            row(anchors[1], "2019-02-03T22:16:41", owner),
            row(special("夜明けシグナル"), "2020-07-19T01:02:03", owner),
            row(special("달빛 우체국"), "2021-01-09T23:45:10", owner),
            row(special("isrc-twin"), "2021-06-30T20:11:54", owner),
            row(anchors[2], "2022-11-11T18:30:00", owner),
        ),
        "morning-coffee": (
            row(anchors[0], "2020-03-01T07:05:00", owner),
            row(special("Zoé Marchand"), "2020-03-01T07:09:31", owner),
            row(anchors[1], "2020-03-02T06:58:12", owner),
            row(special("Søren Ålvik Trio"), "2021-04-12T08:20:45", owner),
            row(anchors[3], "2023-02-14T07:45:00", owner),
        ),
        "throwback": (
            # A very old playlist: its first rows predate added_at bookkeeping.
            row(legacy[0], None, None),
            row(legacy[1], None, None),
            row(legacy[2], None, None),
            row(special("isrc-original"), "2016-08-21T19:33:02", owner),
            row(local, "2016-09-04T21:10:55", owner),
            row(special("Северный Маяк"), "2017-12-30T16:00:27", owner),
            row(special('Johnny "Two Strings" Vance'), "2018-05-05T12:12:12", owner),
        ),
        "new-releases": (),
        "interludes": (
            row(episodes[0], "2024-06-01T10:00:00", owner),
            row(special("فرقة نخيل الليل"), "2024-06-01T10:04:30", owner),
            row(special("Οι Νυχτερινοί Γλάροι"), "2024-07-15T09:40:02", owner),
            row(episodes[1], "2025-09-03T08:15:44", owner),
        ),
        "workout": (
            row(duplicate, "2022-01-10T17:01:00", owner),
            row(special("Harlan, Bell & Oduya"), "2022-01-10T17:03:18", friends[0]),
            row(None, "2022-02-02T18:22:09", friends[1]),  # a track no longer available
            row(special("O'Rourke's Kitchen Band"), "2022-03-15T06:30:00", friends[2]),
            row(duplicate, "2023-08-08T19:45:33", friends[0]),  # the same song, added again
            row(anchors[3], "2024-04-01T05:55:55", owner),
        ),
    }
    pinned = {r.content.id for rows in fixed.values() for r in rows if isinstance(r.content, _Track)}
    rotating = [t for t in tracks if t.id not in pinned]

    def pool(key: str, keep: Any, size: int) -> list[_Track]:
        chosen = sorted((t for t in rotating if keep(t)), key=lambda t: _digest("pool", key, t.id))
        return chosen[:size]

    # key, name, flavour, public, collaborative, slots, mean tenure (windows), fresh slots,
    # fresh max age (days), pool filter, pool size, followers base, followers/day
    layout = (
        ("night-drive", "Synthetic · Night Drive", "Long roads, low lights.", True, False,
         172, 120, 24, 150, lambda t: True, 520, 18_400, 6.0),
        ("morning-coffee", "Synthetic · Morning Coffee", "Gentle songs for slow starts.", True, False,
         52, 45, 0, 0, lambda t: not t.explicit, 200, 5_210, 1.5),
        ("throwback", "Synthetic · Throwback Archive", "Older records, kept since the early days.",
         True, False,
         64, 180, 0, 0, lambda t: t.album.released.year < 2003, 220, 2_040, 0.4),
        ("new-releases", "Synthetic · New Release Radar", "Invented new music, refreshed all the time.",
         True, False,
         72, 18, 72, 21, lambda t: False, 0, 9_870, 4.0),
        ("interludes", "Synthetic · Interludes & Talk", "Short pieces and podcast episodes.", False, False,
         8, 60, 0, 0, lambda t: t.duration_ms < 200_000, 30, 310, 0.1),
        ("workout", 'Synthetic · Workout, "Loud" Edition', "Shared with friends; anything goes.",
         False, True,
         84, 60, 8, 330, lambda t: t.explicit or t.album.released.year >= 2005, 260, 0, 0.0),
    )
    playlists: dict[str, _PlaylistSpec] = {}
    for (key, name, flavour, public, collaborative, n_slots, mean_period, fresh, fresh_age,
         keep, pool_size, followers, per_day) in layout:
        playlist_id = synthetic_id("playlist", key)
        playlists[playlist_id] = _PlaylistSpec(
            key, playlist_id, name,
            f"Synthetic sample generated by spotify-assets, not real Spotify data. {flavour}",
            public, collaborative, owner, (owner, *friends) if collaborative else (owner,),
            fixed[key], _slots(key, n_slots, mean_period, pool(key, keep, pool_size), fresh, fresh_age),
            followers, per_day,
        )

    # New releases come mostly from artists who already have many songs.
    fresh_artists = tuple(sorted(artists, key=lambda a: a.id))
    cumulative, total = [], 0.0
    for a in fresh_artists:
        total += fame.get(a.id, 0.0) ** 2
        cumulative.append(total)
    return _Catalogue(tuple(artists), fame, fresh_artists, tuple(cumulative), playlists)


# --------------------------------------------------------------------------------------------
# Windows, slots and popularity.


def _window_index(window_start: datetime) -> int:
    if not isinstance(window_start, datetime):
        raise ValueError(f"window_start must be a datetime, got {window_start!r}")
    offset = window_start.utcoffset()
    if offset is None:
        raise ValueError(f"window_start must be timezone-aware UTC, got naive {window_start.isoformat()}")
    if offset != timedelta(0):
        raise ValueError(f"window_start must be in UTC, got {window_start.isoformat()}")
    below_hour = (window_start.minute, window_start.second, window_start.microsecond)
    if window_start.hour % WINDOW_HOURS or below_hour != (0, 0, 0):
        raise ValueError(
            f"window_start must be aligned to 00:00, 08:00 or 16:00 UTC, got {window_start.isoformat()}"
        )
    return (window_start.replace(tzinfo=timezone.utc) - _EPOCH) // _WINDOW


def _window_start(w: int) -> datetime:
    return _EPOCH + w * _WINDOW


@lru_cache(maxsize=8192)
def _fresh_track(key: str, slot: int, tenure: int, join: int, max_age_days: int) -> _Track:
    """A new release invented for one tenure of a fresh slot, released shortly before it joins."""
    cat = _catalogue()
    h = _digest("fresh", key, slot, tenure)
    r = random.Random(h)
    lead = cat.fresh_artists[bisect_right(cat.fresh_cumweights, r.random() * cat.fresh_cumweights[-1])]
    joined = _window_start(join).date()
    released = joined - timedelta(days=r.randrange(max_age_days + 1))
    if r.random() < 0.65:
        album_type, total = "single", r.randint(1, 3)
    else:
        album_type, total = "album", r.randint(8, 14)
    album_name = _album_title(r)
    album = _Album(synthetic_id("album", ("fresh", key, slot, tenure)), album_name, album_type, (lead,),
                   released, "day", total)
    artists: tuple[_Artist, ...] = (lead,)
    if r.random() < 0.2:
        guest = r.choice(cat.artists)
        if guest != lead:
            artists = (lead, guest)
    return _Track(
        synthetic_id("track", ("fresh", key, slot, tenure)), _track_title(r), album, artists, 1,
        r.randint(1, total), _duration_ms(r), r.random() < 0.4, _isrc(r, released.year),
        cat.fame.get(lead.id, 0.0), r.gauss(0, 8.5),
        # Playlists pick new releases up while they climb, as a new song's popularity does in its
        # first days: they peak 1-12 days after they join (3 to 40 days after release), 25 to 45
        # points up, so most climb by a point or more a day while they are listed.
        min(40.0, max(3.0, (joined - released).days + r.uniform(1.0, 12.0))),
        r.uniform(25.0, 45.0),
    )


_TYPE_BONUS = {"single": 4.0, "album": 0.0, "compilation": -7.0}


_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_DAYS_PER_WINDOW = WINDOW_HOURS / 24


@lru_cache(maxsize=16384)
def _dynamics(track_id: str) -> tuple[float, ...]:
    """A track's movement over time, fixed by its id: a small days-scale wiggle, a months-scale
    trend (most songs barely move, some drift by several points a month) and a release curve."""
    d = _digest("dynamics", track_id)
    u = [int.from_bytes(d[i : i + 3], "big") / 2.0**24 for i in range(0, 30, 3)]
    wiggle = (0.05 + 0.15 * u[0], 15 + 45 * u[1], 2 * math.pi * u[2])  # amplitude, period (windows), phase
    moving = u[3] < 0.4
    trend_amplitude = (2.0 + 10.0 * u[4]) if moving else (0.2 + 0.6 * u[4])
    trend = (trend_amplitude, (240 + 660 * u[5]) / _DAYS_PER_WINDOW, 2 * math.pi * u[6])
    peak_days = 5.0 + 35.0 * u[7]  # catalogue songs; fresh releases carry their own
    peak_height = 12.0 + 20.0 * u[8]
    decay_days = 20.0 + 70.0 * u[9]
    return (*wiggle, *trend, peak_days, peak_height, decay_days)


def _release_curve(age_days: float, peak_days: float, height: float, decay_days: float) -> float:
    """0 at release, climbing steadily to `height` at `peak_days`, then decaying back to 0 (the
    song's long-run level) with time constant `decay_days`."""
    if age_days <= 0.0:
        return 0.0
    if age_days < peak_days:
        return height * age_days / peak_days
    return height * math.exp((peak_days - age_days) / decay_days)


_NOISE_SD = 0.1  # per-window noise: real popularity is smooth from one window to the next


def _base_popularity(track: _Track, w: int) -> float:
    """What the features explain: fame, recency, album type, explicitness, duration."""
    age_years = max(0.0, ((_window_start(w + 1).date() - track.album.released).days) / 365.25)
    minutes = track.duration_ms / 60_000
    return (
        18.0 + 9.0 * track.fame + 26.0 * math.exp(-age_years / 2.0) + _TYPE_BONUS[track.album.album_type]
        + (5.0 if track.explicit else 0.0) - 4.0 * abs(minutes - 3.5)
    )


def _popularity_value(track: _Track, w: int) -> float:
    """Popularity at window `w` before rounding: the explained level, the per-track offset, the
    release curve, the trend, a small wiggle and a little per-window noise."""
    a1, p1, f1, a2, p2, f2, peak_days, height, decay_days = _dynamics(track.id)
    age_days = (w + 1) * _DAYS_PER_WINDOW - (track.album.released.toordinal() - _EPOCH_ORDINAL)
    return (
        _base_popularity(track, w) + track.noise
        + _release_curve(age_days, track.peak_days or peak_days, track.peak_height or height, decay_days)
        + a2 * math.sin(2 * math.pi * w / p2 + f2) + a1 * math.sin(2 * math.pi * w / p1 + f1)
        + _NOISE_SD * _gauss("pop", track.id, w)
    )


def _popularity(track: _Track, w: int) -> int:
    return int(min(100, max(0, round(_popularity_value(track, w)))))


@dataclass(frozen=True)
class _Row:
    content: _Content
    added_at: datetime | None
    added_by: _User | None
    order: tuple[int, int]  # tie-break for equal added_at: fixed rows first, then by slot


def _rows_at(spec: _PlaylistSpec, w: int) -> list[_Row]:
    rows: list[_Row] = []
    for i, fx in enumerate(spec.fixed):
        # Rows join at their added_at; a window before that shows the playlist without them.
        if fx.added_at is None or fx.added_at < _window_start(w + 1):
            rows.append(_Row(fx.content, fx.added_at, fx.added_by, (0, i)))
    for slot in spec.slots:
        tenure = (w + slot.phase) // slot.period
        start = tenure * slot.period - slot.phase
        h = _digest("tenure", spec.key, slot.index, tenure)
        # Some tenures start with an empty stretch, so sizes wobble a little.
        gap = 1 + h[1] % max(1, min(6, slot.period // 4)) if h[0] < 77 else 0
        join = start + gap
        if join > w:
            continue
        content: _Track | None = None
        if slot.fresh_max_age_days:
            content = _fresh_track(spec.key, slot.index, tenure, join, slot.fresh_max_age_days)
        else:
            joined = _window_start(join).date()
            n = len(slot.pool)
            offset = int.from_bytes(_digest("offset", spec.key, slot.index)[:4], "big")
            for j in range(n):  # the first pool track already released when the tenure begins
                candidate = slot.pool[(tenure + offset + j) % n]
                if candidate.album.released <= joined:
                    content = candidate
                    break
        if content is None:
            continue
        second = int.from_bytes(h[2:6], "big") % (WINDOW_HOURS * 3600)
        added_at = _window_start(join) + timedelta(seconds=second)
        added_by = spec.contributors[h[6] % len(spec.contributors)]
        rows.append(_Row(content, added_at, added_by, (1, slot.index)))
    rows.sort(key=lambda r: (r.added_at is not None, r.added_at or _EPOCH, r.order))
    return rows


# --------------------------------------------------------------------------------------------
# JSON in the Web API's shape.


def _urls(kind: str, object_id: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{_OPEN}/{kind}/{object_id}"},
        "href": f"{_API}/{kind}s/{object_id}",
        "id": object_id,
        "uri": f"spotify:{kind}:{object_id}",
    }


def _user_json(user: _User, with_display_name: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"display_name": user.display_name} if with_display_name else {}
    out.update(_urls("user", user.id))
    out["type"] = "user"
    return out


def _artist_json(artist: _Artist) -> dict[str, Any]:
    return {**_urls("artist", artist.id), "name": artist.name, "type": "artist"}


def _cover_images(label: str) -> list[dict[str, Any]]:
    hexed = _image_hex(label)
    return [
        {"height": 640, "url": f"https://i.scdn.co/image/ab67616d0000b273{hexed}", "width": 640},
        {"height": 300, "url": f"https://i.scdn.co/image/ab67616d00001e02{hexed}", "width": 300},
        {"height": 64, "url": f"https://i.scdn.co/image/ab67616d00004851{hexed}", "width": 64},
    ]


def _track_json(track: _Track, w: int) -> dict[str, Any]:
    album = track.album
    return {
        "album": {
            "album_type": album.album_type,
            "artists": [_artist_json(a) for a in album.artists],
            **_urls("album", album.id),
            "images": _cover_images(album.id),
            "is_playable": True,
            "name": album.name,
            "release_date": album.release_date,
            "release_date_precision": album.precision,
            "total_tracks": album.total_tracks,
            "type": "album",
        },
        "artists": [_artist_json(a) for a in track.artists],
        "disc_number": track.disc_number,
        "duration_ms": track.duration_ms,
        "episode": False,
        "explicit": track.explicit,
        "external_ids": {"isrc": track.isrc},
        **_urls("track", track.id),
        "is_local": False,
        "is_playable": True,
        "name": track.name,
        "popularity": _popularity(track, w),
        "preview_url": None,
        "track": True,
        "track_number": track.track_number,
        "type": "track",
    }


def _episode_json(episode: _Episode) -> dict[str, Any]:
    show = episode.show
    return {
        "audio_preview_url": None,
        "description": episode.description,
        "duration_ms": episode.duration_ms,
        "episode": True,
        "explicit": False,
        **_urls("episode", episode.id),
        "html_description": f"<p>{episode.description}</p>",
        "images": _cover_images(episode.id),
        "is_externally_hosted": False,
        "is_playable": True,
        "language": "en",
        "languages": ["en"],
        "name": episode.name,
        "release_date": episode.released.isoformat(),
        "release_date_precision": "day",
        "show": {
            "copyrights": [],
            "description": show.description,
            "explicit": False,
            **_urls("show", show.id),
            "html_description": f"<p>{show.description}</p>",
            "images": _cover_images(show.id),
            "is_externally_hosted": False,
            "languages": ["en"],
            "media_type": "audio",
            "name": show.name,
            "publisher": show.publisher,
            "total_episodes": show.total_episodes,
            "type": "show",
        },
        "track": False,
        "type": "episode",
    }


def _local_json(local: _LocalFile) -> dict[str, Any]:
    # Local files exist only on the user's device: no ids, no links, no ISRC, popularity 0.
    uri = ":".join(("spotify:local", *(quote_plus(p) for p in (local.artist, local.album, local.title)),
                    str(local.seconds)))
    return {
        "album": {"album_type": None, "artists": [], "external_urls": {}, "href": None, "id": None,
                  "images": [], "name": local.album, "release_date": None, "release_date_precision": None,
                  "type": "album", "uri": None},
        "artists": [{"external_urls": {}, "href": None, "id": None, "name": local.artist, "type": "artist",
                     "uri": None}],
        "disc_number": 0,
        "duration_ms": local.seconds * 1000,
        "episode": False,
        "explicit": False,
        "external_ids": {},
        "external_urls": {},
        "href": None,
        "id": None,
        "is_local": True,
        "name": local.title,
        "popularity": 0,
        "preview_url": None,
        "track": True,
        "track_number": 0,
        "type": "track",
        "uri": uri,
    }


def _row_json(row: _Row, w: int) -> dict[str, Any]:
    content = row.content
    if isinstance(content, _Track):
        item: dict[str, Any] | None = _track_json(content, w)
    elif isinstance(content, _Episode):
        item = _episode_json(content)
    elif isinstance(content, _LocalFile):
        item = _local_json(content)
    else:
        item = None
    return {
        "added_at": iso_z(row.added_at, "seconds") if row.added_at else None,
        "added_by": _user_json(row.added_by) if row.added_by else None,
        "is_local": isinstance(content, _LocalFile),
        "item": item,
        "primary_color": None,
        "video_thumbnail": {"url": None},
    }


def _snapshot_id(spec: _PlaylistSpec, rows: list[_Row]) -> str:
    """Changes exactly when the rows (what, when, by whom, in which order) change, as Spotify's does."""
    identity = []
    for r in rows:
        c = r.content
        key = c.id if isinstance(c, _Track | _Episode) else repr(c)
        added_at = iso_z(r.added_at, "seconds") if r.added_at else None
        identity.append((key, added_at, r.added_by.id if r.added_by else None))
    digest = hashlib.sha256(json.dumps([spec.id, identity], ensure_ascii=False).encode()).hexdigest()
    return base64.b64encode(f"{len(rows)},{digest[:40]}".encode()).decode()


def _build(spec: _PlaylistSpec, w: int) -> SamplePlaylist:
    rows = _rows_at(spec, w)
    days = max(0.0, (w - _window_index(datetime(2024, 1, 1, tzinfo=timezone.utc))) / 3)
    meta = {
        "collaborative": spec.collaborative,
        "description": spec.description,
        "external_urls": {"spotify": f"{_OPEN}/playlist/{spec.id}"},
        "followers": {"href": None, "total": spec.followers_base + int(days * spec.followers_per_day)},
        "href": f"{_API}/playlists/{spec.id}",
        "id": spec.id,
        "images": [{"height": 640, "url": f"{_PLAYLIST_IMAGE}{_image_hex(spec.id)}", "width": 640}],
        "name": spec.name,
        "owner": _user_json(spec.owner, with_display_name=True),
        "primary_color": None,
        "public": spec.public,
        "snapshot_id": _snapshot_id(spec, rows),
        "type": "playlist",
        "uri": f"spotify:playlist:{spec.id}",
    }
    return SamplePlaylist(meta=meta, rows=[_row_json(r, w) for r in rows])


# --------------------------------------------------------------------------------------------
# Public API.


def sample_playlist_ids() -> list[str]:
    """The ids of the synthetic playlists, in a stable order."""
    return list(_catalogue().playlists)


def sample_playlists(window_start: datetime) -> list[SamplePlaylist]:
    """Every synthetic playlist as it stands at the end of the window starting at `window_start`.

    `window_start` must be timezone-aware UTC and fall on 00:00, 08:00 or 16:00 (ValueError
    otherwise). The result is a fresh object graph on each call; callers may mutate it.
    """
    w = _window_index(window_start)
    return [_build(spec, w) for spec in _catalogue().playlists.values()]


def sample_playlist(playlist_id: str, window_start: datetime) -> SamplePlaylist:
    """One synthetic playlist at the end of the window; KeyError for an id not in the sample."""
    w = _window_index(window_start)
    spec = _catalogue().playlists.get(playlist_id)
    if spec is None:
        raise KeyError(f"no synthetic sample playlist with id {playlist_id!r}")
    return _build(spec, w)


# --------------------------------------------------------------------------------------------
# The batch endpoints (`GET /artists?ids=`, `GET /albums?ids=`), which Extended Quota apps may
# call: what playlist rows never carry. Fixed per id (a hash), so every window agrees.

_GENRES = (
    "indie pop", "dream pop", "synthwave", "chamber folk", "alt country", "neo soul", "lo-fi beats",
    "post-punk", "art rock", "bedroom pop", "nu jazz", "electropop", "baroque pop", "trip hop",
    "shoegaze", "city pop",
)
_LABELS = ("Paper Moth Records", "Quiet Harbour", "Static Bloom", "Northern Ledger", "Velvet Room Music")


def synthetic_artist(simplified: dict) -> dict:
    """The full artist object of a sample artist (from its simplified object in a row):
    0 to 3 genres (about one artist in eight has none, as on Spotify), followers and popularity."""
    aid = simplified["id"]
    count = (0, 1, 1, 2, 2, 2, 3, 3)[_int("genre-count", aid) % 8]
    genres = sorted({_GENRES[_int("genre", aid, i) % len(_GENRES)] for i in range(count)})
    return {
        **simplified,
        "followers": {"href": None, "total": int(10 ** (2 + 4 * _unit("followers", aid)))},
        "genres": genres,
        "popularity": 5 + _int("artist-popularity", aid) % 86,
    }


def synthetic_album(simplified: dict) -> dict:
    """The full album object of a sample album: its label and popularity."""
    aid = simplified["id"]
    return {
        **simplified,
        "genres": [],  # the API's album genres are nearly always empty
        "label": _LABELS[_int("label", aid) % len(_LABELS)],
        "popularity": 5 + _int("album-popularity", aid) % 86,
    }
