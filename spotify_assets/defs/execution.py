"""How runs execute: every step of a run in the run's own process, wherever it was launched.

Dagster's default executor runs each step in a fresh process that imports the code location
again: for this project's small steps that costs several times the work itself (one window
of the sample: 244 s against 37 s in-process on 2 cores; see
`spotify_assets_tests/benchmarks/daemon_path.py`), and the steps that write the embedded
DuckDB warehouse queue on its one-writer lock anyway. So every job (the schedule's, the
sensor's, backfills, "Materialize" in the UI) uses the in-process executor, set once for the
code location in `definitions.py`. The windows of a backfill are still separate runs, each its
own process, queued by the daemon.
"""

import dagster as dg

EXECUTOR = dg.in_process_executor
