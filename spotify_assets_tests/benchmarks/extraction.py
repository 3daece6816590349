"""Benchmark: extract N playlists of M rows against the emulator with added latency.

    python3 -m uv run python -m spotify_assets_tests.benchmarks.extraction

The emulator runs in its own process (so it does not share our GIL) and adds a fixed latency
to every request. Prints the requests made against the minimum (one per page of 50, plus the
token), the wall time, and wall / (requests x latency / concurrency): 1.0 would be perfect
overlap; the target is at most 1.5.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from contextlib import closing

import requests

from spotify_assets.lib.spotify.extract import PAGE_SIZE, PlaylistExtractor
from spotify_assets.lib.spotify.client import Credentials, RetryPolicy, SpotifyApi
from spotify_assets_tests.support.fixtures import playlist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--playlists", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    emulator = subprocess.Popen(
        [sys.executable, "-m", "spotify_assets_tests.support.emulator", "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = json.loads(emulator.stdout.readline())  # type: ignore[union-attr]
        control = urls["api_url"].rsplit("/v1", 1)[0] + "/_emulator"
        ids = []
        for i in range(args.playlists):
            meta, rows = playlist(f"bench-{i}", args.rows)
            requests.post(f"{control}/playlists", json={"meta": meta, "rows": rows}, timeout=60).raise_for_status()
            ids.append(meta["id"])
        # One untimed pass first: the emulator encodes each filtered page on first request,
        # and that cost is the emulator's, not the client's. The timed pass uses a new client.
        for _pass in ("warm-up", "timed"):  # the figures below are the last pass's
            requests.delete(f"{control}/requests", timeout=10).raise_for_status()
            with closing(
                SpotifyApi(
                    Credentials("test-client-id", "test-client-secret"),
                    api_url=urls["api_url"],
                    accounts_url=urls["accounts_url"],
                    policy=RetryPolicy(),
                    pool_size=args.concurrency,
                )
            ) as api:
                started = time.perf_counter()
                api.authenticate()
                snapshots = PlaylistExtractor(api, concurrency=args.concurrency).extract(ids)
                wall = time.perf_counter() - started

        recorded = requests.get(f"{control}/requests", timeout=10).json()
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    rows = sum(len(s.items) for s in snapshots)
    failed = [s.playlist_id for s in snapshots if not s.ok]
    minimum = args.playlists * math.ceil(args.rows / PAGE_SIZE) + 1
    latency = args.latency_ms / 1000
    ideal = len(recorded) * latency / args.concurrency
    ratio = wall / ideal
    print(f"playlists x rows      {args.playlists} x {args.rows} = {rows} rows read, {len(failed)} failed")
    print(f"latency, concurrency  {args.latency_ms:g} ms per request, {args.concurrency} in flight")
    print(f"requests              {len(recorded)} (minimum {minimum}: one per page of {PAGE_SIZE} plus 1 token)")
    print(f"wall time             {wall:.3f} s")
    print(f"requests x latency / concurrency = {ideal:.3f} s")
    print(f"ratio                 {ratio:.2f} (target <= 1.5)")
    ok = rows == args.playlists * args.rows and not failed and len(recorded) == minimum and ratio <= 1.5
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
