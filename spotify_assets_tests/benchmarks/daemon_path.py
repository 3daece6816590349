"""The scheduled path against the demo's: how much slower is what the daemon and the UI launch?

    .venv/bin/python -m spotify_assets_tests.benchmarks.daemon_path [--only load,job,backfill] [--repeat 5]

Prints, measured in one run on this machine (the bundled sample; no network):

1. load: loading the definitions in a fresh process (what every run and step process of the
   daemon does first) against `python -c "import dagster"`; medians of --repeat runs.
2. job: one window of the sample through `spotify_pipeline_job` with `dagster job execute` as
   the job is configured, against the same job under Dagster's default executor with
   `execution: {config: {in_process: {}}}` (`default_executor.py`), and for reference under
   the default's multiprocess choices (spawned steps; steps forked from a server that has
   preloaded the code location).
3. backfill: a 4-window backfill submitted to `dagster dev` (webserver and daemon, as a user
   starts them) and run by its daemon, against the same four windows run in one process
   one after the other (`execute_in_process`), from submission until the last run ends.

Each measurement uses fresh temporary data and DAGSTER_HOME directories.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOB = "spotify_pipeline_job"


def recent_windows(count: int) -> list[str]:
    """The `count` most recent closed 8-hour windows' partition keys, oldest first."""
    now = datetime.now(timezone.utc)
    end = now.replace(hour=now.hour - now.hour % 8, minute=0, second=0, microsecond=0)
    starts = [end - timedelta(hours=8 * (i + 1)) for i in range(count)]
    return [s.strftime("%Y-%m-%d-%H:%M") for s in reversed(starts)]


@contextmanager
def fresh_env():
    """A data directory and DAGSTER_HOME of their own, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="daemon-path-"))
    home = root / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "SPOTIFY_ASSETS_DATA_DIR": str(root / "data"),
        "DAGSTER_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "VIRTUAL_ENV": str(BIN.parent),  # what `uv run` sets; dg warns without it
    }
    try:
        yield root, env
    finally:
        shutil.rmtree(root, ignore_errors=True)


def timed(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def measure_load(repeat: int) -> None:
    with fresh_env() as (_, env):
        python = [sys.executable, "-c"]
        dagster, definitions = [], []
        for _ in range(repeat):  # interleaved, so a busy moment hits both
            dagster.append(timed([*python, "import dagster"], env))
            definitions.append(timed([*python, "from spotify_assets.definitions import defs; defs()"], env))
    d, s = statistics.median(dagster), statistics.median(definitions)
    print(f"load: import dagster {d:.2f} s, definitions {s:.2f} s (median of {repeat}): {s / d:.2f}x  [target <= 2.0x]")


def measure_job(references: bool) -> None:
    """The job as configured, against Dagster's default executor told to run in-process, and
    (with `references`) its other choices: multiprocess, spawned or forked from a preloaded
    server."""
    window = recent_windows(1)[0]
    tags = json.dumps({"dagster/partition": window})
    reference = "spotify_assets_tests.benchmarks.default_executor"
    variants: list[tuple[str, str, dict]] = [
        ("configured", "spotify_assets.definitions", {}),
        ("in_process", reference, {"execution": {"config": {"in_process": {}}}}),
    ]
    if references:
        forkserver = {"forkserver": {"preload_modules": ["spotify_assets.definitions"]}}
        variants += [
            ("multiprocess (spawn)", reference, {}),
            ("multiprocess (forkserver, preloaded)", reference,
             {"execution": {"config": {"multiprocess": {"start_method": forkserver}}}}),
        ]
    figures: dict[str, float] = {}
    for name, module, config in variants:
        with fresh_env() as (root, env):
            args = [str(BIN / "dagster"), "job", "execute", "-m", module, "-j", JOB, "--tags", tags]
            if config:
                path = root / "run_config.json"
                path.write_text(json.dumps(config))
                args += ["-c", str(path)]
            figures[name] = timed(args, env)
            print(f"job: {JOB} window {window}, {name}: {figures[name]:.1f} s", flush=True)
    ratio = figures["configured"] / figures["in_process"]
    print(f"job: configured executor {figures['configured']:.1f} s against in_process "
          f"{figures['in_process']:.1f} s: {ratio:.2f}x  [target <= 1.5x]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"dagster dev exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def _backfill_runs(home: Path, backfill_id: str):
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(home)) as instance:
        return instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))


def measure_backfill(count: int = 4) -> None:
    windows = recent_windows(count)
    # Four windows in one process, one after the other: what the daemon path is held to.
    with fresh_env() as (_, env):
        code = (
            "from dagster import DagsterInstance\n"
            "from spotify_assets.definitions import defs\n"
            f"job = defs().resolve_job_def({JOB!r})\n"
            "with DagsterInstance.get() as instance:\n"
            f"    for key in {windows!r}:\n"
            "        assert job.execute_in_process(partition_key=key, instance=instance).success\n"
        )
        # the import is not part of the work: time it apart and subtract
        began = time.perf_counter()
        timed([sys.executable, "-c", code], env)
        whole = time.perf_counter() - began
        load = timed([sys.executable, "-c", "from spotify_assets.definitions import defs; defs()"], env)
        in_process = whole - load
    print(f"backfill: {count} windows in one process: {in_process:.1f} s (+{load:.1f} s loading)", flush=True)

    with fresh_env() as (root, env):
        port = _free_port()
        log = open(root / "dagster_dev.log", "w")
        # Reset SIGINT/SIGTERM before exec: a background `dagster dev` otherwise ignores them.
        dev = subprocess.Popen(
            [str(BIN / "dg"), "dev", "--port", str(port), "--host", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), signal.signal(signal.SIGTERM, signal.SIG_DFL)),
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/server_info", dev, timeout=300)
            began = time.perf_counter()
            # Submitted to the location as `dg dev` names it (workspace.yaml), for its daemon.
            submit = subprocess.run(
                [str(BIN / "dagster"), "job", "backfill", "-w", "workspace.yaml", "-l", "spotify_assets",
                 "-j", JOB, "--partitions", ",".join(windows), "--noprompt"],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )
            if submit.returncode != 0:
                raise SystemExit(f"backfill submission failed:\n{submit.stdout}\n{submit.stderr}")
            from dagster import DagsterInstance

            runs = []
            while time.perf_counter() - began < 3600:
                with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                    backfills = instance.get_backfills()
                if backfills:
                    runs = _backfill_runs(Path(env["DAGSTER_HOME"]), backfills[0].backfill_id)
                    if len(runs) == count and all(r.dagster_run.is_finished for r in runs):
                        break
                time.sleep(1)
            daemon = time.perf_counter() - began
        finally:
            os.killpg(dev.pid, signal.SIGTERM)
            try:
                dev.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
            log.close()
    statuses = sorted(str(r.dagster_run.status.value) for r in runs)
    if statuses != ["SUCCESS"] * count:
        raise SystemExit(f"backfill: the daemon's runs ended {statuses}: not a measurement")
    print(f"backfill: {count} windows through dg dev's daemon: {daemon:.1f} s, runs {statuses}")
    print(f"backfill: daemon {daemon:.1f} s against in-process {in_process:.1f} s: {daemon / in_process:.2f}x  [target <= 2x]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="load,job,backfill")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-references", action="store_true", help="skip the multiprocess reference runs (minutes each)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    if "load" in parts:
        measure_load(args.repeat)
    if "job" in parts:
        measure_job(references=not args.no_references)
    if "backfill" in parts:
        measure_backfill()


if __name__ == "__main__":
    main()
