"""A synthetic `popularity_features` frame over many windows, for the forecast's tests and benchmark.

Deterministic in `seed` (numpy `default_rng`). Songs belong to artists with skewed catalogue
sizes; each song is listed for a run of consecutive windows starting at its first window (songs
first listed after window 0 are new in that window). A song's popularity at window w is

    level + rise * bump(age_days) + drift * w + noise sd,

where `bump` rises from release, peaks at the song's `peak_days` and decays, `drift` is the
song's slow trend (points per window), and `level` leans on the artist's fame. `planted` adds
a trend the features announce: songs released less than 30 days before the window climb
`planted` points per window, which persistence cannot know and a model can learn.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

W0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
WINDOW = timedelta(hours=8)


def make_panel(
    songs: int,
    windows: int,
    seed: int = 0,
    *,
    noise: float = 0.6,
    planted: float = 0.0,
    new_share: float = 0.3,
    first: datetime = W0,
) -> Any:
    import numpy as np
    import pandas as pd

    from spotify_assets.lib.tables.schema import POPULARITY_FEATURES

    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < songs:
        sizes.extend(np.minimum(rng.zipf(1.8, size=4096), 400).tolist())
    size_arr = np.array(sizes)
    size_arr = size_arr[: int(np.searchsorted(np.cumsum(size_arr), songs)) + 1]
    size_arr[-1] -= int(size_arr.sum()) - songs
    artist = np.repeat(np.arange(len(size_arr)), size_arr)
    fame = np.log1p(size_arr[artist])

    # when each song is listed: old songs from window 0, new ones from a later window
    is_new = rng.random(songs) < new_share
    start = np.where(is_new, rng.integers(1, max(2, windows), songs), 0)
    length = rng.integers(max(2, windows // 3), windows + 1, songs)
    stop = np.minimum(start + length, windows)  # exclusive
    # release: new songs a few days before they are listed, old ones long before
    release_day = np.where(is_new, start / 3.0 - rng.exponential(5.0, songs), -rng.exponential(900.0, songs) - 1)
    peak_days = rng.uniform(5, 40, songs)
    rise = rng.uniform(10, 30, songs)
    drift = rng.normal(0, 0.08, songs)
    level = np.clip(15 + 8 * fame + rng.normal(0, 8, songs), 0, 80)
    duration = np.clip(rng.lognormal(np.log(210_000), 0.3, songs), 30_000, 900_000).astype(np.int64)
    explicit = rng.random(songs) < 0.15
    album_type = rng.choice(np.array(["album", "single", "compilation"]), size=songs, p=[0.6, 0.3, 0.1])

    counts = stop - start
    song = np.repeat(np.arange(songs), counts)
    w = np.concatenate([np.arange(a, b) for a, b in zip(start, stop)]) if len(song) else np.array([], dtype=int)
    age = w / 3.0 - release_day[song]
    bump = (age / peak_days[song]) * np.exp(1 - age / peak_days[song])
    value = level[song] + rise[song] * bump + drift[song] * w + rng.normal(0, noise, len(song))
    if planted:
        young = age < 30
        value = value + np.where(young, planted * (w - start[song]), 0.0)
    popularity = np.clip(np.round(value), 0, 100).astype(int)
    listed_before = w - start[song]
    frame = pd.DataFrame(
        {
            "song_id": np.char.add("song", np.char.zfill(song.astype(str), 7)),
            "window_start": pd.to_datetime(first, utc=True) + pd.to_timedelta(w * 8, unit="h"),
            "name": np.char.add("song ", song.astype(str)),
            "artist_id": np.char.add("artist", artist[song].astype(str)),
            "popularity": popularity,
            "duration_ms": duration[song],
            "explicit": explicit[song],
            "track_number": 1 + song % 12,
            "disc_number": 1,
            "artist_count": 1,
            "album_type": album_type[song],
            "album_total_tracks": 12,
            "release_date_precision": "day",
            "release_age_days": np.round(age, 1),
            "playlist_appearances": 1 + (popularity > 60),
            "playlist_count": 1 + (popularity > 60),
            "mean_position": rng.uniform(0, 100, len(song)).round(1),
            "days_since_added": (listed_before // 3).astype(int),
            "previous_popularity": None,
            "popularity_windows_before": listed_before,
            "windows_listed_before": listed_before,
            "artist_other_songs": 0,
            "artist_other_mean_popularity": None,
        }
    )
    frame = frame.sort_values(["song_id", "window_start"], ignore_index=True)
    same = frame["song_id"].eq(frame["song_id"].shift())
    frame["previous_popularity"] = frame["popularity"].shift().where(same)
    by = frame.groupby(["artist_id", "window_start"])["popularity"]
    count, total = by.transform("count"), by.transform("sum")
    frame["artist_other_songs"] = count - 1
    frame["artist_other_mean_popularity"] = ((total - frame["popularity"]) / (count - 1)).where(count > 1)
    return POPULARITY_FEATURES.conform(frame.sort_values(["window_start", "song_id"], ignore_index=True))
