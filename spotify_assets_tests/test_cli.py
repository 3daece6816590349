"""The `spotify-assets` commands as a user runs them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import requests

from spotify_assets.defs.analytics.views import view_names
from spotify_assets.lib.samples.catalogue import sample_playlist_ids
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets_tests.support.emulator import SpotifyEmulator

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_auth_obtains_a_refresh_token_through_the_loopback_redirect(emulator: SpotifyEmulator, tmp_path: Path) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    env = {
        **os.environ,
        "SPOTIFY_CLIENT_ID": emulator.client_id,
        "SPOTIFY_CLIENT_SECRET": emulator.client_secret,
        "SPOTIFY_ACCOUNTS_URL": emulator.accounts_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "spotify_assets.cli", "auth", "--no-browser", "--redirect-uri", redirect, "--timeout", "60"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.strip().startswith(emulator.accounts_url):
                url = line.strip()
                break
        assert url and "playlist-read-private" in url and "state=" in url
        # The user approves in a browser: Spotify redirects to our loopback receiver.
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"SPOTIFY_REFRESH_TOKEN={emulator.refresh_token}" in out
    assert emulator.client_secret not in out + err
    assert list(tmp_path.iterdir()) == []  # no .cache file with the token


def test_auth_refuses_a_redirect_spotify_would_refuse() -> None:
    env = {**os.environ, "SPOTIFY_CLIENT_ID": "a", "SPOTIFY_CLIENT_SECRET": "b"}
    result = subprocess.run(
        [sys.executable, "-m", "spotify_assets.cli", "auth", "--no-browser", "--redirect-uri", "http://localhost/callback"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "loopback" in result.stderr


@pytest.mark.slow
def test_demo_materializes_the_graph_on_the_embedded_default(tmp_path: Path) -> None:
    """The README's first command, minus installing: local files, synthetic sample, no network."""
    env = {
        **os.environ,
        "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "data"),
        # Real-looking credentials in the shell must not turn the demo into a live run.
        "SPOTIFY_CLIENT_ID": "id",
        "SPOTIFY_CLIENT_SECRET": "secret",
        "SPOTIFY_PLAYLISTS": "5ABHKGoOzxkaa28ttQV9sE",
        "SPOTIFY_API_URL": "http://127.0.0.1:9/v1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "spotify_assets.cli", "demo", "--windows", "5", "--horizon", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    # The forecast's gate decides on the day's windows (the demo takes the latest): stored when its
    # champion beats persistence, else refused with the figures, the run failed and the exit 1.
    # That the gate decides right is tests/defs/model's, on fixed windows.
    stored = re.search(
        r"popularity model: +version (\w+), .* forecasting 2 window\(s\) ahead, trained on (\d+) pairs.*\n.*held-out MAE ([\d.]+) .*"
        r"against ([\d.]+) for persistence, ([\d.]+) for the global mean", result.stdout)
    refused = re.search(
        r"popularity model: +Candidate (\w+) rejected: held-out MAE of the champion \(.+\) ([\d.]+) against ([\d.]+) for "
        r"persistence and ([\d.]+) for the global mean: it does not beat persistence", result.stdout)
    assert (stored is None) != (refused is None), result.stdout
    if stored:
        assert result.returncode == 0, result.stdout + result.stderr
        assert float(stored.group(3)) < float(stored.group(4)) < float(stored.group(5))
        assert (tmp_path / "data/models/popularity_model").is_file()
    else:
        assert result.returncode == 1 and "check failed: popularity_model/beats_baselines (ERROR)" in result.stdout
        assert float(refused.group(2)) >= float(refused.group(3)) and float(refused.group(3)) < float(refused.group(4))
        assert not (tmp_path / "data/models/popularity_model").exists()
    assert "SYNTHETIC" in result.stdout and str(tmp_path / "data") in result.stdout
    # the results, not Dagster's DEBUG lines ("Loading file from ..." of the model store)
    assert not [line for line in (result.stdout + result.stderr).splitlines() if " - DEBUG - " in line]
    assert "uv run dg dev" in result.stdout and "dagster dev" not in result.stdout  # the command the README gives
    windows = sorted((tmp_path / "data/raw/playlist_snapshots").glob("window=*"))
    assert len(windows) == 5
    for window in windows:
        names = sorted(p.stem for p in window.rglob("*.json"))
        assert names == sorted([*sample_playlist_ids(), "_enrichment"])  # one per playlist, and the window's artists and albums
    # every window's tables and views, the last one's forecast as the gate decided
    assert len(re.findall(r"window \S+: ok", result.stdout)) == (5 if stored else 4)
    assert (tmp_path / "data/dagster_home").is_dir()
    # the tables and views are in the DuckDB warehouse, five windows of each table
    with duckdb.connect(str(tmp_path / "data/warehouse.duckdb"), read_only=True) as conn:
        for table in TABLES:
            assert conn.execute(f"SELECT COUNT(DISTINCT window_start) FROM analytics.{table}").fetchone()[0] == 5
            assert re.search(rf"table {table} +[1-9]\d* rows in 5 window", result.stdout), table
        for view in view_names():
            if view == "rising_songs" and not stored:
                continue  # built from a stored forecast only
            assert conn.execute(f"SELECT COUNT(*) FROM analytics.{view}").fetchone()[0] > 0, view
    assert "top artists now:      1. " in result.stdout
    # the listening history was ingested, and the dashboard written where the demo says
    assert re.search(r"listening history: ok \(7 synthetic export files in .*, 3122 new plays", result.stdout), result.stdout
    assert f"dashboard:            {tmp_path / 'data/dashboard/index.html'}" in result.stdout
    assert (tmp_path / "data/dashboard/index.html").stat().st_size > 10_000

    # Run again (the next day, say): same windows, same data, so the model is not retrained,
    # and the demo says so and still shows the model in use (or, refused, is refused again).
    again = subprocess.run(
        [sys.executable, "-m", "spotify_assets.cli", "demo", "--windows", "5", "--horizon", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if stored:
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"Not retrained: the training pairs, their features and the parameters are those model {stored.group(1)}" in again.stdout
        assert f"popularity model:     version {stored.group(1)}" in again.stdout
    else:
        assert again.returncode == 1 and f"Candidate {refused.group(1)} rejected" in again.stdout
    assert "will proceed without gating" not in again.stderr
    assert "3122 new plays" not in again.stdout and ", 0 new plays" in again.stdout  # each export file once


def test_a_later_demo_fails_the_runs_a_killed_demo_left_started() -> None:
    """A demo killed mid-run leaves its run STARTED in Dagster's storage; the next demo marks it
    failed, and leaves alone runs of live processes and runs it did not start."""
    import dagster as dg

    from spotify_assets.cli import RUN_PROCESS_TAG, fail_abandoned_runs

    @dg.op
    def noop() -> None: ...

    @dg.job
    def tiny() -> None:
        noop()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    started = dg.DagsterRunStatus.STARTED
    with dg.instance_for_test() as instance:
        killed = instance.create_run_for_job(tiny, tags={RUN_PROCESS_TAG: f"{host}:{dead.pid}"}, status=started)
        live = instance.create_run_for_job(tiny, tags={RUN_PROCESS_TAG: f"{host}:{os.getppid()}"}, status=started)
        elsewhere = instance.create_run_for_job(tiny, tags={RUN_PROCESS_TAG: f"other-host:{dead.pid}"}, status=started)
        daemon = instance.create_run_for_job(tiny, status=started)
        lines = fail_abandoned_runs(instance)
        assert len(lines) == 1 and killed.run_id[:8] in lines[0]
        status = {run.run_id: instance.get_run_by_id(run.run_id).status for run in (killed, live, elsewhere, daemon)}
        assert status == {killed.run_id: dg.DagsterRunStatus.FAILURE, live.run_id: started, elsewhere.run_id: started, daemon.run_id: started}
        assert fail_abandoned_runs(instance) == []  # once


@pytest.mark.slow
def test_demo_names_an_unwritable_data_dir_or_dagster_home_without_a_traceback(tmp_path: Path) -> None:
    # A regular file where a directory must be created: unwritable for root too.
    (tmp_path / "file").write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_HOME"))}
    result = subprocess.run(
        [sys.executable, "-m", "spotify_assets.cli", "demo", "--windows", "1"],
        cwd=ROOT, env={**env, "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "file" / "data")},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert f"SPOTIFY_ASSETS_DATA_DIR={str(tmp_path / 'file' / 'data')!r}: the data directory" in result.stderr
    assert f"{tmp_path / 'file'} is a file, not a directory" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "spotify_assets.cli", "demo", "--windows", "1"],
        cwd=ROOT, env={**env, "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "file" / "home")},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"DAGSTER_HOME={str(tmp_path / 'file' / 'home')!r}: Dagster's run storage" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was written
