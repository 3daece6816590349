"""Screenshots of what a user sees: the Dagster UI's page of a table asset and of a view asset,
and the HTML dashboard, taken in headless Chromium. Not a test: a tool for looking.

    .venv/bin/python -m spotify_assets_tests.support.screenshots OUTDIR [--windows N] [--keep]

Needs Debian's Chromium (`apt-get install -y chromium`, /usr/bin/chromium; CHROMIUM=path to
use another). In a temporary folder it runs `spotify-assets demo` with its own DAGSTER_HOME and
SPOTIFY_ASSETS_DATA_DIR, starts `dagster-webserver` (no daemon: nothing launches runs) on
127.0.0.1 on a free port for this project's workspace with the same settings, waits until the
code location is loaded, and writes OUTDIR/table-songs.png, OUTDIR/view-top_artists.png,
OUTDIR/dashboard.png (what a reader sees on opening it) and OUTDIR/dashboard-full.png. Every process it starts is stopped by its process group at the end, even
on failure or Ctrl-C; `--keep` leaves the temporary folder for a look (its path is printed).

The UI is a React app: Chromium's `--virtual-time-budget` lets it fetch and render before the
shot. Should that ever render a blank page, `--playwright` drives the same /usr/bin/chromium
through Playwright, waiting for the page to settle; Playwright is not a project dependency:

    python3 -m uv run --with playwright python -m spotify_assets_tests.support.screenshots OUTDIR --playwright
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
TABLE_ASSET = "songs"
VIEW_ASSET = "top_artists"
UI_SIZE = (1600, 2000)
DASHBOARD_FULL = (1600, 3800)  # the whole report, top to bottom
LOAD_TIMEOUT_S = 240.0
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars",
]
_LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
# What the UI's "Skip" on its "Join the Dagster community" dialog sends: without it the dialog
# covers the middle of every page shown on 127.0.0.1 to a new browser profile.
_NUX_SEEN = "mutation SetNuxSeen { setNuxSeen }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise SystemExit(f"no Chromium at {found}: apt-get install -y chromium (or set CHROMIUM)")
    return found


def _stop(process: subprocess.Popen, name: str, timeout_s: float = 20.0) -> None:
    """Stop a process started with start_new_session=True, and all its children, by its group."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            print(f"  {name} (pid {process.pid}) did not stop on {sig.name}", file=sys.stderr)


def _environment(home: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPOTIFY_", "SNOWFLAKE_", "AWS_")) and k != "DAGSTER_HOME"}
    env.update(DAGSTER_HOME=str(home), SPOTIFY_ASSETS_DATA_DIR=str(data), SPOTIFY_ASSETS_DEPLOYMENT="local")
    return env


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _wait_for_ui(url: str, server: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers and the code location is loaded (or fail, saying why)."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"dagster-webserver exited ({server.returncode}); its log: {log}")
        try:
            entries = _graphql(url, _LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            statuses = {e["name"]: e["loadStatus"] for e in entries}
            last = f"locations {statuses}"
            if statuses and all(s == "LOADED" for s in statuses.values()):
                return
        except (urllib.error.URLError, OSError, KeyError, TypeError, ValueError) as err:
            last = f"{type(err).__name__}: {err}"
        time.sleep(1.0)
    raise SystemExit(f"the UI at {url} was not ready after {LOAD_TIMEOUT_S:.0f} s ({last}); its log: {log}")


def _shot_cli(url: str, png: Path, size: tuple[int, int], profile: Path, budget_ms: int) -> None:
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
               f"--virtual-time-budget={budget_ms}", f"--screenshot={png}", url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        _stop(process, "chromium")
        raise SystemExit(f"chromium took over 120 s on {url}") from None
    finally:
        _stop(process, "chromium")  # its helpers (zygote, renderer) too, should any outlive it
    if not png.exists():
        raise SystemExit(f"chromium wrote no screenshot of {url}: {err.decode(errors='replace')[-2000:]}")


def _shot_playwright(url: str, png: Path, size: tuple[int, int], settle_ms: int) -> None:
    from playwright.sync_api import sync_playwright  # only with `uv run --with playwright`

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.goto(url, wait_until="networkidle", timeout=120_000)
            page.wait_for_timeout(settle_ms)
            page.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--windows", type=int, default=2, help="demo windows to materialize (default 2)")
    parser.add_argument("--budget-ms", type=int, default=20_000, help="virtual time for the UI to render")
    parser.add_argument("--playwright", action="store_true", help="drive Chromium with Playwright instead")
    parser.add_argument("--keep", action="store_true", help="keep the temporary DAGSTER_HOME and data")
    args = parser.parse_args(argv)
    _chromium()
    outdir = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="spotify-assets-shots-"))
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = _environment(home, data)
    bin_dir = Path(sys.executable).parent
    started: list[tuple[subprocess.Popen, str]] = []
    try:
        print(f"demo: {args.windows} window(s) into {root}", flush=True)
        with (root / "demo.log").open("wb") as log:
            demo = subprocess.Popen([str(bin_dir / "spotify-assets"), "demo", "--windows", str(args.windows)],
                                    cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            started.append((demo, "spotify-assets demo"))
            if demo.wait(timeout=900) != 0:
                raise SystemExit(f"the demo failed ({demo.returncode}); its output: {root / 'demo.log'}")

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server_log = root / "webserver.log"
        with server_log.open("wb") as log:
            server = subprocess.Popen(
                [str(bin_dir / "dagster-webserver"), "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1",
                 "-p", str(port)],
                cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append((server, "dagster-webserver"))
        print(f"webserver: {url} (pid {server.pid}), waiting for the code location", flush=True)
        _wait_for_ui(url, server, server_log)
        _graphql(url, _NUX_SEEN)

        pages = [
            (f"{url}/assets/{TABLE_ASSET}", outdir / f"table-{TABLE_ASSET}.png", UI_SIZE),
            (f"{url}/assets/{VIEW_ASSET}", outdir / f"view-{VIEW_ASSET}.png", UI_SIZE),
            ((data / "dashboard" / "index.html").as_uri(), outdir / "dashboard.png", UI_SIZE),
            ((data / "dashboard" / "index.html").as_uri(), outdir / "dashboard-full.png", DASHBOARD_FULL),
        ]
        for i, (page, png, size) in enumerate(pages):
            png.unlink(missing_ok=True)
            if args.playwright:
                _shot_playwright(page, png, size, settle_ms=3000)
            else:
                _shot_cli(page, png, size, root / f"chromium-profile-{i}", args.budget_ms)
            print(f"  {png} ({png.stat().st_size / 1e3:.0f} kB) <- {page}", flush=True)
    finally:
        for process, name in reversed(started):
            _stop(process, name)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
