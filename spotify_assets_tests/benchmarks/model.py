"""Benchmark: the popularity forecast on 100,000 songs over 30 windows of 8 hours.

    .venv/bin/python -m spotify_assets_tests.benchmarks.model            # 100,000 songs, 30 windows
    .venv/bin/python -m spotify_assets_tests.benchmarks.model --quick    # 20,000 songs, 30 windows
    .venv/bin/python -m spotify_assets_tests.benchmarks.model --songs 50000 --windows 45 --horizon 3 \\
        --trees 60 --depth 10 --leaf 10 --max-training-pairs 100000

Times, separately (wall and CPU seconds), what the `popularity_model` asset does
(spotify_assets/lib/model/popularity.py, whose docstring explains the forecast):
`forecast_pairs` (each song window paired with the same song's popularity `horizon` windows
later), `evaluate` (the folds split by time and artist; on each, the three baselines and the
three candidates -- ridge, the bounded forest, histogram gradient boosting -- each fit on at
most `max_training_pairs`), the final `train` (the champion refit on at most
`max_training_pairs`, its permutation importances, and the version fingerprint; `train`
rebuilds the pairs twice on its own, so they are in its time), `PopularityModel.forecast` of
the newest window, and `pickle.dumps` (its size against `TrainingParams.max_model_mb`, in MB of
1e6 bytes as the asset counts). `time_artist_folds` is timed on its own as well (evaluate calls
it again), to show each fold's windows and sizes. Prints the data's size (song windows, songs,
artists, pairs, windows), the full held-out table (MAE, RMSE, R², MAE on songs with history and
on songs new in their window, with the held-out pairs in each), the champion and the gate
(beats persistence and the global mean), the top permutation importances, and the peak RSS.
It asserts nothing.

The work runs in one fresh child process, so its peak RSS (getrusage ru_maxrss, cross-checked
with /proc VmHWM) is the benchmark's alone: the driver imports only the standard library, and
Linux carries the parent's RSS into a child's ru_maxrss at exec. The forest's n_jobs=-1 and
gradient boosting's OpenMP use threads, so all training memory is the child's.

The features frame is `spotify_assets_tests.support.panel.make_panel(songs, windows, seed)`
(deterministic in `--seed`; its defaults: noise 0.6, nothing planted, 30% of songs new in a
later window): artists with Zipf(1.8) catalogues, each song listed for a run of consecutive
windows, its popularity a level leaning on the artist's fame plus a release bump that peaks and
decays plus a slow drift plus noise. Building it is timed and reported, but it is not part of
the model's cost.
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
TOP_IMPORTANCES = 10


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

    import numpy as np

    from spotify_assets.lib.model import popularity as ml
    from spotify_assets_tests.support.panel import make_panel

    steps: dict[str, dict[str, float]] = {}

    def timed(name: str, fn: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        steps[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "hwm_kib": _rss_kib()["VmHWM"]}
        return out

    rss_start = _rss_kib()
    features = timed("generate", lambda: make_panel(a.songs, a.windows, a.seed))
    rss_frame = _rss_kib()
    chosen = {
        "horizon_windows": a.horizon, "n_estimators": a.trees, "max_depth": a.depth,
        "min_samples_leaf": a.leaf, "max_training_pairs": a.max_training_pairs,
    }
    # the asset's defaults unless a flag says otherwise (--depth 0: unbounded)
    params = ml.TrainingParams(**{k: (v or None if k == "max_depth" else v) for k, v in chosen.items() if v is not None})
    h = params.horizon_windows

    pairs = timed("forecast_pairs", lambda: ml.forecast_pairs(features, h))
    folds = timed("folds", lambda: ml.time_artist_folds(pairs, h, params.cv_folds, params.random_state))
    idx = ml.window_index(pairs["window_start"])
    new = pairs["windows_listed_before"].astype("Float64").fillna(0).to_numpy() == 0
    fold_info = [
        {
            "train": int(len(train)), "test": int(len(test)), "test_new": int(new[test].sum()),
            "train_windows": [int(idx[train].min()), int(idx[train].max())],
            "test_windows": [int(idx[test].min()), int(idx[test].max())],
            "test_artists": int(pairs[ml.GROUP].iloc[test].nunique()),
        }
        for train, test in folds
    ]
    change = (pairs[ml.TARGET].astype("float64") - pairs[ml.CURRENT].astype("float64")).to_numpy()
    counts = {
        "rows": int(len(features)), "songs": int(features["song_id"].nunique()),
        "artists": int(features["artist_id"].nunique()), "windows": int(features["window_start"].nunique()),
        "new_rows": int((features["windows_listed_before"].astype("Float64").fillna(0) == 0).sum()),
        "pairs": int(len(pairs)), "pair_windows": int(pairs["window_start"].nunique()),
        "pairs_new": int(new.sum()),
        "features_mb": float(features.memory_usage(deep=True).sum() / MB),
        "pairs_mb": float(pairs.memory_usage(deep=True).sum() / MB),
        "largest_catalogue": int(features.groupby("artist_id")["song_id"].nunique().max()),
        "popularity": [float(features["popularity"].astype("float64").mean()), float(features["popularity"].astype("float64").std())],
        "change": [float(np.abs(change).mean()), float(np.mean(change == 0))],  # persistence's MAE over every pair
    }
    del pairs, idx, new, change  # the asset does not keep them; evaluate and train build their own

    fold_log: list[dict[str, Any]] = []
    last = [time.perf_counter()]

    def log(message: str) -> None:
        now = time.perf_counter()
        fold_log.append({"message": message, "wall": now - last[0]})
        last[0] = now

    def run_evaluate() -> Any:
        last[0] = time.perf_counter()
        return ml.evaluate(features, params, log=log)

    evaluation = timed("evaluate", run_evaluate)
    model = timed("train", lambda: ml.train(features, params, evaluation))
    forecast = timed("forecast", lambda: model.forecast(features))
    blob = timed("pickle", lambda: pickle.dumps(model, pickle.HIGHEST_PROTOCOL))
    estimator = model.pipeline.named_steps["model"]
    if hasattr(estimator, "estimators_"):
        trees = estimator.estimators_
        shape = f"{sum(t.tree_.node_count for t in trees):,} tree nodes, deepest tree {max(t.tree_.max_depth for t in trees)}"
    elif hasattr(estimator, "n_iter_"):
        shape = f"{estimator.n_iter_} boosting iterations"
    else:
        shape = f"{type(estimator).__name__}"
    table = evaluation.table.to_dict("records")
    print("RESULT " + json.dumps({
        **counts,
        "steps": steps, "rss_start": rss_start, "rss_frame": rss_frame, "rss_end": _rss_kib(),
        "pickle_mb": len(blob) / MB, "max_model_mb": params.max_model_mb, "shape": shape,
        "table": table, "folds": evaluation.folds, "fold_info": fold_info, "fold_log": fold_log,
        "evaluation": {k: getattr(evaluation, k) for k in ("pairs", "held_out", "held_out_history", "held_out_new", "windows", "artists")},
        "champion": evaluation.champion, "kind": model.kind, "beats_persistence": evaluation.beats("persistence"),
        "beats_global_mean": evaluation.beats("global_mean"), "beats_baselines": evaluation.beats_baselines,
        "trained_pairs": model.trained_pairs, "trained_songs": model.trained_songs, "trained_artists": model.trained_artists,
        "importances": model.importances.head(TOP_IMPORTANCES).to_dict(),
        "forecast": {
            "songs": int(len(forecast)), "new": int(forecast["new_song"].sum()),
            "window": str(forecast["window_start"].max()) if len(forecast) else None,
            "mean_change": float(forecast["expected_change"].mean()) if len(forecast) else float("nan"),
            "top": forecast.head(3)[["song_id", "popularity", "predicted_popularity", "expected_change", "new_song"]].to_dict("records"),
        },
        "params": {
            "horizon": h, "trees": params.n_estimators, "depth": params.max_depth, "leaf": params.min_samples_leaf,
            "boosting": params.boosting_iterations, "cv_folds": params.cv_folds, "max_pairs": params.max_training_pairs,
        },
    }, default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 songs instead of 100,000")
    parser.add_argument("--songs", type=int, default=None, help="songs (overrides --quick; default 100,000)")
    parser.add_argument("--windows", type=int, default=30, help="8-hour windows (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=None, help="horizon_windows (default: TrainingParams')")
    parser.add_argument("--trees", type=int, default=None, help="n_estimators (default: TrainingParams')")
    parser.add_argument("--depth", type=int, default=None, help="max_depth; 0 for unbounded (default: TrainingParams')")
    parser.add_argument("--leaf", type=int, default=None, help="min_samples_leaf (default: TrainingParams')")
    parser.add_argument("--max-training-pairs", type=int, default=None, help="max_training_pairs (default: TrainingParams')")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    a.songs = a.songs or (20_000 if a.quick else 100_000)
    if a.child:
        child(a)
        return 0

    started = time.perf_counter()
    args = ["--child", "--songs", str(a.songs), "--windows", str(a.windows), "--seed", str(a.seed)]
    optional = (("horizon", a.horizon), ("trees", a.trees), ("depth", a.depth), ("leaf", a.leaf), ("max-training-pairs", a.max_training_pairs))
    args += [f"--{name}={value}" for name, value in optional if value is not None]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", MODULE, *args], cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line[len("RESULT "):] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"the benchmark process failed (exit {proc.returncode})")
    r = json.loads(lines[-1])
    s, p, ev = r["steps"], r["params"], r["evaluation"]
    gib = lambda kib: f"{kib / 1024 / 1024:.2f} GiB"  # noqa: E731
    print(f"== popularity forecast benchmark: {a.songs:,} songs over {a.windows} windows, seed {a.seed}; horizon {p['horizon']} "
          f"window(s); forest n_estimators={p['trees']} max_depth={p['depth']} min_samples_leaf={p['leaf']}; boosting "
          f"{p['boosting']} iterations; max_training_pairs={p['max_pairs']:,}; cv_folds={p['cv_folds']}")
    print(f"machine               {os.cpu_count()} cpus (the forest uses n_jobs=-1, boosting OpenMP: all of them); load average "
          f"{os.getloadavg()[0]:.2f} at the end (other work shares the cores when it is above 0); python {sys.version.split()[0]}")
    print(f"data                  {r['rows']:,} song windows (rows), {r['songs']:,} songs, {r['artists']:,} artists (largest "
          f"catalogue {r['largest_catalogue']}), {r['windows']} windows; {r['new_rows']:,} rows new in their window "
          f"(windows_listed_before 0, incl. every song's first window); {r['features_mb']:.0f} MB in memory")
    print(f"  pairs               {r['pairs']:,} pairs (horizon {p['horizon']}) in {r['pair_windows']} windows, {r['pairs_new']:,} of "
          f"songs new in their window; {r['pairs_mb']:.0f} MB; popularity mean {r['popularity'][0]:.1f} sd {r['popularity'][1]:.1f}; "
          f"mean |change| over the horizon {r['change'][0]:.2f}, unchanged {r['change'][1]:.0%}")
    print(f"  generated in        {s['generate']['wall']:.1f} s wall {s['generate']['cpu']:.1f} s CPU (make_panel; not part of the model's cost)")
    print("timings (one fresh process; wall s / CPU s, CPU > wall means both cores worked)")
    labels = {
        "forecast_pairs": "forecast_pairs",
        "folds": "time_artist_folds (also in evaluate)",
        "evaluate": f"evaluate ({r['folds']} folds x 6 models)",
        "train": "train (champion refit, importances)",
        "forecast": f"forecast (newest window, {r['forecast']['songs']:,} songs)",
        "pickle": "pickle.dumps(model)",
    }
    for name, label in labels.items():
        print(f"  {label:<40}{s[name]['wall']:8.2f} s wall {s[name]['cpu']:8.2f} s CPU")
    total = sum(s[n]["wall"] for n in ("evaluate", "train"))
    print(f"  {'evaluate + train (the asset)':<40}{total:8.2f} s wall")
    print("  evaluate's folds (wall s each: pairs, folds, features and the first fold are in fold 1's time)")
    for fold, info in zip(r["fold_log"], r["fold_info"] + [None] * len(r["fold_log"])):
        extra = ""
        if info:
            extra = (f"  [train windows {info['train_windows'][0]}-{info['train_windows'][1]}, {info['train']:,} pairs before the cap; "
                     f"test windows {info['test_windows'][0]}-{info['test_windows'][1]}, {info['test_artists']:,} artists, "
                     f"{info['test_new']:,} new]")
        print(f"    {fold['wall']:7.1f} s  {fold['message']}{extra}")
    fits = r["pickle_mb"] <= r["max_model_mb"]
    print(f"stored model          {r['kind']}, {r['pickle_mb']:.1f} MB pickled; {r['shape']}; bound max_model_mb "
          f"{r['max_model_mb']:g} MB: {'within' if fits else 'OVER (the asset would not store it)'}; trained on "
          f"{r['trained_pairs']:,} pairs of {r['trained_songs']:,} songs and {r['trained_artists']:,} artists")
    print(f"peak RSS              {gib(r['rss_end']['ru_maxrss'])} ru_maxrss (VmHWM {gib(r['rss_end']['VmHWM'])}); "
          f"after imports {gib(r['rss_start']['VmHWM'])}, with the frame {gib(r['rss_frame']['VmHWM'])}; "
          "high-water after " + ", ".join(f"{n} {gib(s[n]['hwm_kib'])}" for n in labels))
    print(f"held-out ({r['folds']} folds split by time and artist; {ev['held_out']:,} pairs tested: {ev['held_out_history']:,} of "
          f"songs with history, {ev['held_out_new']:,} of new songs; of {ev['pairs']:,} pairs in {ev['windows']} windows, "
          f"{ev['artists']:,} artists; lower MAE/RMSE is better)")
    header = f"  {'model':<26}{'role':<11}{'MAE':>7}{'RMSE':>7}{'R²':>8}{'MAE sd':>8}{'MAE hist':>10}{'MAE new':>9}"
    print(header)
    nan = lambda v: "–" if v is None or v != v else f"{v:.2f}"  # noqa: E731
    for row in r["table"]:
        mark = " *" if row["model"] == r["champion"] else ""
        print(f"  {row['model'] + mark:<26}{row['role']:<11}{nan(row['mae']):>7}{nan(row['rmse']):>7}{row['r2']:8.3f}"
              f"{nan(row['mae_fold_sd']):>8}{nan(row['mae_history']):>10}{nan(row['mae_new']):>9}")
    table = {row["model"]: row for row in r["table"]}
    champ = table[r["champion"]]["mae"]
    persistence, mean = table["persistence"]["mae"], table["global_mean"]["mae"]
    print(f"  champion (*) {r['champion']}: MAE {champ:.2f} vs persistence {persistence:.2f} "
          f"({'beats' if r['beats_persistence'] else 'does NOT beat'} it, {1 - champ / persistence:.0%} lower) and global mean "
          f"{mean:.2f} ({'beats' if r['beats_global_mean'] else 'does NOT beat'} it); gate: "
          f"{'PASSES (the asset stores it)' if r['beats_baselines'] else 'FAILS (the asset keeps the previous model)'}")
    losers = [m for m, row in table.items() if row["role"] == "candidate" and row["mae"] >= persistence]
    if losers:
        print(f"  candidates not beating persistence: {', '.join(losers)}")
    f = r["forecast"]
    print(f"forecast              window {f['window']}: {f['songs']:,} songs ({f['new']:,} new), mean expected change "
          f"{f['mean_change']:+.2f}; most rising: " + "; ".join(
              f"{t['song_id']} {t['popularity']}->{t['predicted_popularity']:.1f}{' (new)' if t['new_song'] else ''}" for t in f["top"]))
    print(f"top {len(r['importances'])} permutation importances of the {r['kind']} (MAE increase when the feature is shuffled)")
    for feature, weight in r["importances"].items():
        print(f"  {feature:<32}{weight:.3f}")
    print(f"total benchmark wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
