"""Crash figures: kill the pipeline for one window at many points and print the outcome of each.

    .venv/bin/python -m spotify_assets_tests.benchmarks.crash [--kills 40] [--seed 12] [--no-recover]

One line per kill (point, tables after the kill: old/new/mixed, orphan rows, raw problems,
whether a clean run then gave exactly the new window's counts, seconds), then a summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from spotify_assets_tests.faults.crash import Crash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--no-recover", action="store_true", help="skip the clean run after each kill")
    parser.add_argument("--recovery", choices=("full", "tables"), default="full", help="the run after each kill: the whole job or up to the six tables")
    args = parser.parse_args()
    os.environ.setdefault("SPOTIFY_ASSETS_DATA_DIR", tempfile.mkdtemp(prefix="crash-data-"))
    root = Path(tempfile.mkdtemp(prefix="crash-bench-"))
    began = time.monotonic()
    crash = Crash(root, args.seed, args.recovery)
    try:
        crash.start()
        print(f"old window {crash.old_counts}\nnew window {crash.new_counts}")
        print(f"clean run {crash.run_seconds:.1f} s; events of a clean run {crash.coverage()}")
        outcomes = []
        for point in crash.points(args.kills):
            o = crash.kill(point, recover=not args.no_recover)
            outcomes.append(o)
            print(
                f"{str(o.point):55.55} killed={o.killed!s:5} tables={o.tables:5} "
                f"orphans={o.orphans or '-'} raw={o.raw_problems or '-'} "
                f"recovered={o.recovered if not args.no_recover else 'n/a'} {o.seconds:5.1f} s",
                flush=True,
            )
    finally:
        crash.stop()
        shutil.rmtree(root, ignore_errors=True)
    bad = [o for o in outcomes if not o.agree]
    print(f"\nkills {len(outcomes)} (seed {args.seed}), by kind {dict(Counter(o.point.kind for o in outcomes))}")
    print(f"tables after the kill {dict(Counter(o.tables for o in outcomes))}")
    print(f"disagreeing {len(bad)} of {len(outcomes)}: {[str(o.point) for o in bad]}")
    if not args.no_recover:
        print(f"recovered exactly {sum(o.recovered for o in outcomes)} of {len(outcomes)}")
    print(f"seconds {time.monotonic() - began:.0f}")


if __name__ == "__main__":
    main()
