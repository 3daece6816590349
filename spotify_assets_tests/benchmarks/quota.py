"""Benchmark: what a window costs in API quota, the first one and a steady-state one.

    python3 -m uv run python -m spotify_assets_tests.benchmarks.quota            # 1,000 playlists
    python3 -m uv run python -m spotify_assets_tests.benchmarks.quota --quick    # 100 playlists

1,000 playlists of 10 to 10,000 rows (log-uniform, seeded: real sizes vary that much) are served
by the API emulator as a Development Mode app sees them (rows without popularity, the batch
endpoints refused), with `snapshot_id` following the rows and a rolling request budget like
Spotify's (`--budget` requests per 30 s, 429 with `Retry-After` past it). Window 1 reads every
playlist; then 5% of them change (a row removed) and window 2 is read with the previous window's
documents at hand, as `raw_playlist_snapshots` does: extraction (PlaylistExtractor with the
reuse of lib/spotify/reuse.py), enrichment (lib/spotify/enrich.py), documents written to a
local raw store.

Prints per window: requests, 429s, wall time (and of it the API part: extraction, with the
previous documents read for reuse, and enrichment; the rest is writing the window), and the bound: requests / budget x 30 s, the
least time the budget allows. Targets: steady-state requests at most one per unchanged playlist
plus the pages of the changed ones (plus enrichment batches); wall time at most 1.2x the bound;
no playlist failed for a 429.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spotify_assets.lib.raw.store import LocalBackend, SnapshotStore
from spotify_assets.lib.spotify.client import Credentials, RetryPolicy, SpotifyApi
from spotify_assets.lib.spotify.enrich import Enricher
from spotify_assets.lib.spotify.extract import PAGE_SIZE, PlaylistExtractor
from spotify_assets.lib.spotify.reuse import PreviousWindow, ReusePolicy
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist, row, track

WINDOWS = ("2026-12-01-00:00", "2026-12-01-08:00")
BUDGET_WINDOW_S = 30.0


def sizes(n: int, low: int, high: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [int(math.exp(rng.uniform(math.log(low), math.log(high)))) for _ in range(n)]


def playlists(counts: list[int]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Playlists drawing their rows from one pool of tracks (memory: 1.4 M rows are served)."""
    pool = [row(track(f"pool-{i}")) for i in range(max(counts))]
    out = []
    for i, n in enumerate(counts):
        meta, _ = playlist(f"quota-{i}", 0)
        start = (i * 7919) % len(pool)
        out.append((meta, [pool[(start + j) % len(pool)] for j in range(n)]))
    return out


class Server:
    """The emulator in a process of its own, as the real API is (it must not share our GIL)."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spotify_assets_tests.benchmarks.quota", "--serve", *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.urls = self.ask("urls")

    def ask(self, command: str) -> dict[str, Any]:
        if command != "urls":
            self.process.stdin.write(command + "\n")  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the emulator process ended (exit {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def serve(args: argparse.Namespace) -> int:
    """The child: serve the playlists; on stdin, `change` applies the changes, `reset` clears
    the request log, `stats` answers the requests seen since."""
    counts = sizes(args.playlists, args.min_rows, args.max_rows, args.seed)
    served = playlists(counts)
    with SpotifyEmulator(versioned_snapshots=True, rate_budget=(args.budget, BUDGET_WINDOW_S)) as emu:
        for meta, rows in served:
            emu.add_playlist(meta, rows)
        print(json.dumps({"api_url": emu.api_url, "accounts_url": emu.accounts_url, "ids": [m["id"] for m, _ in served]}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "change":
                for i in changed_playlists(args):
                    meta, rows = served[i]
                    emu.add_playlist(meta, rows[:-1])
                print("{}", flush=True)
            elif command == "reset":
                emu.reset_log()
                print("{}", flush=True)
            elif command == "stats":
                sent = [r for r in emu.requests if r.path.startswith("/v1/")]
                print(json.dumps({
                    "requests": len(sent),
                    "429s": sum(1 for r in sent if r.status == 429),
                    "enrichment": sum(1 for r in sent if r.path.rstrip("/") in ("/v1/artists", "/v1/albums")),
                }), flush=True)
    return 0


def changed_playlists(args: argparse.Namespace) -> list[int]:
    rng = random.Random(args.seed + 1)
    return sorted(rng.sample(range(args.playlists), round(args.changed * args.playlists)))


def run_window(server: Server, store: SnapshotStore, key: str, args: argparse.Namespace) -> dict[str, Any]:
    previous_key = WINDOWS[WINDOWS.index(key) - 1] if WINDOWS.index(key) else None
    ids = server.urls["ids"]
    server.ask("reset")
    started = time.monotonic()
    api = SpotifyApi(
        Credentials("test-client-id", "test-client-secret"),
        api_url=server.urls["api_url"],
        accounts_url=server.urls["accounts_url"],
        policy=RetryPolicy(max_retry_after_s=BUDGET_WINDOW_S + 1),
        pool_size=args.concurrency,
    )
    api.authenticate()
    previous = PreviousWindow.open(store, previous_key, ReusePolicy())
    snapshots = PlaylistExtractor(api, concurrency=args.concurrency, previous=previous).extract(ids)
    enrichment = Enricher(api, concurrency=args.concurrency).enrich(snapshots)
    api_s = time.monotonic() - started
    facts = {"partition_key": key, "start": "", "end": ""}
    store.write_window(key, {s.playlist_id: s.to_document(facts) for s in snapshots}, enrichment=enrichment.document_to_keep(facts))
    wall = time.monotonic() - started
    api.close()
    stats = server.ask("stats")
    failed = [s for s in snapshots if not s.ok]
    return {
        **stats,
        "wall_s": wall,
        "api_s": api_s,  # the requests (and the previous documents read for reuse), without the write
        "bound_s": stats["requests"] / args.budget * BUDGET_WINDOW_S,
        "rows": sum(len(s.items) for s in snapshots),
        "reused": sum(1 for s in snapshots if (s.extraction.get("reuse") or {}).get("reused")),
        "failed": len(failed),
        "failed_429": sum(1 for s in failed if s.extraction["error"]["kind"] == "rate_limited"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--playlists", type=int, default=1000)
    parser.add_argument("--min-rows", type=int, default=10)
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.05, help="share of playlists changed between the windows")
    parser.add_argument("--budget", type=int, default=3000, help="API requests per rolling 30 s")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="100 playlists, budget 600")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the emulator's process
    args = parser.parse_args(argv)
    if args.quick:
        args.playlists, args.budget = 100, 600

    if args.serve:
        return serve(args)
    counts = sizes(args.playlists, args.min_rows, args.max_rows, args.seed)
    changed = changed_playlists(args)
    pages = [1 + max(0, math.ceil((n - PAGE_SIZE) / PAGE_SIZE)) for n in counts]
    print(
        f"{args.playlists} playlists of {min(counts)} to {max(counts)} rows ({sum(counts):,} rows, "
        f"{sum(pages):,} pages); {len(changed)} changed between the windows; budget {args.budget} requests "
        f"per {BUDGET_WINDOW_S:g} s; {args.concurrency} workers; the emulator in its own process"
    )
    server = Server([f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("serve", "quick")])
    try:
        with tempfile.TemporaryDirectory(prefix="quota-bench-") as tmp:
            store = SnapshotStore(LocalBackend(Path(tmp)))
            first = run_window(server, store, WINDOWS[0], args)
            server.ask("change")
            time.sleep(BUDGET_WINDOW_S)  # the next window comes 8 hours later: the budget has room again
            steady = run_window(server, store, WINDOWS[1], args)
    finally:
        server.close()

    target = (args.playlists - len(changed)) + sum(pages[i] for i in changed) + steady["enrichment"]
    print(f"{'window':<8} {'requests':>9} {'429s':>5} {'wall s':>7} {'api s':>6} {'bound s':>8} {'ratio':>6} {'rows':>10} {'reused':>6} {'failed':>6}")
    for name, r in (("first", first), ("steady", steady)):
        print(
            f"{name:<8} {r['requests']:>9,} {r['429s']:>5} {r['wall_s']:>7.1f} {r['api_s']:>6.1f} {r['bound_s']:>8.1f} "
            f"{r['wall_s'] / r['bound_s']:>6.2f} {r['rows']:>10,} {r['reused']:>6} {r['failed']:>6}"
        )
    print(
        f"steady-state requests {steady['requests']:,} (target at most {target:,}: one per unchanged playlist, "
        f"the pages of the {len(changed)} changed ones, {steady['enrichment']} enrichment)"
    )
    ok = (
        steady["requests"] <= target
        and all(r["wall_s"] <= 1.2 * r["bound_s"] for r in (first, steady))
        and first["failed_429"] == steady["failed_429"] == 0
    )
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
