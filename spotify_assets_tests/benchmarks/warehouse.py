"""Benchmark: normalize one window of raw playlist snapshots and load it into DuckDB.

    .venv/bin/python -m spotify_assets_tests.benchmarks.warehouse            # full size, ~5 min
    .venv/bin/python -m spotify_assets_tests.benchmarks.warehouse --quick    # 100 x 1,000 rows, ~1.5 min
    .venv/bin/python -m spotify_assets_tests.benchmarks.warehouse --playlists 300 --rows 500 \\
        --history-playlists 20 --history-windows 30 --repeat 3 --profile 100 --workdir /tmp/wh

A synthetic window (default 1,000 playlists x 1,000 rows = 1,000,000 rows, about 2.3-2.4 KB
of JSON a row, 2.4 GB in all) is generated deterministically from `--seed` as one JSON file
per playlist (written with orjson), in the stored raw-document shape and with the rows the
2026 Web API returns (`fields` unfiltered). Its catalogue scales with the window (default
300k tracks on 60k albums by 30k artists), with multi-artist tracks, rows repeated within a
playlist, and a few null, local and podcast-episode rows. Generation runs in its own
process, and so does every measurement, so no process holds the 2.4 GB and peak RSS is per
approach.

Targets (printed with each figure; the process fails only on gross errors such as wrong
row counts or a crashed step, never on a missed target):

1. Normalizing costs no more than parsing: read each file and `Normalizer.add` it, then
   `finish()`, versus read each file and `orjson.loads` it (discarding the result).
   Wall time ours / orjson <= 1.0; peak RSS of the normalizing process <= 2 GB.
   Peak RSS is `getrusage(RUSAGE_SELF).ru_maxrss`, cross-checked with /proc VmHWM: the
   former also counts the launching process's RSS at exec (Linux keeps it across execve),
   which is why the driver stays small and generation happens in a child.
2. Loading the window's six frames as `normalized_tables` does (all six in one transaction,
   `lib/warehouse/duckdb.py: duckdb_replace_window`) into a fresh DuckDB file costs <= 2x DuckDB's own
   bulk insert of the same frames into a fresh file (INSERT INTO a table created from the
   same DDL, and CREATE TABLE AS SELECT, both reported).
3. History: materializing (normalize + load) window 91 when 90 windows are stored costs
   <= 1.5x materializing window 1 into an empty file; re-materializing window 91 replaces
   it (row counts stay exact). Uses a smaller window (`--history-playlists`, default 50
   x `--rows`) to keep the runtime sane; windows 2..90 reuse window 1's frames and are
   loaded the same way, and their load times show any growth with history.
   Each timed materialization runs in a fresh process, as a Dagster run's step does.
   The warehouse connections set `max_vacuum_tasks = 0` (lib/warehouse/duckdb.py); `--connection-config
   '{"max_vacuum_tasks": 100}'` measures DuckDB's default, where some checkpoints merge partly
   filled row groups, rewriting stored windows (single windows then vary by about 1 s).

Timings are repeated (`--repeat`, default 2; each run and the min/median are shown), since
other work may share the machine; CPU seconds are shown beside wall time for step 1. The
documents stay in the page cache after generation, so file reads cost memory bandwidth in
both approaches alike. `--workdir DIR` keeps the generated files (and reuses them when the
parameters match); `--profile N` adds a cProfile of normalizing the first N playlists;
`--skip-normalize` (steps 2 and 3), `--skip-load` and `--skip-history` leave steps out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GB = 1024**3
ROW_BYTES_TARGET = 2300
SCHEMA = "analytics"
REPO = Path(__file__).resolve().parents[2]


# --- measuring helpers -----------------------------------------------------------------------


def _peak_rss() -> dict[str, int]:
    """Peak RSS of this process in KiB: getrusage (what the targets use) and /proc VmHWM."""
    hwm = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return {"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "vmhwm_kib": hwm}


def _emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def _run_child(args: list[str], *, label: str) -> dict:
    """Run this module in a fresh interpreter; return the JSON it reports."""
    cmd = [sys.executable, "-m", "spotify_assets_tests.benchmarks.warehouse", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    results = [line[len("RESULT ") :] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"{label}: the child process failed (exit {proc.returncode})")
    out = json.loads(results[-1])
    out["_stdout"] = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("RESULT "))
    return out


def _fmt_runs(values: list[float], unit: str = "s", digits: int = 2) -> str:
    runs = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"runs [{runs}] {unit}  min {min(values):.{digits}f}  median {statistics.median(values):.{digits}f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- the synthetic window --------------------------------------------------------------------
# Objects are built with the sample catalogue's JSON helpers (imported where used, so that the
# measuring children do not load them).

_MARKETS = (
    "AD AE AG AL AM AO AR AT AU AZ BA BB BD BE BF BG BH BI BJ BN BO BR BS BT BW BY BZ CA CD CG "
    "CH CI CL CM CO CR CV CW CY CZ DE DJ DK DM DO DZ EC EE EG ES ET FI FJ FM FR GA GB GD GE GH "
    "GM GN GQ GR GT GW GY HK HN HR HT HU ID IE IL IN IQ IS IT JM JO JP KE KG KH KI KM KN KR KW "
    "KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MG MH MK ML MN MO MR MT MU MV MW MX MY MZ "
    "NA NE NG NI NL NO NP NR NZ OM PA PE PG PH PK PL PR PS PT PW PY QA RO RS RW SA SB SC SE SG "
    "SI SK SL SM SN SR ST SV SZ TD TG TH TJ TL TN TO TR TT TV TW TZ UA UG US UY UZ VC VE VN VU "
    "WS XK ZA ZM ZW"
).split()
_WORDS = (
    "night summer love blue fire heart dream city river gold wild light shadow echo neon "
    "paper glass ocean velvet silver thunder midnight static honey ghost electric broken "
    "sweet lonely golden crystal"
).split()


def _b_id(kind: str, i: object, seed: int, *, base36: bool = False, length: int = 22) -> str:
    """A base62 (or lowercase base36) id from (seed, kind, i)."""
    import hashlib

    from spotify_assets.lib.samples.catalogue import _B36, _B62, _encode

    digest = hashlib.blake2b(f"{seed}:{kind}:{i}".encode(), digest_size=18).digest()
    return _encode(digest, _B36 if base36 else _B62, length)


def _user_id(u: int, seed: int) -> str:
    return _b_id("user", u, seed, base36=True, length=28)


def _title(rng, words: int) -> str:
    return " ".join(rng.choice(_WORDS).capitalize() for _ in range(words))


def generate(out_dir: Path, playlists: int, rows: int, tracks: int, albums: int, artists: int, seed: int) -> dict:
    """Write one JSON document per playlist into out_dir; return what was written."""
    import random

    import orjson

    from spotify_assets.lib.samples.catalogue import (
        _Artist,
        _artist_json,
        _cover_images,
        _local_json,
        _LocalFile,
        _urls,
        _User,
        _user_json,
    )

    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    frag = orjson.Fragment

    artist_dicts = [_artist_json(_Artist(_b_id("artist", i, seed), f"{_title(rng, 2)} {i}")) for i in range(artists)]

    album_dicts = []
    for j in range(albums):
        aid = _b_id("album", j, seed)
        year = rng.randint(1960, 2026)
        u = rng.random()
        if u < 0.85:
            release, precision = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "day"
        elif u < 0.9:
            release, precision = f"{year}-{rng.randint(1, 12):02d}", "month"
        else:
            release, precision = f"{year}", "year"
        album_dicts.append(
            {
                "album_type": rng.choice(("album", "album", "single", "compilation")),
                "artists": [artist_dicts[rng.randrange(artists)]],
                "available_markets": _MARKETS[: rng.randint(5, 40)],
                **_urls("album", aid),
                "images": _cover_images(f"{seed}:album{j}"),
                "name": _title(rng, rng.randint(1, 4)),
                "release_date": release,
                "release_date_precision": precision,
                "total_tracks": 0,  # set below
                "type": "album",
            }
        )

    # The row around an item, to size items so that rows average ROW_BYTES_TARGET.
    sample_row = {
        "added_at": "2025-03-01T07:05:00Z",
        "added_by": _user_json(_User(_user_id(0, seed))),
        "is_local": False,
        "primary_color": None,
        "video_thumbnail": {"url": None},
        "item": None,
    }
    wrapper = len(orjson.dumps(sample_row)) - len(b"null") + 1  # +1: the comma between rows

    # Tracks: contiguous runs on albums (about tracks/albums per album), pre-serialized.
    track_items: list[orjson.Fragment] = []
    per_album = max(1, tracks // max(1, albums))
    multi_artist = 0
    for i in range(tracks):
        album_index = min(albums - 1, i // per_album)
        album = album_dicts[album_index]
        number = i - album_index * per_album + 1
        album["total_tracks"] = max(album["total_tracks"], number)
        tid = _b_id("track", i, seed)
        credits = [album["artists"][0]]
        u = rng.random()
        extra = 2 if u < 0.02 else 1 if u < 0.10 else 0
        for _ in range(extra):
            credits.append(artist_dicts[rng.randrange(artists)])
        multi_artist += extra > 0
        item = {
            "album": album,
            "artists": credits,
            "available_markets": [],
            "disc_number": 1,
            "duration_ms": rng.randint(90_000, 420_000),
            "episode": False,
            "explicit": rng.random() < 0.12,
            "external_ids": {"isrc": f"QZ{rng.choice(('ABC', 'DEF', 'HIJ'))}{rng.randint(10, 26)}{rng.randint(0, 99999):05d}"},
            **_urls("track", tid),
            "is_local": False,
            "name": _title(rng, rng.randint(1, 5)),
            "popularity": rng.randint(0, 100),
            "preview_url": None,
            "track": True,
            "track_number": number,
            "type": "track",
        }
        base = len(orjson.dumps(item))
        target = ROW_BYTES_TARGET + rng.randint(-400, 400) - wrapper
        markets = max(0, min(len(_MARKETS), round((target - base) / 5)))
        item["available_markets"] = _MARKETS[:markets]
        track_items.append(frag(orjson.dumps(item)))

    episode_items = []
    for e in range(500):
        eid = _b_id("episode", e, seed)
        show = _b_id("show", e // 20, seed)
        # Episodes in track-compatible form: the show stands in for the album and the artist.
        show_ref = {**_urls("show", show), "name": "A Podcast", "type": "show"}
        episode = {
            "album": {
                "album_type": "show",
                "artists": [show_ref],
                "available_markets": _MARKETS[:80],
                **show_ref,
                "images": _cover_images(f"{seed}:show{e}"),
            },
            "artists": [show_ref],
            "available_markets": _MARKETS[:80],
            "disc_number": 0,
            "duration_ms": rng.randint(600_000, 7_200_000),
            "episode": True,
            "explicit": False,
            "external_ids": {"spotify": f"spotify:episode:{eid}"},
            **_urls("episode", eid),
            "is_local": False,
            "name": f"Episode {e}",
            "popularity": 0,
            "preview_url": None,
            "track": False,
            "track_number": 0,
            "type": "episode",
        }
        episode_items.append(frag(orjson.dumps(episode)))

    def local_item() -> orjson.Fragment:
        return frag(orjson.dumps(_local_json(_LocalFile("Me", "Home Recordings", _title(rng, 3), 180))))

    users = [frag(orjson.dumps(_user_json(_User(_user_id(u, seed))))) for u in range(200)]
    owners = [_user_json(_User(_user_id(1000 + u, seed), f"Curator {u}"), with_display_name=True) for u in range(50)]
    video_thumbnail = frag(b'{"url":null}')
    epoch_2015, epoch_2026 = 1_420_070_400, 1_795_000_000

    kinds = {"track": 0, "repeat": 0, "null": 0, "local": 0, "episode": 0}
    total_bytes = 0
    window_start = "2026-11-21T08:00:00Z"
    for p in range(playlists):
        pid = _b_id("playlist", p, seed)
        owner = owners[p % len(owners)]
        adders = [users[rng.randrange(len(users))] for _ in range(rng.choice((1, 1, 1, 3, 8)))]
        chosen: list[int] = []
        items = []
        for position in range(rows):
            u = rng.random()
            if u < 0.0005:
                item, kind = None, "null"
            elif u < 0.0010:
                item, kind = local_item(), "local"
            elif u < 0.0020:
                item, kind = episode_items[rng.randrange(len(episode_items))], "episode"
            elif u < 0.0120 and chosen:
                item, kind = track_items[rng.choice(chosen)], "repeat"
            else:
                # half uniform over the catalogue, half skewed towards popular tracks
                v = rng.random()
                index = int(tracks * v) if rng.random() < 0.5 else int(tracks * v**3)
                chosen.append(index)
                item, kind = track_items[index], "track"
            kinds[kind] += 1
            added = time.gmtime(rng.randrange(epoch_2015, epoch_2026))
            items.append(
                {
                    "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", added),
                    "added_by": adders[position % len(adders)],
                    "is_local": kind == "local",
                    "primary_color": None,
                    "video_thumbnail": video_thumbnail,
                    "item": item,
                }
            )
        doc = {
            "schema_version": 1,
            "playlist_id": pid,
            "status": "ok",
            "window": {"partition_key": "2026-11-21-08:00", "start": window_start, "end": "2026-11-21T16:00:00Z"},
            "playlist": {
                "collaborative": len(adders) > 1,
                "description": f"{_title(rng, 6)} — playlist {p}",
                "followers": {"href": None, "total": rng.randint(0, 2_000_000)},
                **_urls("playlist", pid),
                "images": _cover_images(f"{seed}:playlist{p}")[:1],
                "name": _title(rng, 3),
                "owner": owner,
                "primary_color": None,
                "public": True,
                "snapshot_id": _b_id("snapshot", p, seed, length=32),
                "type": "playlist",
            },
            "items": items,
            "extraction": {
                "source": "web_api",
                "total": rows,
                "rows_read": rows,
                "extracted_at": f"2026-11-21T08:00:{1 + p // 1000 % 59:02d}.{p % 1000:03d}Z",
                "error": None,
                "pages": -(-rows // 50),
                "requests": -(-rows // 50) + 1,
                "retries": 0,
            },
        }
        data = orjson.dumps(doc)
        total_bytes += len(data)
        (out_dir / f"{pid}.json").write_bytes(data)
    return {
        "files": playlists,
        "rows": playlists * rows,
        "bytes": total_bytes,
        "kinds": kinds,
        "multi_artist_tracks": multi_artist,
        "catalogue": {"tracks": tracks, "albums": albums, "artists": artists},
    }


def _key_start(partition_key: str):
    """The start of a snapshot_windows key ('2026-11-21-08:00'), without importing the defs."""
    from datetime import datetime, timezone

    return datetime.strptime(partition_key, "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)


def _fresh_database(path: Path) -> str:
    """A DuckDB path with no file, WAL or lock file left from an earlier run."""
    for p in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".lock")):
        p.unlink(missing_ok=True)
    return str(path)


def _files(data_dir: Path, limit: int | None = None) -> list[Path]:
    files = sorted(p for p in data_dir.glob("*.json") if not p.name.startswith("_"))
    return files[:limit] if limit else files


# --- children ------------------------------------------------------------------------------


def child_generate(a: argparse.Namespace) -> None:
    started = time.perf_counter()
    info = generate(Path(a.data), a.playlists, a.rows, a.tracks, a.albums, a.artists, a.seed)
    info["seconds"] = time.perf_counter() - started
    _emit(info)


def child_parse(a: argparse.Namespace) -> None:
    """Baseline: read each file and orjson.loads it, one at a time, discarding the result."""
    import orjson

    files = _files(Path(a.data))
    before = _peak_rss()
    read_s = parse_s = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    for path in files:
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            data = f.read()
        t1 = time.perf_counter()
        doc = orjson.loads(data)
        del doc, data
        parse_s += time.perf_counter() - t1
        read_s += t1 - t0
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    _emit({"wall": wall, "cpu": cpu, "read_s": read_s, "work_s": parse_s, "rss_before": before, "rss": _peak_rss()})


def child_normalize(a: argparse.Namespace) -> None:
    """Ours: read each file and Normalizer.add it, then finish()."""
    from spotify_assets.lib.tables.normalize import Normalizer  # only what the step needs: RSS baseline

    files = _files(Path(a.data))
    window_start = _key_start(a.partition_key)
    before = _peak_rss()
    read_s = add_s = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    normalizer = Normalizer(window_start)
    for path in files:
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            data = f.read()
        t1 = time.perf_counter()
        normalizer.add(data, playlist_id=path.stem)
        del data
        add_s += time.perf_counter() - t1
        read_s += t1 - t0
    t2 = time.perf_counter()
    window = normalizer.finish()
    finish_s = time.perf_counter() - t2
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rss = _peak_rss()
    frames_mb = {n: f.memory_usage(deep=True).sum() / 1e6 for n, f in window.frames.items()}
    if a.dump:
        import pickle

        with open(a.dump, "wb") as f:
            pickle.dump(window.frames, f, protocol=5)
    _emit(
        {
            "wall": wall,
            "cpu": cpu,
            "read_s": read_s,
            "work_s": add_s,
            "finish_s": finish_s,
            "rss_before": before,
            "rss": rss,
            "counts": window.row_counts(),
            "problems": [p["message"] for p in window.problems][:5],
            "frames_mb": frames_mb,
        }
    )


def child_profile(a: argparse.Namespace) -> None:
    import cProfile
    import io
    import pstats

    from spotify_assets.lib.tables.normalize import Normalizer

    files = _files(Path(a.data), a.limit)
    window_start = _key_start(a.partition_key)
    datas = [p.read_bytes() for p in files]
    normalizer = Normalizer(window_start)
    prof = cProfile.Profile()
    prof.enable()
    for data in datas:
        normalizer.add(data)
    normalizer.finish()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(14)
    stats.sort_stats("cumulative").print_stats("normalize.py|tables.py", 14)
    text = "\n".join(line for line in out.getvalue().splitlines() if line.strip())
    _emit({"profile": text, "files": len(files)})


def _load(database: str, partition_key: str, frames: dict, connection_config: str) -> dict[str, float]:
    """Write the window's six frames as `normalized_tables` does (all six in one transaction,
    `duckdb_replace_window` on a connection holding the file lock); seconds."""
    from spotify_assets_tests.support.windows import windows
    from spotify_assets.lib.warehouse.duckdb import DuckDBDatabase, duckdb_replace_window
    from spotify_assets.lib.window import Window

    snapshot_windows = windows()  # as the code location builds them

    tw = snapshot_windows.time_window_for_partition_key(partition_key)
    t0 = time.perf_counter()
    with DuckDBDatabase(database).connect(write=True, config=json.loads(connection_config)) as conn:
        duckdb_replace_window(conn, SCHEMA, frames, Window(tw.start, tw.end))
    return {"six tables, one transaction": time.perf_counter() - t0}


def _count(database: str, sql: str, params=None) -> int:
    import duckdb

    with duckdb.connect(database, read_only=True) as conn:
        return conn.execute(sql, params or []).fetchone()[0]


def child_load(a: argparse.Namespace) -> None:
    """Load the dumped frames: our window write vs DuckDB bulk inserts, each into a fresh file."""
    import pickle

    import duckdb

    from spotify_assets.lib.tables.schema import TABLES
    from spotify_assets.lib.warehouse.duckdb import DIALECT

    with open(a.frames, "rb") as f:
        frames = pickle.load(f)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)

    def fresh(name: str) -> str:
        return _fresh_database(work / name)

    results: dict[str, list] = {"io_manager": [], "duckdb_insert": [], "duckdb_ctas": [], "io_tables": []}
    for rep in range(a.repeat):
        # ours, as normalized_tables writes a window
        path = fresh(f"load_io_{rep}.duckdb")
        per_table = _load(path, a.partition_key, frames, a.connection_config)
        results["io_manager"].append(sum(per_table.values()))
        results["io_tables"].append(per_table)
        for name, frame in frames.items():
            n = _count(path, f"SELECT count(*) FROM {SCHEMA}.{name}")
            if n != len(frame):
                raise SystemExit(f"the window write loaded {n} rows into {name}, expected {len(frame)}")

        # DuckDB: INSERT INTO tables created from the same DDL
        path = fresh(f"load_insert_{rep}.duckdb")
        started = time.perf_counter()
        conn = duckdb.connect(path)
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        for name, frame in frames.items():
            conn.execute(DIALECT.create_table(TABLES[name], f"{SCHEMA}.{name}"))
            conn.register("frame_view", frame)
            conn.execute(f"INSERT INTO {SCHEMA}.{name} SELECT * FROM frame_view")
            conn.unregister("frame_view")
        conn.close()
        results["duckdb_insert"].append(time.perf_counter() - started)

        # DuckDB: CREATE TABLE AS SELECT
        path = fresh(f"load_ctas_{rep}.duckdb")
        started = time.perf_counter()
        conn = duckdb.connect(path)
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        for name, frame in frames.items():
            conn.register("frame_view", frame)
            conn.execute(f"CREATE TABLE {SCHEMA}.{name} AS SELECT * FROM frame_view")
            conn.unregister("frame_view")
        conn.close()
        results["duckdb_ctas"].append(time.perf_counter() - started)
        for name in ("io", "insert", "ctas"):
            fresh(f"load_{name}_{rep}.duckdb")
    results["rss"] = _peak_rss()
    _emit(results)


def child_history(a: argparse.Namespace) -> None:
    """Window 1 into an empty file vs window N+1 after N windows; then replace window N+1."""
    import pandas as pd

    from spotify_assets.lib.tables.normalize import Normalizer
    from spotify_assets_tests.support.windows import windows

    snapshot_windows = windows()  # as the code location builds them

    files = _files(Path(a.data), a.limit)
    keys = snapshot_windows.get_partition_keys()
    if len(keys) < a.windows + 1:
        raise SystemExit(f"snapshot_windows has {len(keys)} windows, need {a.windows + 1}")
    keys = keys[: a.windows + 1]
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)

    def fresh(name: str) -> str:
        return _fresh_database(work / name)

    def normalize(key: str):
        normalizer = Normalizer(snapshot_windows.time_window_for_partition_key(key).start)
        for path in files:
            with open(path, "rb") as f:
                normalizer.add(f.read(), playlist_id=path.stem)
        return normalizer.finish().frames

    def materialize(path: str, key: str) -> dict:
        # A fresh process per timed run, as Dagster runs each step: one that has just loaded
        # 90 windows normalizes ~30% slower (its heap, not the history, is the difference).
        # Nothing is left to write back either: the fill (1.4 GB at full size) and the trial's
        # copy otherwise flush on the kernel's schedule, on the same 2 cores.
        os.sync()
        return _run_child(
            ["--child", "materialize", "--data", a.data, "--limit", str(a.limit), "--work", path,
             "--partition-key", key, "--connection-config", a.connection_config],
            label=f"materialize {key}",
        )

    first: list[dict] = []
    for rep in range(a.repeat):
        path = fresh(f"history_first_{rep}.duckdb")
        first.append(materialize(path, keys[0]))
        if rep:
            fresh(f"history_first_{rep}.duckdb")
    base = str(work / "history_first_0.duckdb")
    frames = normalize(keys[0])  # untimed: the fill reuses window 1's rows
    sizes = {n: len(f) for n, f in frames.items()}

    # windows 2..N: window 1's frames under each window's start, written the same way
    # (one write and checkpoint per table and window, as the asset does)
    fill: list[float] = []
    started = time.perf_counter()
    for key in keys[1:-1]:
        start = pd.Timestamp(snapshot_windows.time_window_for_partition_key(key).start).tz_convert("UTC")
        shifted = {
            n: f.assign(window_start=pd.Series(start, index=f.index, dtype="datetime64[us, UTC]")) for n, f in frames.items()
        }
        fill.append(sum(_load(base, key, shifted, a.connection_config).values()))
    fill_s = time.perf_counter() - started
    stored = len(keys) - 1
    db_bytes = Path(base).stat().st_size

    # window N+1, each trial on a copy of the N-window file; the copy is flushed to disk
    # first, so a trial's checkpoint does not pay for writing back the copy
    last_key = keys[-1]
    later: list[dict] = []
    trial = base
    for rep in range(a.repeat):
        trial = fresh(f"history_trial_{rep}.duckdb")
        shutil.copyfile(base, trial)
        fd = os.open(trial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        later.append(materialize(trial, last_key))
        if rep < a.repeat - 1:
            fresh(f"history_trial_{rep}.duckdb")

    # re-materialize window N+1 (replace) on the last trial file
    replace: list[dict] = []
    for _ in range(a.repeat):
        replace.append(materialize(trial, last_key))
    window = snapshot_windows.time_window_for_partition_key(last_key)
    checks = {}
    for name, rows in replace[-1]["sizes"].items():
        in_window = _count(
            trial,
            f"SELECT count(*) FROM {SCHEMA}.{name} WHERE window_start >= ?::TIMESTAMPTZ AND window_start < ?::TIMESTAMPTZ",
            [window.start.isoformat(), window.end.isoformat()],
        )
        total_rows = _count(trial, f"SELECT count(*) FROM {SCHEMA}.{name}")
        windows = _count(trial, f"SELECT count(DISTINCT window_start) FROM {SCHEMA}.{name}")
        checks[name] = {"frame": rows, "in_window": in_window, "total": total_rows, "windows": windows,
                        "expected_total": rows * (stored + 1)}
    for name in ("history_first_0.duckdb", Path(trial).name):
        fresh(name)
    _emit(
        {
            "first": first,
            "later": later,
            "replace": replace,
            "fill_s": fill_s,
            "fill": fill,
            "stored": stored,
            "db_bytes": db_bytes,
            "checks": checks,
            "sizes": sizes,
            "first_key": keys[0],
            "last_key": last_key,
            "playlists": len(files),
            "rss": _peak_rss(),
        }
    )


# --- the driver ----------------------------------------------------------------------------


def child_materialize(a: argparse.Namespace) -> None:
    """Normalize one window's documents and write its six tables in one transaction, timed."""
    from spotify_assets_tests.support.windows import windows
    from spotify_assets.lib.tables.normalize import Normalizer

    snapshot_windows = windows()  # as the code location builds them

    files = _files(Path(a.data), a.limit)
    started = time.perf_counter()
    normalizer = Normalizer(snapshot_windows.time_window_for_partition_key(a.partition_key).start)
    for path in files:
        with open(path, "rb") as f:
            normalizer.add(f.read(), playlist_id=path.stem)
    frames = normalizer.finish().frames
    normalized = time.perf_counter() - started
    per_table = _load(a.work, a.partition_key, frames, a.connection_config)
    loaded = sum(per_table.values())
    _emit(
        {"total": normalized + loaded, "normalize": normalized, "load": loaded, "tables": per_table,
         "sizes": {n: len(f) for n, f in frames.items()}}
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--playlists", type=int, default=1000, help="playlists in the window (default 1000)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per playlist (default 1000)")
    parser.add_argument("--quick", action="store_true", help="100 playlists, 20 for history, 30 history windows")
    parser.add_argument("--tracks", type=int, default=None, help="catalogue tracks (default 0.3 x rows in the window)")
    parser.add_argument("--albums", type=int, default=None, help="catalogue albums (default tracks / 5)")
    parser.add_argument("--artists", type=int, default=None, help="catalogue artists (default tracks / 10)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each timing (default 2)")
    parser.add_argument("--history-playlists", type=int, default=50, help="playlists per history window (default 50)")
    parser.add_argument("--history-windows", type=int, default=90, help="windows stored before the timed one (default 90)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile normalizing the first N playlists")
    parser.add_argument("--skip-normalize", action="store_true", help="skip steps 2 and 3 (3 loads step 2's frames)")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--workdir", default=None, help="keep (and reuse) generated files here")
    parser.add_argument(
        "--connection-config", default="{}", metavar="JSON",
        help='DuckDB settings for the warehouse connections (as the IO manager\'s connection_config), e.g. \'{"max_vacuum_tasks": 100}\'',
    )
    # internal: the measuring children
    parser.add_argument("--child", choices=["generate", "parse", "normalize", "profile", "load", "history", "materialize"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--windows", type=int, default=90, help=argparse.SUPPRESS)
    parser.add_argument("--partition-key", default=None, help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    if a.quick:
        a.playlists = 100
        a.history_playlists = min(a.history_playlists, 20)
        a.history_windows = min(a.history_windows, 30)
    total = a.playlists * a.rows
    a.tracks = a.tracks or max(10, int(total * 0.3))
    a.albums = a.albums or max(2, a.tracks // 5)
    a.artists = a.artists or max(2, a.tracks // 10)
    return a


def _latest_key() -> str:
    from spotify_assets_tests.support.windows import windows

    return windows().get_last_partition_key()


def main(argv: list[str] | None = None) -> int:
    a = _parse_args(argv)
    children = {
        "generate": child_generate,
        "parse": child_parse,
        "normalize": child_normalize,
        "profile": child_profile,
        "load": child_load,
        "history": child_history,
        "materialize": child_materialize,
    }
    if a.child:
        children[a.child](a)
        return 0

    owned = a.workdir is None
    root = Path(a.workdir or tempfile.mkdtemp(prefix="warehouse-bench-"))
    data = root / "documents"
    try:
        return _drive(a, root, data)
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)


def _drive(a: argparse.Namespace, root: Path, data: Path) -> int:
    ok = True
    wall_started = time.perf_counter()
    # The driver imports nothing heavy (the partition key comes from a child), so its RSS,
    # which Linux carries into each child's ru_maxrss at exec, stays small.
    partition_key = subprocess.run(
        [sys.executable, "-c", "from spotify_assets_tests.benchmarks.warehouse import _latest_key; print(_latest_key())"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()

    # 1. documents
    params = {k: getattr(a, k) for k in ("playlists", "rows", "tracks", "albums", "artists", "seed")}
    params["row_bytes_target"] = ROW_BYTES_TARGET
    stamp = data / "_params.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        info = json.loads(stamp.read_text())["info"]
        note = f"reused from {data}"
    else:
        shutil.rmtree(data, ignore_errors=True)
        info = _run_child(
            ["--child", "generate", "--data", str(data), *(f"--{k}={v}" for k, v in params.items() if k != "row_bytes_target")],
            label="generate",
        )
        info.pop("_stdout", None)
        stamp.write_text(json.dumps({"params": params, "info": info}))
        note = f"generated in {info['seconds']:.1f} s"
    rows = info["rows"]
    print(f"== warehouse benchmark: window {partition_key}, {a.playlists} playlists x {a.rows} rows, seed {a.seed}, repeat {a.repeat}")
    print(f"machine               {os.cpu_count()} cpus; python {sys.version.split()[0]}; DuckDB connection config {a.connection_config}")
    print()
    print("1. raw documents")
    print(f"   files               {info['files']} ({note})")
    print(f"   rows                {rows:,}: {info['kinds']}")
    cat = info["catalogue"]
    print(f"   catalogue           {cat['tracks']:,} tracks, {cat['albums']:,} albums, {cat['artists']:,} artists; {info['multi_artist_tracks']:,} multi-artist tracks")
    print(f"   bytes               {info['bytes']:,} ({info['bytes'] / GB:.2f} GiB), {info['bytes'] / rows:,.0f} bytes/row")
    print()

    # 2. normalize vs parse, each run in a fresh process
    frames_path = root / "frames.pkl"
    if not a.skip_normalize:
        runs: dict[str, list[dict]] = {"parse": [], "normalize": []}
        for rep in range(a.repeat):
            runs["parse"].append(_run_child(["--child", "parse", "--data", str(data)], label="orjson parse"))
            extra = ["--dump", str(frames_path)] if rep == a.repeat - 1 and not a.skip_load else []
            runs["normalize"].append(
                _run_child(["--child", "normalize", "--data", str(data), "--partition-key", partition_key, *extra], label="normalize")
            )
        parse_w = [r["wall"] for r in runs["parse"]]
        norm_w = [r["wall"] for r in runs["normalize"]]
        ratio = min(norm_w) / min(parse_w)
        norm_rss = max(r["rss"]["ru_maxrss_kib"] for r in runs["normalize"]) * 1024
        parse_rss = max(r["rss"]["ru_maxrss_kib"] for r in runs["parse"]) * 1024
        last = runs["normalize"][-1]
        print("2. normalize vs parse (each run a fresh process; read + work, file reads counted alike)")
        print(f"   orjson.loads        {_fmt_runs(parse_w)}   ({rows / min(parse_w) / 1e6:.2f} M rows/s)")
        print(f"     of which          read {min(r['read_s'] for r in runs['parse']):.2f} s, loads {min(r['work_s'] for r in runs['parse']):.2f} s (min)")
        print(f"   Normalizer          {_fmt_runs(norm_w)}   ({rows / min(norm_w) / 1e6:.2f} M rows/s)")
        print(
            f"     of which          read {min(r['read_s'] for r in runs['normalize']):.2f} s, add {min(r['work_s'] for r in runs['normalize']):.2f} s, "
            f"finish {min(r['finish_s'] for r in runs['normalize']):.2f} s (min)"
        )
        parse_c = [r["cpu"] for r in runs["parse"]]
        norm_c = [r["cpu"] for r in runs["normalize"]]
        print(f"   ratio ours/orjson   {ratio:.2f} (min/min; median/median {statistics.median(norm_w) / statistics.median(parse_w):.2f}) target <= 1.0: {_verdict(ratio <= 1.0)}")
        print(f"   CPU seconds         orjson {_fmt_runs(parse_c, 's')}; Normalizer {_fmt_runs(norm_c, 's')}")
        print(f"   CPU ratio           {min(norm_c) / min(parse_c):.2f} (min/min; less sensitive than wall time to other work on the machine)")
        for label, rs in (("orjson", runs["parse"]), ("Normalizer", runs["normalize"])):
            peak = [r["rss"]["ru_maxrss_kib"] * 1024 / GB for r in rs]
            hwm = [r["rss"]["vmhwm_kib"] * 1024 / GB for r in rs]
            start = [r["rss_before"]["vmhwm_kib"] * 1024 / GB for r in rs]
            print(f"   peak RSS {label:<11}{', '.join(f'{p:.2f}' for p in peak)} GB ru_maxrss (VmHWM {', '.join(f'{h:.2f}' for h in hwm)}; after imports {max(start):.2f})")
        print(f"   peak RSS target     Normalizer <= 2 GB: {_verdict(norm_rss <= 2 * GB)} ({norm_rss / GB:.2f} GB; orjson {parse_rss / GB:.2f} GB)")
        counts = last["counts"]
        print("   table rows          " + ", ".join(f"{n} {c:,}" for n, c in counts.items()))
        print("   frame memory        " + ", ".join(f"{n} {mb:,.0f} MB" for n, mb in last["frames_mb"].items()))
        if last["problems"]:
            print(f"   problems            {last['problems']}")
        expected_tracks = info["kinds"]["track"] + info["kinds"]["repeat"]
        if counts["playlist_tracks"] != expected_tracks or counts["playlists"] != a.playlists:
            print(f"   ERROR: expected {expected_tracks} playlist_tracks rows and {a.playlists} playlists")
            ok = False
        print()

    if a.profile:
        prof = _run_child(
            ["--child", "profile", "--data", str(data), "--limit", str(a.profile), "--partition-key", partition_key], label="profile"
        )
        print(f"   cProfile of normalizing {prof['files']} playlists (profiler overhead inflates Python-level calls)")
        for line in prof["profile"].splitlines():
            print("   | " + line)
        print()

    # 3. load (the frames of step 2)
    if not a.skip_load and not a.skip_normalize:
        load = _run_child(
            ["--child", "load", "--frames", str(frames_path), "--work", str(root / "load"), "--repeat", str(a.repeat),
             "--partition-key", partition_key, "--connection-config", a.connection_config],
            label="load",
        )
        frames_path.unlink(missing_ok=True)
        io_w, ins_w, ctas_w = load["io_manager"], load["duckdb_insert"], load["duckdb_ctas"]
        best_duck = min(min(ins_w), min(ctas_w))
        ratio_load = min(io_w) / best_duck
        print(f"3. load the window's six tables ({sum(counts.values()):,} rows) into a fresh DuckDB file")
        print(f"   one transaction     {_fmt_runs(io_w)}")
        print(f"   DuckDB INSERT       {_fmt_runs(ins_w)}")
        print(f"   DuckDB CTAS         {_fmt_runs(ctas_w)}")
        print(
            f"   ratio               {min(io_w) / min(ins_w):.2f} vs INSERT, {min(io_w) / min(ctas_w):.2f} vs CTAS (min/min); "
            f"target <= 2.0 vs the faster: {_verdict(ratio_load <= 2.0)}"
        )
        print(f"   peak RSS (loader)   {load['rss']['vmhwm_kib'] * 1024 / GB:.2f} GB (frames unpickled + DuckDB)")
        print()

    # 4. history
    if not a.skip_history:
        hist = _run_child(
            ["--child", "history", "--data", str(data), "--limit", str(a.history_playlists), "--windows", str(a.history_windows),
             "--work", str(root / "history"), "--repeat", str(a.repeat), "--connection-config", a.connection_config],
            label="history",
        )
        first_t = [t["total"] for t in hist["first"]]
        later_t = [t["total"] for t in hist["later"]]
        repl_t = [t["total"] for t in hist["replace"]]
        window_rows = hist["sizes"]["playlist_tracks"]
        ratio_h = min(later_t) / min(first_t)
        n = hist["stored"] + 1

        def parts(runs: list[dict]) -> str:
            best = min(runs, key=lambda t: t["total"])
            tables = ", ".join(f"{name} {s:.2f}" for name, s in best["tables"].items())
            return f"     fastest run       normalize {best['normalize']:.2f} s + load {best['load']:.2f} s ({tables})"

        print(
            f"4. history: windows of {hist['playlists']} playlists x {a.rows} rows ({window_rows:,} playlist_tracks rows, "
            f"{sum(hist['sizes'].values()):,} rows in six tables); normalize + the six tables in one transaction"
        )
        print(f"   window 1 ({hist['first_key']}), empty file: {_fmt_runs(first_t)}")
        print(parts(hist["first"]))
        fill = hist["fill"]
        k = max(1, min(10, len(fill) // 3))
        print(
            f"   windows 2..{n - 1} (load only, frames reused): {hist['fill_s']:.0f} s; load per window: first {k} median "
            f"{statistics.median(fill[:k]):.2f} s, last {k} median {statistics.median(fill[-k:]):.2f} s, min {min(fill):.2f}, max {max(fill):.2f}"
        )
        print(
            f"     growth            last {k} / first {k} median load {statistics.median(fill[-k:]) / statistics.median(fill[:k]):.2f}x "
            f"(1.00: no growth with history)"
        )
        print(f"     file              {hist['db_bytes'] / 1e6:,.0f} MB with {n - 1} windows")
        print(f"   window {n} ({hist['last_key']}), {n - 1} stored: {_fmt_runs(later_t)}")
        print(parts(hist["later"]))
        print(f"   ratio               {ratio_h:.2f} (min/min; median/median {statistics.median(later_t) / statistics.median(first_t):.2f}) target <= 1.5: {_verdict(ratio_h <= 1.5)}")
        print(f"   re-materialize {n} (replace): {_fmt_runs(repl_t)}")
        print(parts(hist["replace"]))
        exact = True
        for name, c in hist["checks"].items():
            good = c["in_window"] == c["frame"] and c["total"] == c["expected_total"] and c["windows"] == hist["stored"] + 1
            exact &= good
            print(
                f"     {name:<17} window {hist['stored'] + 1}: {c['in_window']:,} rows (frame {c['frame']:,}); "
                f"table {c['total']:,} rows in {c['windows']} windows (expected {c['expected_total']:,}) {'ok' if good else 'WRONG'}"
            )
        if not exact:
            ok = False
            print("   ERROR: row counts after the replace are not exact")
        print()
    print(f"total benchmark wall time {time.perf_counter() - wall_started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
