"""Benchmark: one window written to the local Iceberg lake against the DuckDB warehouse, and a
one-window query against a whole-table scan.

    .venv/bin/python -m spotify_assets_tests.benchmarks.lake                 # 1,000,000 rows a window
    .venv/bin/python -m spotify_assets_tests.benchmarks.lake --rows 100000 --windows 4 --repeat 1

The window's six frames are made directly (no JSON, no normalization: that is
`benchmarks/warehouse.py`'s subject), deterministically from `--seed`, with the declared dtypes
and the shape of a real window: `--rows` playlist rows (default 1,000,000) over `--rows / 1000`
playlists, a song per 3.3 rows, 1.3 credits a song, an album per 5 songs, an artist per 10.

1. Write: the same frames as `normalized_tables` writes them (`replace_window`, all six) into
   a fresh local lake (pyiceberg's SQL catalog on SQLite, Parquet files) and into a fresh
   DuckDB file; then the same window again (a replacement) in each. Wall times, each repeated
   (`--repeat`, min shown), and the on-disk size of each.
2. Read: with `--windows` windows stored, a one-window scan of `playlist_tracks` (the
   partition filter: files planned and read, rows, wall time) against a whole-table scan.

No figure is a pass/fail target; the process fails only if a count is wrong.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from spotify_assets.lib.tables.schema import TABLES
from spotify_assets.lib.warehouse.duckdb import DuckDBClient, DuckDBDatabase
from spotify_assets.lib.warehouse.iceberg import local_client, window_filter
from spotify_assets.lib.window import Window

FIRST = Window(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, 8, tzinfo=timezone.utc))


def window(i: int) -> Window:
    return Window(FIRST.start + timedelta(hours=8 * i), FIRST.end + timedelta(hours=8 * i))


def frames(rows: int, start: datetime, seed: int) -> dict[str, pd.DataFrame]:
    """A window's six frames, conformed to their declarations."""
    rng = np.random.default_rng(seed)
    playlists, songs = max(1, rows // 1000), max(1, int(rows / 3.3))
    albums, artists = max(1, songs // 5), max(1, songs // 10)

    def ids(prefix: str, n: int) -> np.ndarray:
        return np.char.add(prefix, np.arange(n).astype(str))

    def stamp(n: int) -> pd.Series:
        return pd.Series([start] * n, dtype="datetime64[us, UTC]")

    song_ids = ids("song", songs)
    song_album = rng.integers(0, albums, songs)
    song_artist = rng.integers(0, artists, songs)
    track_song = rng.integers(0, songs, rows)
    out = {
        "playlist_tracks": {
            "window_start": stamp(rows),
            "playlist_id": ids("pl", playlists)[np.arange(rows) % playlists],
            "position": np.arange(rows) // playlists,
            "song_id": song_ids[track_song],
            "added_at": pd.Series(pd.to_datetime(1.7e9 + rng.integers(0, 3e7, rows), unit="s", utc=True)),
            "added_by_id": ids("user", 50)[rng.integers(0, 50, rows)],
        },
        "songs": {
            "window_start": stamp(songs),
            "song_id": song_ids,
            "name": np.char.add("Song ", np.arange(songs).astype(str)),
            "duration_ms": rng.integers(60_000, 400_000, songs),
            "popularity": rng.integers(0, 100, songs),
            "album_id": ids("album", albums)[song_album],
            "artist_id": ids("artist", artists)[song_artist],
            "artist_count": np.ones(songs, dtype=int),
            "playlist_appearances": np.bincount(track_song, minlength=songs),
        },
        "song_artists": {
            "window_start": stamp(songs),
            "song_id": song_ids,
            "artist_position": np.zeros(songs, dtype=int),
            "artist_id": ids("artist", artists)[song_artist],
        },
        "albums": {
            "window_start": stamp(albums),
            "album_id": ids("album", albums),
            "name": np.char.add("Album ", np.arange(albums).astype(str)),
            "release_date": ["2020-05-17"] * albums,
            "release_date_precision": ["day"] * albums,
            "release_year": np.full(albums, 2020),
        },
        "artists": {
            "window_start": stamp(artists),
            "artist_id": ids("artist", artists),
            "name": np.char.add("Artist ", np.arange(artists).astype(str)),
        },
        "playlists": {
            "window_start": stamp(playlists),
            "playlist_id": ids("pl", playlists),
            "status": ["ok"] * playlists,
            "rows_total": np.full(playlists, rows // playlists),
            "extracted_at": stamp(playlists),
        },
    }
    result = {}
    for name, columns in out.items():
        spec = TABLES[name]
        frame = spec.empty_frame().reindex(range(len(columns["window_start"])))
        for column, values in columns.items():
            frame[column] = np.asarray(values) if not isinstance(values, pd.Series) else values.to_numpy()
        result[name] = spec.conform(frame)
    return result


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="playlist rows in the window")
    parser.add_argument("--windows", type=int, default=6, help="windows stored for the read step")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=None)
    a = parser.parse_args(argv)
    import pyiceberg.catalog.sql  # noqa: F401  imported before any timing (the lake imports lazily)
    import pyiceberg.io.pyarrow  # noqa: F401
    import sqlglot  # noqa: F401
    work = Path(a.workdir or tempfile.mkdtemp(prefix="lake-bench-"))
    w = FIRST
    data = frames(a.rows, w.start, a.seed)
    total = sum(len(f) for f in data.values())
    print(f"window: {a.rows:,} playlist rows; {total:,} rows in the six tables ({', '.join(f'{n} {len(f):,}' for n, f in data.items())})")

    results: dict[str, list[tuple[float, float]]] = {"lake": [], "duckdb": []}
    for attempt in range(a.repeat):
        for target in ("lake", "duckdb"):
            where = work / f"{target}-{attempt}"
            shutil.rmtree(where, ignore_errors=True)
            client = local_client(where) if target == "lake" else DuckDBClient(DuckDBDatabase(where / "w.duckdb"), "analytics")
            first = timed(lambda: client.replace_window(data, w))
            again = timed(lambda: client.replace_window(data, w))
            got = client.query("SELECT count(*) AS n FROM analytics.playlist_tracks")["n"][0]
            assert int(got) == a.rows, (target, got)
            results[target].append((first, again))
            print(f"  {target:6s} run {attempt + 1}: first write {first:6.2f} s, replacing it {again:6.2f} s, on disk {size_mb(where):7.1f} MB")
    for target, runs in results.items():
        print(f"write {target:6s}: min first {min(r[0] for r in runs):.2f} s, min replace {min(r[1] for r in runs):.2f} s")
    lake_first = min(r[0] for r in results["lake"])
    duck_first = min(r[0] for r in results["duckdb"])
    print(f"lake / duckdb (first write): {lake_first / duck_first:.2f}x")

    # read: a one-window query against the whole table
    lake = local_client(work / "lake-0")
    for i in range(1, a.windows):
        lake.replace_window({"playlist_tracks": data["playlist_tracks"].assign(window_start=window(i).start)}, window(i))
    table = lake.load("playlist_tracks")
    target = window(a.windows // 2)
    one_scan = table.scan(row_filter=window_filter(target))
    all_scan = table.scan()
    one_files, all_files = len(list(one_scan.plan_files())), len(list(all_scan.plan_files()))
    one_rows: list[int] = []
    all_rows: list[int] = []
    one_s = min(timed(lambda: one_rows.append(one_scan.to_arrow().num_rows)) for _ in range(a.repeat))
    all_s = min(timed(lambda: all_rows.append(all_scan.to_arrow().num_rows)) for _ in range(a.repeat))
    assert one_rows[0] == a.rows and all_rows[0] == a.rows * a.windows, (one_rows, all_rows)
    print(f"read playlist_tracks, {a.windows} windows stored:")
    print(f"  one window : {one_files} of {all_files} data files planned and read, {one_rows[0]:,} rows, {one_s:.2f} s")
    print(f"  whole table: {all_files} data files, {all_rows[0]:,} rows, {all_s:.2f} s")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
