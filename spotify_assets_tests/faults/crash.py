"""Crash harness: one window of the real pipeline re-written while the process is SIGKILLed.

The pipeline (`spotify_pipeline_job`: extraction from the project's emulator on 127.0.0.1,
raw snapshots on local files, `normalized_tables` into DuckDB, the model and the model
store) first writes the window with the "old" playlists; the emulator then serves "new"
ones and the window is re-run in a child process that kills itself (SIGKILL) at one point:

- ``http``: the n-th HTTP request of the extraction (``requests``' adapter ``send``),
- ``raw``: the n-th raw document put, ``manifest``: the window manifest's put (the commit),
- ``sql``: the n-th DELETE/INSERT/COMMIT on a write connection the warehouse opens,
- ``model``: the rename that stores the model, ``time``: a random time into the run.

Points are found by a clean calibration run (which records every event), so the harness
tests what a user can see (the tables, the raw window), not how the code gets there. After
each kill: the six tables agree (every song's album, every credit's song and artist, every
playlist row's song and playlist exist) and their counts are the old window's or the new
one's; every document the raw manifest names reads whole and matches its sha256; the stored
model, if any, loads. Then one clean run gives exactly the new window's counts.

A zygote keeps it fast: this process imports Dagster and the project once and forks one child
per run (a fresh import takes 10-30 s here). The emulator serves from a thread of the parent.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

TABLES = ("songs", "albums", "artists", "song_artists", "playlists", "playlist_tracks")
# A small forest: the model store is what is tested, not the model (training is most of a run)
# a forecast one window ahead (the history windows before the crash window give it pairs), small
RUN_CONFIG = {"ops": {"popularity_model_training": {"config": {
    "horizon_windows": 1, "n_estimators": 5, "boosting_iterations": 20, "cv_folds": 2,
}}}}
HISTORY_WINDOWS = 4  # windows of the "old" playlists before the crash window: the forecast's pairs
RECOVERY_ASSETS = ("raw_playlist_snapshots", *TABLES)
KINDS = ("http", "raw", "manifest", "sql", "model", "time")


@dataclass(frozen=True)
class KillPoint:
    kind: str  # one of KINDS
    n: int = 1  # the n-th event of that kind (1-based)
    delay_s: float = 0.0  # for "time"
    label: str = ""  # e.g. the statement killed at

    def __str__(self) -> str:
        if self.kind == "time":
            return f"time@{self.delay_s:.2f}s"
        return f"{self.kind}#{self.n}" + (f" ({self.label})" if self.label else "")


# --- the child: hooks that record events and kill at the chosen one ------------------------


class _Recorder:
    def __init__(self, path: Path, point: KillPoint | None):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._point = point
        self._counts = dict.fromkeys(KINDS, 0)

    def write(self, **event: Any) -> None:
        os.write(self._fd, (json.dumps(event) + "\n").encode())

    def hit(self, kind: str, label: str = "") -> None:
        """Count an event; if it is the kill point, record the kill and die before it happens."""
        self._counts[kind] += 1
        n = self._counts[kind]
        self.write(event=kind, n=n, label=label, t=time.monotonic())
        if self._point is not None and self._point.kind == kind and self._point.n == n:
            self.die(str(self._point))

    def die(self, why: str) -> None:
        self.write(event="kill", point=why)
        os.kill(os.getpid(), signal.SIGKILL)


_SQL_HEADS = ("DELETE", "INSERT", "COMMIT", "UPDATE", "CREATE OR REPLACE")


class _DyingConnection:
    """Forwards everything to DuckDB's connection; counts (and may die at) each data statement."""

    def __init__(self, conn: Any, recorder: _Recorder):
        self._conn, self._recorder = conn, recorder

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        head = sql.lstrip().upper()
        if head.startswith(_SQL_HEADS):
            self._recorder.hit("sql", " ".join(sql.split())[:80])
        return self._conn.execute(sql, *args, **kwargs)

    def commit(self) -> Any:
        self._recorder.hit("sql", "commit()")
        return self._conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __enter__(self) -> _DyingConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._conn.__exit__(*exc)


def _install_hooks(recorder: _Recorder) -> None:
    import requests.adapters

    from spotify_assets.lib.warehouse import duckdb as warehouse

    send = requests.adapters.HTTPAdapter.send

    def dying_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.hit("http", f"{request.method} {request.path_url[:60]}")
        return send(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = dying_send  # type: ignore[method-assign]

    opened = warehouse.DuckDBDatabase._open

    def dying_open(self: Any, write: bool, config: dict[str, Any]) -> Any:
        conn = opened(self, write, config)
        return _DyingConnection(conn, recorder) if write else conn

    warehouse.DuckDBDatabase._open = dying_open  # type: ignore[method-assign]

    # Every atomic file write ends in os.replace: raw documents, the manifest, the model.
    replace = os.replace

    def dying_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        target = os.fspath(dst)
        if "_manifests" in target:
            recorder.hit("manifest", Path(target).name)
        elif f"{os.sep}models{os.sep}" in target:
            recorder.hit("model", Path(target).name)
        elif f"{os.sep}raw{os.sep}" in target or "window=" in target:
            recorder.hit("raw", Path(target).name)
        return replace(src, dst, *args, **kwargs)

    os.replace = dying_replace  # type: ignore[assignment]


def _child(job: Any, partition_key: str, events: Path, point: KillPoint | None, selection: tuple[str, ...] | None) -> None:
    """In the forked child: run the pipeline for the window, then leave without cleanup."""
    code = 3
    try:
        log = os.open(events.with_name("run.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)  # Dagster's debug log goes to a file, not the test's output
        os.dup2(log, 2)
        recorder = _Recorder(events, point)
        _install_hooks(recorder)
        if point is not None and point.kind == "time":
            import threading

            timer = threading.Timer(point.delay_s, recorder.die, args=(str(point),))
            timer.daemon = True
            timer.start()
        import dagster as dg

        import joblib
        from threadpoolctl import threadpool_limits

        recorder.write(event="start", t=time.monotonic())
        # scikit-learn's n_jobs=-1 would start fresh worker processes in every child (seconds each),
        # and OpenMP (histogram gradient boosting) is not fork-safe: a child forked from a process
        # whose OpenMP pool ran (pytest, after other tests trained a model) dies of SIGSEGV in
        # its first parallel region. One OpenMP thread in the child starts no pool.
        with joblib.parallel_config(backend="threading"), threadpool_limits(limits=1, user_api="openmp"):
            result = (
                job.execute_in_process(
                    partition_key=partition_key,
                    instance=dg.DagsterInstance.ephemeral(),
                    raise_on_error=False,
                    run_config=RUN_CONFIG,
                    asset_selection=[dg.AssetKey(k) for k in selection] if selection else None,
                )
            )
        materialized = sorted(e.asset_key.to_user_string() for e in result.get_asset_materialization_events())
        recorder.write(event="end", success=result.success, materialized=materialized, t=time.monotonic())
        code = 0 if result.success else 1
    except BaseException as err:  # noqa: BLE001 - reported through the exit code and the events
        try:
            with open(events, "a") as handle:
                handle.write("\n" + json.dumps({"event": "error", "error": repr(err)}) + "\n")
        finally:
            code = 2
    finally:
        os._exit(code)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events a child recorded; a torn last line (killed mid-write) is skipped."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


# --- the parent: the window's two versions, the runs, the checks -----------------------------


def _playlists(version: str, shift: int = 0) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Two playlists (same ids in both versions); "new" differs in every table but `playlists`,
    with new song, album and artist ids, so any mix of the two versions breaks a reference.
    Popularity follows duration and track number; the explicit songs gain `shift` points (3 a
    window over the history windows), a trend the forecast learns, so that it is stored."""
    from spotify_assets_tests.support.fixtures import playlist, row, track

    sizes = {"old": (40, 30), "new": (55, 12)}[version]
    out = []
    for label, n in zip(("crash-a", "crash-b"), sizes):
        meta, _ = playlist(label, 0)
        rows = []
        for i in range(n):
            pop = (i * 37) % 101
            t = track(f"{label}-{version}-{i}", popularity=min(100, pop + (shift if pop > 50 else 0)),
                      artists=1 if version == "old" else 2)
            t["duration_ms"] = 120_000 + pop * 2_000
            t["track_number"] = 1 + pop // 10
            t["explicit"] = pop > 50
            rows.append(row(t))
        if version == "new":
            rows.append(rows[0])  # a song listed twice
        out.append((meta, rows))
    return out


def table_counts(duckdb_path: Path, schema: str = "analytics") -> dict[str, int] | None:
    """Row counts of the six tables (all windows); None while they do not exist yet."""
    if not duckdb_path.exists():
        return None
    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        try:
            return {t: conn.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0] for t in TABLES}
        except duckdb.CatalogException:
            return None


_ORPHANS = {
    "songs without their album": "SELECT count(*) FROM {s}.songs x WHERE x.album_id IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM {s}.albums a WHERE a.album_id = x.album_id AND a.window_start = x.window_start)",
    "song_artists without their song": "SELECT count(*) FROM {s}.song_artists x WHERE NOT EXISTS "
    "(SELECT 1 FROM {s}.songs a WHERE a.song_id = x.song_id AND a.window_start = x.window_start)",
    "song_artists without their artist": "SELECT count(*) FROM {s}.song_artists x WHERE NOT EXISTS "
    "(SELECT 1 FROM {s}.artists a WHERE a.artist_id = x.artist_id AND a.window_start = x.window_start)",
    "playlist_tracks without their song": "SELECT count(*) FROM {s}.playlist_tracks x WHERE NOT EXISTS "
    "(SELECT 1 FROM {s}.songs a WHERE a.song_id = x.song_id AND a.window_start = x.window_start)",
    "playlist_tracks without their playlist": "SELECT count(*) FROM {s}.playlist_tracks x WHERE NOT EXISTS "
    "(SELECT 1 FROM {s}.playlists a WHERE a.playlist_id = x.playlist_id AND a.window_start = x.window_start)",
    "songs in no playlist": "SELECT count(*) FROM {s}.songs x WHERE NOT EXISTS "
    "(SELECT 1 FROM {s}.playlist_tracks a WHERE a.song_id = x.song_id AND a.window_start = x.window_start)",
}


def orphans(duckdb_path: Path, schema: str = "analytics") -> dict[str, int]:
    """Rows of one table that another table of the same window does not back (all should be 0)."""
    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        found = {name: conn.execute(sql.format(s=schema)).fetchone()[0] for name, sql in _ORPHANS.items()}
    return {name: n for name, n in found.items() if n}


def raw_problems(data_dir: Path, partition_key: str) -> list[str]:
    """Documents the committed manifest names that do not read whole (missing, torn, wrong sha256)."""
    from spotify_assets.lib.raw.store import LocalBackend, SnapshotStore

    store = SnapshotStore(LocalBackend(data_dir))
    try:
        manifest = store.read_manifest(partition_key)
    except Exception as err:  # noqa: BLE001 - a torn manifest is exactly what we look for
        return [f"manifest unreadable: {err!r}"]
    if manifest is None:
        return ["no manifest"]
    problems = []
    for playlist_id, entry in manifest.documents.items():
        data = store.backend.get(entry["key"])
        if data is None:
            problems.append(f"{playlist_id}: {entry['key']} missing")
            continue
        if entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{playlist_id}: {entry['key']} does not match its sha256")
        try:
            json.loads(data)
        except ValueError as err:
            problems.append(f"{playlist_id}: {entry['key']} unreadable: {err}")
    return problems


def model_problems(data_dir: Path) -> list[str]:
    """The stored model, if any, must load whole (the old one or the new one)."""
    import pickle

    path = data_dir / "models" / "popularity_model"
    if not path.exists():
        return []
    try:
        pickle.loads(path.read_bytes())
    except Exception as err:  # noqa: BLE001 - a torn model is exactly what we look for
        return [f"{path}: {err!r}"]
    return []


@dataclass
class Outcome:
    point: KillPoint
    killed: bool  # the child died by its own SIGKILL at the point
    exit: int | None
    tables: str  # "old", "new", "none" (not written yet) or "mixed"
    counts: dict[str, int] | None
    orphans: dict[str, int]
    raw_problems: list[str]
    recovered: bool  # a clean run afterwards gave exactly the new window's counts, no orphans
    recovery_counts: dict[str, int] | None
    seconds: float

    @property
    def agree(self) -> bool:
        return self.tables in ("old", "new") and not self.orphans and not self.raw_problems


@dataclass
class Crash:
    """The zygote: emulator, the old window written once, a clean calibration of the new one."""

    root: Path
    seed: int = 12
    # the run after each kill: "full" (the whole job) or "tables" (extraction and the six tables
    # only, what the counts need: a third of a run, so that the CI test stays short)
    recovery: str = "full"
    emulator: Any = None
    partition_key: str = ""
    template: Path = field(init=False)
    old_counts: dict[str, int] = field(default_factory=dict)
    new_counts: dict[str, int] = field(default_factory=dict)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    run_seconds: float = 0.0
    _runs: int = 0

    def start(self) -> Crash:
        import dagster  # noqa: F401 - imported once here, inherited by every forked child

        import spotify_assets.definitions  # noqa: F401
        from spotify_assets_tests.support.emulator import SpotifyEmulator
        from spotify_assets_tests.support.windows import windows

        self.root.mkdir(parents=True, exist_ok=True)
        self.partition_key = windows().get_partition_keys()[-1]
        self.emulator = SpotifyEmulator(dev_mode_fields=False).start()
        self._serve("old")
        # Every run uses the same data directory (reset from a copy before each), so that the
        # definitions are built once, here, and every forked child inherits the job.
        self.live = self.root / "live"
        self.template = self.root / "old"
        self._saved_env = {name: os.environ.get(name) for name in self._env(self.live)}
        os.environ.update(self._env(self.live))
        from spotify_assets.definitions import defs

        self.job = defs().resolve_job_def("spotify_pipeline_job")
        self._reset(None)
        # the windows before: history the forecast pairs (trending), then the crash window's old version
        keys = windows().get_partition_keys()
        for n, key in enumerate(keys[-1 - HISTORY_WINDOWS : -1]):
            self._serve("old", shift=3 * n)
            code, _ = self._run(None, partition_key=key)
            if code != 0:
                raise RuntimeError(f"the history window {key}'s run failed (exit {code}): {self._errors(self.live)}")
        self._serve("old", shift=3 * HISTORY_WINDOWS)
        code, _ = self._run(None)
        self.old_counts = table_counts(self._duckdb(self.live)) or {}
        if code != 0 or not self.old_counts:
            raise RuntimeError(f"the old window's run failed (exit {code}): {self._errors(self.live)}")
        shutil.copytree(self.live, self.template)
        self._serve("new")
        self._reset(self.template)
        began = time.monotonic()
        code, self.calibration = self._run(None)
        self.run_seconds = time.monotonic() - began
        self.new_counts = table_counts(self._duckdb(self.live)) or {}
        if code != 0:
            raise RuntimeError(f"the new window's clean run failed (exit {code}): {self._errors(self.live)}")
        return self

    def _reset(self, source: Path | None) -> None:
        shutil.rmtree(self.live, ignore_errors=True)
        if source is None:
            self.live.mkdir(parents=True)
        else:
            shutil.copytree(source, self.live)

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        for name, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> Crash:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _serve(self, version: str, shift: int = 0) -> None:
        for meta, rows in _playlists(version, shift):
            self.emulator.add_playlist(meta, rows)

    def _env(self, data_dir: Path) -> dict[str, str]:
        ids = [meta["id"] for meta, _ in _playlists("old")]
        return {
            "SPOTIFY_ASSETS_DATA_DIR": str(data_dir),
            "SPOTIFY_CLIENT_ID": self.emulator.client_id,
            "SPOTIFY_CLIENT_SECRET": self.emulator.client_secret,
            "SPOTIFY_API_URL": self.emulator.api_url,
            "SPOTIFY_ACCOUNTS_URL": self.emulator.accounts_url,
            "SPOTIFY_PLAYLISTS": ",".join(ids),
            "DAGSTER_HOME": str(data_dir / "dagster_home"),
            # the history windows are read now, up to 48 h after they ended (the emulator's data)
            "SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS": "72",
        }

    @staticmethod
    def _duckdb(data_dir: Path) -> Path:
        return data_dir / "warehouse.duckdb"

    def _errors(self, data_dir: Path) -> list[str]:
        return [e.get("error", "") for e in read_events(data_dir / "events.jsonl") if e.get("event") == "error"]

    def _run(
        self, point: KillPoint | None, timeout_s: float = 180.0, selection: tuple[str, ...] | None = None,
        partition_key: str | None = None,
    ) -> tuple[int | None, list[dict[str, Any]]]:
        """Fork a child that runs the window in the live data directory; its exit (-9: killed) and its events."""
        data_dir = self.live
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "dagster_home").mkdir(exist_ok=True)
        events = data_dir / "events.jsonl"
        events.unlink(missing_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(self.job, partition_key or self.partition_key, events, point, selection)
        deadline = time.monotonic() + timeout_s
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise TimeoutError(f"a run of {point} did not end within {timeout_s} s")
            time.sleep(0.02)
        self._runs += 1
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return code, read_events(events)

    # the kill points

    def points(self, kills: int) -> list[KillPoint]:
        """At least `kills` points, seeded: every kind covered (each table statement of the window
        write, every raw document, the manifest, the model), then random ones."""
        rng = random.Random(self.seed)
        seen: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        for e in self.calibration:
            if e.get("event") in seen:
                seen[e["event"]].append(e)
        six = [e for e in seen["sql"] if any(f".{t} " in e["label"] + " " or f".{t}(" in e["label"] for t in TABLES)]
        first, last = (six[0]["n"], six[-1]["n"]) if six else (1, 0)
        commit_after = [e for e in seen["sql"] if e["n"] > last and "COMMIT" in e["label"].upper()]
        sql_points = [KillPoint("sql", e["n"], label=e["label"][:40]) for e in seen["sql"] if first <= e["n"] <= last]
        if commit_after:  # the COMMIT that publishes the window (absent when each table commits alone)
            sql_points.append(KillPoint("sql", commit_after[0]["n"], label=commit_after[0]["label"][:40]))
        http = seen["http"]
        points: list[KillPoint] = []
        if http:
            points += [KillPoint("http", n, label=http[n - 1]["label"][:40]) for n in sorted(rng.sample(range(1, len(http) + 1), min(2, len(http))))]
        points += [KillPoint("raw", e["n"], label=e["label"]) for e in seen["raw"]]
        points += [KillPoint("manifest", e["n"], label=e["label"]) for e in seen["manifest"]]
        points += sql_points
        points += [KillPoint("model", e["n"], label=e["label"]) for e in seen["model"]]
        points += [KillPoint("time", delay_s=round(rng.uniform(0.05, 0.5 * self.run_seconds), 2)) for _ in range(2)]
        pool = [KillPoint(k, e["n"], label=e["label"][:40]) for k in ("http", "raw", "manifest", "sql", "model") for e in seen[k]]
        while len(points) < kills:
            if rng.random() < 0.3 or not pool:
                points.append(KillPoint("time", delay_s=round(rng.uniform(0.05, 0.5 * self.run_seconds), 2)))
            else:
                points.append(rng.choice(pool))
        return points

    def coverage(self) -> dict[str, int]:
        return {k: sum(1 for e in self.calibration if e.get("event") == k) for k in KINDS if k != "time"}

    # one kill

    def kill(self, point: KillPoint, *, recover: bool = True) -> Outcome:
        began = time.monotonic()
        data_dir = self.live
        self._reset(self.template)
        code, events = self._run(point)
        killed = code == -signal.SIGKILL and any(e.get("event") == "kill" for e in events)
        db = self._duckdb(data_dir)
        counts = table_counts(db)
        tables = "old" if counts == self.old_counts else "new" if counts == self.new_counts else "none" if counts is None else "mixed"
        found_orphans = orphans(db) if counts is not None else {}
        problems = raw_problems(data_dir, self.partition_key) + model_problems(data_dir)
        recovered, recovery_counts = False, None
        if recover:
            rcode, _ = self._run(None, selection=RECOVERY_ASSETS if self.recovery == "tables" else None)
            recovery_counts = table_counts(db)
            recovered = rcode == 0 and recovery_counts == self.new_counts and not orphans(db)
        return Outcome(point, killed, code, tables, counts, found_orphans, problems, recovered, recovery_counts, time.monotonic() - began)


def run(
    kills: int, seed: int = 12, root: Path | None = None, report: Callable[[Outcome], None] | None = None, recovery: str = "full"
) -> tuple[Crash, list[Outcome]]:
    """Start the zygote, kill at `kills` (or more, to cover every point) points, return the outcomes."""
    own = root is None
    root = root or Path(tempfile.mkdtemp(prefix="crash-"))
    crash = Crash(root, seed, recovery)
    outcomes = []
    try:
        crash.start()
        for point in crash.points(kills):
            outcome = crash.kill(point)
            outcomes.append(outcome)
            if report is not None:
                report(outcome)
    finally:
        crash.stop()
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return crash, outcomes
