"""Benchmark: a long extraction against an app rate limit, with the shared rate gate and without.

    python3 -m uv run python -m spotify_assets_tests.benchmarks.rate_limit [--limit 40 --window-s 2]

The emulator (in this process, `rate_budget`) enforces a rolling limit like Spotify's: more than `--limit`
API requests in the last `--window-s` seconds are answered 429, with a `Retry-After` of the
whole seconds until the window has room again; a refused request counts against the window
too (a client that keeps sending stays limited).
The same playlists are read twice:

- `gate`: the client as it is (lib/spotify/rate_gate.py): a 429 pauses every worker, the
  requests in flight halve on a 429 and grow back by one;
- `per-worker`: the behaviour before the gate, for comparison: the worker that got the 429
  sleeps its Retry-After, the others go on sending.

Prints, per mode: the requests sent, the 429s, the wall time, the rows read, and the rate
actually served against the limit. The gate should see far fewer 429s for the same rows.
"""

from __future__ import annotations

import argparse
import time

from spotify_assets.lib.spotify.client import Credentials, RetryPolicy, SpotifyApi
from spotify_assets.lib.spotify.extract import PlaylistExtractor
from spotify_assets.lib.spotify.rate_gate import RateGate, Ticket
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist


class PerWorkerGate(RateGate):
    """Before the shared gate: only the worker that got the 429 waits; nothing adapts."""

    def enter(self) -> Ticket:
        return Ticket(0.0)

    def leave(self, ticket: Ticket, *, throttled: bool) -> None:
        pass

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)


def run(mode: str, args: argparse.Namespace) -> dict[str, float]:
    with SpotifyEmulator(latency_s=args.latency_ms / 1000, rate_budget=(args.limit, args.window_s)) as emu:
        ids = []
        for i in range(args.playlists):
            meta, rows = playlist(f"limited-{i}", args.rows)
            emu.add_playlist(meta, rows)
            ids.append(meta["id"])
        api = SpotifyApi(
            Credentials(emu.client_id, emu.client_secret),
            api_url=emu.api_url,
            accounts_url=emu.accounts_url,
            policy=RetryPolicy(max_attempts=10),
            pool_size=args.concurrency,
        )
        if mode == "per-worker":
            api._gate = PerWorkerGate(args.concurrency)
        api.authenticate()
        started = time.monotonic()
        snapshots = PlaylistExtractor(api, concurrency=args.concurrency).extract(ids)
        wall = time.monotonic() - started
        api.close()
        sent = [r for r in emu.requests if r.path.startswith("/v1/")]
        limited = sum(1 for r in sent if r.status == 429)
    return {
        "requests": len(sent),
        "429s": limited,
        "wall_s": wall,
        "rows": sum(len(s.items) for s in snapshots),
        "failed": sum(1 for s in snapshots if not s.ok),
        "served_per_s": (len(sent) - limited) / wall,
        "lowest_in_flight": api.counts["lowest_in_flight"] if mode == "gate" else args.concurrency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--playlists", type=int, default=30)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--limit", type=int, default=100, help="API requests allowed per window")
    parser.add_argument("--window-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    pages = args.playlists * (1 + max(0, -(-args.rows // 50) - 1))
    print(
        f"{args.playlists} playlists x {args.rows} rows ({pages} API requests at the least), {args.concurrency} workers, "
        f"{args.latency_ms:g} ms latency; limit {args.limit} requests per {args.window_s:g} s "
        f"({args.limit / args.window_s:g}/s)"
    )
    print(f"{'mode':<11} {'requests':>8} {'429s':>6} {'wall s':>7} {'rows':>7} {'failed':>6} {'served/s':>8} {'lowest in flight':>16}")
    results = {}
    for mode in ("gate", "per-worker"):
        r = results[mode] = run(mode, args)
        print(
            f"{mode:<11} {r['requests']:>8} {r['429s']:>6} {r['wall_s']:>7.1f} {r['rows']:>7} {r['failed']:>6} "
            f"{r['served_per_s']:>8.1f} {r['lowest_in_flight']:>16}"
        )
    gate, old = results["gate"], results["per-worker"]
    print(f"429s with the gate: {gate['429s']} against {old['429s']} without ({gate['429s'] / max(1, old['429s']):.2f}x)")
    return 0 if gate["failed"] == 0 and gate["rows"] == args.playlists * args.rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
