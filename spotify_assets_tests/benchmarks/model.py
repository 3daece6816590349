"""Benchmark: train the song popularity model on 100,000 songs.

    .venv/bin/python -m spotify_assets_tests.benchmarks.model            # 100,000 songs
    .venv/bin/python -m spotify_assets_tests.benchmarks.model --quick    # 20,000 songs
    .venv/bin/python -m spotify_assets_tests.benchmarks.model --trees 60 --depth 10 --leaf 10

Times, separately, what the `popularity_model` asset does (spotify_assets/lib/model/popularity.py):
`evaluate` (5 artist-grouped folds of the two baselines, ridge and the forest), the final
`train` fit, `PopularityModel.predict` on every row, and `pickle.dumps` (its size against
`TrainingParams.max_model_mb`, in MB of 1e6 bytes as the asset counts). Prints the held-out
table, the top feature importances, wall and CPU seconds and peak RSS. It asserts nothing.

The work runs in one fresh child process, so its peak RSS (getrusage ru_maxrss, cross-checked
with /proc VmHWM) is the benchmark's alone: the driver imports only the standard library, and
Linux carries the parent's RSS into a child's ru_maxrss at exec. The forest's n_jobs=-1 uses
threads, so all training memory is the child's.

The features frame is synthetic, deterministic in `--seed` (numpy `default_rng(seed)`, one
PCG64 stream drawn in a fixed order), shaped like `popularity_features` (every column of
`POPULARITY_FEATURES`, through `.conform`). Artists' catalogue sizes are Zipf(1.8), capped at
400 songs, drawn until the rows are covered (about 12k artists for 100k songs, half of them
with one song). The target follows the sample catalogue's popularity (sample_catalogue.py
`_base_popularity`/`_popularity`): 18 + 9 fame (ln(1 + catalogue size)) + 26 exp(-age/2 years)
+ album-type bonus + 5 if explicit - 4 |minutes - 3.5| + per-song noise N(0, 8.5) + a slow
wave + N(0, 1.2), rounded and clipped to 0..100. 85% of songs have history: their previous
popularity is the same song at an earlier phase of its wave; playlist counts lean on popularity.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODULE = "spotify_assets_tests.benchmarks.model"
MB = 1e6  # as the asset's size bound counts


def make_features(rows: int, seed: int) -> Any:
    """A deterministic `popularity_features` frame of `rows` songs, every one with a target."""
    import numpy as np
    import pandas as pd

    from spotify_assets.lib.tables.schema import POPULARITY_FEATURES

    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < rows:  # artists' catalogue sizes, skewed, until every song has an artist
        sizes.extend(np.minimum(rng.zipf(1.8, size=4096), 400).tolist())
    size_arr = np.array(sizes)
    size_arr = size_arr[: int(np.searchsorted(np.cumsum(size_arr), rows)) + 1]
    size_arr[-1] -= int(size_arr.sum()) - rows
    artist = np.repeat(np.arange(len(size_arr)), size_arr)
    catalogue = size_arr[artist]
    fame = np.log1p(catalogue)

    album_type = rng.choice(np.array(["album", "single", "compilation"]), size=rows, p=[0.6, 0.3, 0.1])
    total_tracks = np.where(
        album_type == "single", rng.integers(1, 4, rows),
        np.where(album_type == "album", rng.integers(6, 21, rows), rng.integers(12, 41, rows)),
    )
    track_number = (rng.random(rows) * total_tracks).astype(int) + 1
    disc_number = np.where((album_type == "compilation") & (rng.random(rows) < 0.3), 2, 1)
    precision = rng.choice(np.array(["day", "month", "year"]), size=rows, p=[0.85, 0.05, 0.10])
    recent = rng.random(rows) < 0.3
    age_days = np.where(recent, rng.exponential(200.0, rows), rng.exponential(9 * 365.25, rows))
    age_days = np.minimum(age_days, 70 * 365.25).round(1)
    age_days = np.where(precision == "year", np.maximum(age_days, 182.5), age_days)
    explicit = rng.random(rows) < 0.15
    duration_ms = np.clip(rng.lognormal(np.log(210_000), 0.3, rows), 30_000, 900_000).astype(np.int64)
    artist_count = rng.choice(np.array([1, 2, 3, 4]), size=rows, p=[0.8, 0.14, 0.04, 0.02])

    bonus = np.select([album_type == "single", album_type == "compilation"], [4.0, -7.0], 0.0)
    base = (
        18.0 + 9.0 * fame + 26.0 * np.exp(-age_days / 365.25 / 2.0) + bonus + 5.0 * explicit
        - 4.0 * np.abs(duration_ms / 60_000 - 3.5) + rng.normal(0, 8.5, rows)
    )
    amplitude, phase, step = 1.5 + 3.0 * rng.random(rows), rng.uniform(0, 2 * np.pi, rows), rng.uniform(0.1, 1.0, rows)
    now = base + amplitude * np.sin(phase) + rng.normal(0, 1.2, rows)
    before = base + amplitude * np.sin(phase - step) + rng.normal(0, 1.2, rows)
    popularity = np.clip(now.round(), 0, 100).astype(int)
    has_history = rng.random(rows) < 0.85
    previous = np.where(has_history, np.clip(before.round(), 0, 100), np.nan)
    pop_windows = np.where(has_history, rng.integers(1, 91, rows), 0)
    listed_before = pop_windows + rng.integers(0, 4, rows) * (rng.random(rows) < 0.2)

    playlist_count = 1 + rng.poisson(0.3 + 4.0 / (1 + np.exp(-(popularity - 60) / 8)))
    appearances = playlist_count + rng.poisson(0.05 * playlist_count)
    days_added = np.minimum(rng.exponential(250.0, rows), age_days).astype(float).round()
    days_added[rng.random(rows) < 0.02] = np.nan

    window = pd.Timestamp("2026-03-01T08:00:00Z") - pd.to_timedelta(
        8 * np.where(rng.random(rows) < 0.8, 0, rng.integers(1, 90, rows)), unit="h"
    )
    sums = np.bincount(artist, weights=popularity)[artist]
    other_mean = np.where(catalogue > 1, (sums - popularity) / np.maximum(catalogue - 1, 1), np.nan)
    frame = pd.DataFrame(
        {
            "song_id": [f"bench{seed}s{i:07d}" for i in range(rows)],
            "window_start": window,
            "name": [f"Song {i}" for i in range(rows)],
            "artist_id": [f"bench{seed}a{a:06d}" for a in artist],
            "popularity": popularity,
            "duration_ms": duration_ms,
            "explicit": explicit,
            "track_number": track_number,
            "disc_number": disc_number,
            "artist_count": artist_count,
            "album_type": album_type,
            "album_total_tracks": total_tracks,
            "release_date_precision": precision,
            "release_age_days": age_days,
            "playlist_appearances": appearances,
            "playlist_count": playlist_count,
            "mean_position": (rng.random(rows) * rng.integers(20, 300, rows)).round(2),
            "days_since_added": pd.array(days_added, dtype="Float64").astype("Int32"),
            "previous_popularity": pd.array(previous, dtype="Float64").astype("Int32"),
            "popularity_windows_before": pop_windows,
            "windows_listed_before": listed_before,
            "artist_other_songs": catalogue - 1,
            "artist_other_mean_popularity": other_mean,
        }
    )
    return POPULARITY_FEATURES.conform(frame)


def _rss_kib() -> dict[str, int]:
    status = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            status[key] = int(value.split()[0])
    return {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, **status}


def child(a: argparse.Namespace) -> None:
    """Generate, then time each step; print one RESULT line of JSON."""
    import pickle

    from spotify_assets.lib.model.popularity import TrainingParams, evaluate, train, why_not_trainable

    steps: dict[str, dict[str, float]] = {}

    def timed(name: str, fn: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        steps[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "hwm_kib": _rss_kib()["VmHWM"]}
        return out

    rss_start = _rss_kib()
    frame = timed("generate", lambda: make_features(a.rows, a.seed))
    chosen = {"n_estimators": a.trees, "max_depth": a.depth, "min_samples_leaf": a.leaf}
    # the asset's defaults unless a flag says otherwise (--depth 0: unbounded)
    params = TrainingParams(**{k: (v or None if k == "max_depth" else v) for k, v in chosen.items() if v is not None})
    reason = why_not_trainable(frame, params)
    if reason:
        raise SystemExit(reason)
    rss_frame = _rss_kib()
    evaluation = timed("evaluate", lambda: evaluate(frame, params))
    model = timed("train", lambda: train(frame, params, evaluation))
    predicted = timed("predict", lambda: model.predict(frame))
    blob = timed("pickle", lambda: pickle.dumps(model, pickle.HIGHEST_PROTOCOL))
    trees = model.pipeline.named_steps["model"].estimators_
    sizes = frame.groupby("artist_id").size()
    print("RESULT " + json.dumps({
        "rows": len(frame), "artists": int(len(sizes)), "single_song_artists": int((sizes == 1).sum()),
        "largest_catalogue": int(sizes.max()), "frame_mb": frame.memory_usage(deep=True).sum() / MB,
        "nulls": {c: float(frame[c].isna().mean()) for c in ("previous_popularity", "days_since_added", "artist_other_mean_popularity")},
        "popularity": [float(frame["popularity"].mean()), float(frame["popularity"].std())],
        "steps": steps, "rss_start": rss_start, "rss_frame": rss_frame, "rss_end": _rss_kib(),
        "pickle_mb": len(blob) / MB, "max_model_mb": params.max_model_mb,
        "nodes": [int(sum(t.tree_.node_count for t in trees)), int(max(t.tree_.max_depth for t in trees))],
        "in_sample_mae": float(abs(predicted - frame["popularity"].to_numpy(dtype=float)).mean()),
        "table": evaluation.table.to_dict("records"), "folds": evaluation.folds,
        "importances": model.importances.head(5).to_dict(),
        "params": {"trees": params.n_estimators, "depth": params.max_depth, "leaf": params.min_samples_leaf},
    }), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 songs instead of 100,000")
    parser.add_argument("--rows", type=int, default=None, help="songs (overrides --quick)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trees", type=int, default=None, help="n_estimators (default: TrainingParams')")
    parser.add_argument("--depth", type=int, default=None, help="max_depth; 0 for unbounded (default: TrainingParams')")
    parser.add_argument("--leaf", type=int, default=None, help="min_samples_leaf (default: TrainingParams')")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    a.rows = a.rows or (20_000 if a.quick else 100_000)
    if a.child:
        child(a)
        return 0

    started = time.perf_counter()
    args = ["--child", "--rows", str(a.rows), "--seed", str(a.seed)]
    args += [f"--{name}={value}" for name, value in (("trees", a.trees), ("depth", a.depth), ("leaf", a.leaf)) if value is not None]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", MODULE, *args], cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line[len("RESULT "):] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"the benchmark process failed (exit {proc.returncode})")
    r = json.loads(lines[-1])
    s, p = r["steps"], r["params"]
    gib = lambda kib: f"{kib / 1024 / 1024:.2f} GiB"  # noqa: E731
    print(f"== popularity model benchmark: {r['rows']:,} songs, seed {a.seed}; RandomForest n_estimators={p['trees']}, "
          f"max_depth={p['depth']}, min_samples_leaf={p['leaf']}, {r['folds']} artist-grouped folds")
    print(f"machine               {os.cpu_count()} cpus (the forest uses n_jobs=-1: all of them); load average {os.getloadavg()[0]:.2f} at the end "
          f"(other work shares the cores when it is above 0); python {sys.version.split()[0]}")
    print(f"features frame        {r['artists']:,} artists ({r['single_song_artists']:,} with one song, largest {r['largest_catalogue']}), "
          f"{r['frame_mb']:.0f} MB in memory; popularity mean {r['popularity'][0]:.1f} sd {r['popularity'][1]:.1f}")
    print("  null shares         " + ", ".join(f"{k} {v:.1%}" for k, v in r["nulls"].items()))
    print(f"  generated in        {s['generate']['wall']:.1f} s (not part of the model's cost)")
    print("timings (one fresh process; wall s / CPU s, CPU > wall means both cores worked)")
    labels = {"evaluate": f"evaluate ({r['folds']} folds x 4 models)", "train": "train (final forest fit)",
              "predict": f"predict ({r['rows']:,} rows)", "pickle": "pickle.dumps(model)"}
    for name, label in labels.items():
        print(f"  {label:<30}{s[name]['wall']:8.2f} s wall {s[name]['cpu']:8.2f} s CPU")
    total = sum(s[n]["wall"] for n in ("evaluate", "train"))
    print(f"  {'evaluate + train (the asset)':<30}{total:8.2f} s wall")
    fits = r["pickle_mb"] <= r["max_model_mb"]
    print(f"stored model          {r['pickle_mb']:.1f} MB pickled; {r['nodes'][0]:,} tree nodes, deepest tree {r['nodes'][1]}; "
          f"bound max_model_mb {r['max_model_mb']:g} MB: {'within' if fits else 'OVER (the asset would not store it)'}")
    print(f"peak RSS              {gib(r['rss_end']['ru_maxrss'])} ru_maxrss (VmHWM {gib(r['rss_end']['VmHWM'])}); "
          f"after imports {gib(r['rss_start']['VmHWM'])}, with the frame {gib(r['rss_frame']['VmHWM'])}; "
          "high-water after " + ", ".join(f"{n} {gib(s[n]['hwm_kib'])}" for n in labels))
    print(f"held-out ({r['folds']} folds grouped by artist; lower MAE/RMSE is better)")
    print(f"  {'model':<16}{'MAE':>8}{'RMSE':>8}{'R²':>8}{'MAE sd':>8}")
    for row in r["table"]:
        print(f"  {row['model']:<16}{row['mae']:8.2f}{row['rmse']:8.2f}{row['r2']:8.3f}{row['mae_fold_sd']:8.2f}")
    table = {row["model"]: row for row in r["table"]}
    forest, mean = table["random_forest"]["mae"], table["global_mean"]["mae"]
    print(f"  forest vs global mean: MAE {forest:.2f} vs {mean:.2f} ({'beats' if forest < mean else 'does NOT beat'} it, "
          f"{1 - forest / mean:.0%} lower); in-sample MAE of the stored model {r['in_sample_mae']:.2f}")
    print("top 5 feature importances (impurity-based, one-hot and missing indicators summed per feature)")
    for feature, weight in r["importances"].items():
        print(f"  {feature:<30}{weight:.3f}")
    print(f"total benchmark wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
