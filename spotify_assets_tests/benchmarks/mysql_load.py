"""Benchmark: a 100,000-row window written to MySQL through the IO manager, against a bulk load
of the same frames.

    .venv/bin/python -m spotify_assets_tests.benchmarks.mysql_load                 # ~1-2 min
    .venv/bin/python -m spotify_assets_tests.benchmarks.mysql_load --rows 20000 --repeat 1
    .venv/bin/python -m spotify_assets_tests.benchmarks.mysql_load --url mysql+pymysql://root:pw@127.0.0.1:3306/

The window: `--playlists` (100) playlists of `--rows` / playlists rows each (100,000 playlist
rows in all) over a catalogue of `--tracks` (30,000) songs, normalized into the six tables
as `normalized_tables` makes them (playlist_tracks 100,000 rows; songs, albums, artists and
song_artists one row per song). A MariaDB server is started in a temporary directory
(support/mariadb.py), unless `--url` names one.

Measured, each `--repeat` times (min and median shown):

1. io_manager: every table's frame written by `WarehouseMySQLIOManager.handle_output` for the
   window's partition (Dagster's DbIOManager, then `MySQLClient.replace`: DELETE the window,
   LOAD DATA LOCAL INFILE, count, in one transaction), into tables already holding 2 other
   windows, so the delete has rows to skip;
2. bulk, LOAD DATA: the same frames written by pandas' `to_csv` to a file and loaded with
   LOAD DATA LOCAL INFILE into empty tables of the same DDL (autocommit, no delete, no count);
3. bulk, executemany: PyMySQL's `executemany` of the same rows (multi-row INSERTs of ~1 MB).

Target: io_manager <= 2x the faster bulk load. The figures are printed; the process fails
only on a wrong row count, never on a missed target.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from spotify_assets.defs.mysql_warehouse import WarehouseMySQLIOManager
from spotify_assets.defs.partitions import snapshot_windows
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.tables.schema import DECLARED_TABLES, PARTITION_COLUMN, TABLES
from spotify_assets.lib.warehouse import mysql as mysql_target
from spotify_assets.lib.window import Window
from spotify_assets_tests.support import mariadb
from spotify_assets_tests.support.fixtures import document, playlist, row, track

FIRST = "2026-11-01-00:00"


def window_frames(start: datetime, playlists: int, rows: int, tracks: int) -> dict[str, pd.DataFrame]:
    per = rows // playlists
    catalogue = [track(f"song-{i}", popularity=i % 101, artists=1 + (i % 7 == 0)) for i in range(tracks)]
    docs = []
    for p in range(playlists):
        meta, _ = playlist(f"bench-{p}", 0)
        items = [row(catalogue[(p * 7919 + i * 31) % tracks]) for i in range(per)]
        docs.append(document(meta, items, window_start=start.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return normalize_documents(start, docs).frames


def io_manager_load(manager: WarehouseMySQLIOManager, frames: dict[str, pd.DataFrame], key: str) -> float:
    io = manager.create_io_manager(None)
    windows = snapshot_windows(FIRST)
    started = time.perf_counter()
    for table, frame in frames.items():
        context = dg.build_output_context(
            asset_key=dg.AssetKey(table), partition_key=key, asset_partitions_def=windows,
            definition_metadata={"partition_expr": PARTITION_COLUMN},
        )
        io.handle_output(context, frame)
    return time.perf_counter() - started


def bulk_load_data(client: mysql_target.MySQLClient, frames: dict[str, pd.DataFrame]) -> float:
    """pandas to_csv + LOAD DATA LOCAL INFILE into fresh tables (the timing includes writing the files)."""
    _fresh_tables(client, frames)
    started = time.perf_counter()
    with client.cursor() as cur:
        for table, frame in frames.items():
            out = frame.copy()
            for c in out.columns:
                if str(out[c].dtype).startswith("datetime64[us, UTC]"):
                    out[c] = out[c].dt.tz_localize(None)
                elif str(out[c].dtype) == "boolean":
                    out[c] = out[c].astype("Int8")
            fd, path = tempfile.mkstemp(suffix=".csv")
            os.close(fd)
            try:
                out.to_csv(path, index=False, header=False, na_rep="\\N", quoting=csv.QUOTE_MINIMAL, escapechar="\\", doublequote=False)
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {client.qualified(table)} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'",
                    (path,),
                )
            finally:
                os.unlink(path)
    return time.perf_counter() - started


def bulk_executemany(client: mysql_target.MySQLClient, frames: dict[str, pd.DataFrame]) -> float:
    _fresh_tables(client, frames)
    started = time.perf_counter()
    with client.cursor() as cur:
        for table, frame in frames.items():
            mysql_target.insert_rows(cur, client.qualified(table), frame)
    return time.perf_counter() - started


def _fresh_tables(client: mysql_target.MySQLClient, frames: dict[str, pd.DataFrame]) -> None:
    with client.cursor() as cur:
        client.ensure_database(cur)
        for table in frames:
            cur.execute(f"DROP TABLE IF EXISTS {client.qualified(table)}")
            cur.execute(mysql_target.DIALECT.create_table(DECLARED_TABLES[table], client.qualified(table)))


def _counts(client: mysql_target.MySQLClient, window: Window | None) -> dict[str, int]:
    where = mysql_target.DIALECT.where_window(window)
    return {t: int(client.query(f"SELECT COUNT(*) AS n FROM {client.qualified(t)}{where}")["n"].iloc[0]) for t in TABLES}


def main() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)  # the IO manager's per-write lines
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="playlist rows in the window")
    parser.add_argument("--playlists", type=int, default=100)
    parser.add_argument("--tracks", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="an existing server (SQLAlchemy URL) instead of starting one")
    args = parser.parse_args()

    process = directory = None
    url = args.url
    if url is None:
        directory = Path(tempfile.mkdtemp(prefix="mysql-bench-"))
        process, url = mariadb.start_server(directory, durable=True)  # as a real server flushes
    try:
        windows = snapshot_windows(FIRST)
        keys = windows.get_partition_keys()[:3]
        spans = [windows.time_window_for_partition_key(k) for k in keys]
        print(f"building the window: {args.playlists} playlists x {args.rows // args.playlists} rows over {args.tracks} songs ...")
        started = time.perf_counter()
        frames = {k: window_frames(s.start, args.playlists, args.rows, args.tracks) for k, s in zip(keys, spans)}
        target = frames[keys[-1]]
        print(f"  built in {time.perf_counter() - started:.1f} s: " + ", ".join(f"{t} {len(f):,}" for t, f in target.items())
              + f"; {sum(len(f) for f in target.values()):,} rows in all")

        host, port = url.split("@", 1)[1].rstrip("/").rsplit(":", 1)
        user_part = url.split("://", 1)[1].split("@", 1)[0]
        user, _, password = user_part.partition(":")
        database = f"bench_{int(time.time())}"
        manager = WarehouseMySQLIOManager(host=host, port=int(port), user=user, password=password or None, database=database)
        client = mysql_target.client_for(url, database)
        for key in keys[:-1]:  # two other windows already stored
            io_manager_load(manager, frames[key], key)
        figures: dict[str, list[float]] = {"io_manager": [], "bulk LOAD DATA (to_csv)": [], "bulk executemany": []}
        expected = {t: len(target[t]) for t in TABLES}
        last = Window(spans[-1].start, spans[-1].end)
        bulk = mysql_target.client_for(url, f"{database}_bulk")
        for n in range(args.repeat):
            figures["io_manager"].append(io_manager_load(manager, target, keys[-1]))
            assert _counts(client, last) == expected, _counts(client, last)
            figures["bulk LOAD DATA (to_csv)"].append(bulk_load_data(bulk, target))
            assert _counts(bulk, None) == expected, _counts(bulk, None)
            figures["bulk executemany"].append(bulk_executemany(bulk, target))
            assert _counts(bulk, None) == expected, _counts(bulk, None)
            print(f"  run {n + 1}: " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in figures.items()))
        assert _counts(client, None) == {t: sum(len(frames[k][t]) for k in keys) for t in TABLES}  # other windows kept
        print()
        for name, values in figures.items():
            print(f"{name:26} min {min(values):6.2f} s   median {statistics.median(values):6.2f} s   runs {', '.join(f'{v:.2f}' for v in values)}")
        fastest_bulk = min(min(v) for name, v in figures.items() if name != "io_manager")
        ratio = min(figures["io_manager"]) / fastest_bulk
        print(f"\nio_manager / fastest bulk load (min): {ratio:.2f}x  (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")
    finally:
        if process is not None:
            mariadb.stop(process)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
