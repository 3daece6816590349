"""Case 3 of the fault list: a window's six tables change together.

Before, each table committed on its own (one IO-manager output each): a crash or an error
between two of them left `songs` at the new window while `albums` held the old one. Now
`normalized_tables` writes the six in one transaction. Here the window is re-written with
new content while the write fails (an error inside the transaction, on DuckDB and on
fakesnow's Snowflake) or the writing process is killed with SIGKILL between two tables; the
six row counts are then all the old window's or all the new one's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets.lib.warehouse.duckdb import DuckDBDatabase, duckdb_replace_window
from spotify_assets.lib.warehouse.snowflake import snowflake_replace_window
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.fixtures import document, playlist, row, track
from spotify_assets_tests.support.snowflake import connection_args, insert_rows

START = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
WINDOW = Window(START, START + timedelta(hours=8))
OTHER = Window(START - timedelta(hours=8), START)


def _frames(version: str, window_start: datetime = START) -> dict[str, pd.DataFrame]:
    """The six tables of a window; version "old" and "new" differ in every table's row count."""
    n = 6 if version == "old" else 9
    meta, rows = playlist(f"together-{version}", n)
    docs = [document(meta, rows)]
    if version == "new":
        duet = track("together-duet", artists=2)
        extra, _ = playlist("together-extra", 0)
        docs.append(document(extra, [row(duet), row(duet)]))
    return normalize_documents(window_start, docs).frames


OLD, NEW = _frames("old"), _frames("new")
COUNTS_OLD = {name: len(frame) for name, frame in OLD.items()}
COUNTS_NEW = {name: len(frame) for name, frame in NEW.items()}


def test_the_two_versions_differ_in_every_table():
    assert all(COUNTS_OLD[name] != COUNTS_NEW[name] for name in TABLES)


def _broken(frames: dict[str, pd.DataFrame], table: str) -> dict[str, pd.DataFrame]:
    """`frames` whose `table` violates its NOT NULL key: the INSERT fails inside the transaction."""
    bad = dict(frames)
    key = TABLES[table].key[0]
    bad[table] = frames[table].assign(**{key: None})
    return bad


def _duckdb_counts(path: Path, window: Window = WINDOW) -> dict[str, int]:
    start, end = window.literals()
    with duckdb.connect(str(path), read_only=True) as conn:
        return {
            name: conn.execute(
                f"SELECT count(*) FROM analytics.{name} WHERE window_start >= '{start}'::TIMESTAMPTZ "
                f"AND window_start < '{end}'::TIMESTAMPTZ"
            ).fetchone()[0]
            for name in TABLES
        }


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["albums", "playlists", "playlist_tracks"])
def test_an_error_in_any_table_leaves_all_six_at_the_old_window_on_duckdb(tmp_path, failing):
    path = tmp_path / "w.duckdb"
    db = DuckDBDatabase(path)
    with db.connect(write=True) as conn:
        duckdb_replace_window(conn, "analytics", OLD, WINDOW)
        duckdb_replace_window(conn, "analytics", _frames("old", OTHER.start), OTHER)
    other_before = _duckdb_counts(path, OTHER)
    with db.connect(write=True) as conn, pytest.raises(duckdb.ConstraintException):
        duckdb_replace_window(conn, "analytics", _broken(NEW, failing), WINDOW)
    assert _duckdb_counts(path) == COUNTS_OLD
    assert _duckdb_counts(path, OTHER) == other_before
    with db.connect(write=True) as conn:
        duckdb_replace_window(conn, "analytics", NEW, WINDOW)
    assert _duckdb_counts(path) == COUNTS_NEW
    assert _duckdb_counts(path, OTHER) == other_before


_KILLER = textwrap.dedent(
    """
    import os, pickle, signal, sys
    from spotify_assets.lib.warehouse import duckdb as warehouse

    path, frames_file, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    frames, window = pickle.load(open(frames_file, "rb"))

    class Dying:
        # forwards everything to DuckDB's connection; SIGKILLs this process at the n-th data statement
        def __init__(self, conn):
            self._conn, self._n = conn, 0
        def execute(self, sql, *args, **kwargs):
            if sql.lstrip().upper().startswith(("DELETE", "INSERT", "COMMIT")):
                self._n += 1
                if self._n == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return self._conn.execute(sql, *args, **kwargs)
        def __getattr__(self, name):
            return getattr(self._conn, name)

    opened = warehouse.DuckDBDatabase._open
    warehouse.DuckDBDatabase._open = lambda self, write, config: Dying(opened(self, write, config))
    with warehouse.DuckDBDatabase(path).connect(write=True) as conn:
        warehouse.duckdb_replace_window(conn, "analytics", frames, window)
    print("finished")
    """
)


@pytest.mark.slow
def test_a_kill_between_any_two_statements_leaves_all_six_old_or_all_six_new(tmp_path):
    """SIGKILL at each DELETE, INSERT and the COMMIT of the six-table write (13 points)."""
    import pickle

    frames_file = tmp_path / "frames.pickle"
    frames_file.write_bytes(pickle.dumps((NEW, WINDOW)))
    outcomes = []
    for kill_at in range(1, 2 * len(TABLES) + 3):  # 12 DELETE/INSERTs, the COMMIT, and one past it
        path = tmp_path / f"w{kill_at}.duckdb"
        with DuckDBDatabase(path).connect(write=True) as conn:
            duckdb_replace_window(conn, "analytics", OLD, WINDOW)
        proc = subprocess.run(
            [sys.executable, "-c", _KILLER, str(path), str(frames_file), str(kill_at)],
            capture_output=True, text=True, timeout=120,
        )
        killed = proc.returncode == -signal.SIGKILL
        counts = _duckdb_counts(path)  # DuckDB replays its WAL: committed work only
        outcomes.append((kill_at, killed, "old" if counts == COUNTS_OLD else "new" if counts == COUNTS_NEW else counts))
        assert counts in (COUNTS_OLD, COUNTS_NEW), f"kill at statement {kill_at}: the tables disagree: {counts}"
    # every kill before the COMMIT left the old window, the last run (no kill) wrote the new one
    assert [o[2] for o in outcomes] == ["old"] * (2 * len(TABLES) + 1) + ["new"], outcomes
    assert [o[1] for o in outcomes] == [True] * (2 * len(TABLES) + 1) + [False], outcomes


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["albums", "playlist_tracks"])
@pytest.mark.parametrize("where", ["staging", "transaction"])
def test_an_error_in_any_table_leaves_all_six_at_the_old_window_on_snowflake(fakesnow_server, snowflake_database, failing, where):
    with snowflake.connector.connect(**fakesnow_server) as admin:
        admin.cursor().execute(f"CREATE DATABASE {snowflake_database}")
    conn = snowflake.connector.connect(**connection_args(fakesnow_server, snowflake_database))

    def counts() -> dict[str, int]:
        start, end = WINDOW.literals()
        cur = conn.cursor()
        out = {}
        for name in TABLES:
            cur.execute(
                f"SELECT count(*) FROM {snowflake_database}.ANALYTICS.{name} "
                f"WHERE window_start >= '{start}'::TIMESTAMP_TZ AND window_start < '{end}'::TIMESTAMP_TZ"
            )
            out[name] = cur.fetchone()[0]
        return out

    try:
        snowflake_replace_window(conn, snowflake_database, "ANALYTICS", OLD, WINDOW, stage=insert_rows)
        assert counts() == COUNTS_OLD
        with pytest.raises(Exception):
            if where == "staging":  # the broken rows do not even reach the temporary table
                snowflake_replace_window(conn, snowflake_database, "ANALYTICS", _broken(NEW, failing), WINDOW, stage=insert_rows)
            else:  # staged; the INSERT into the table fails after other tables were swapped
                snowflake_replace_window(conn, snowflake_database, "ANALYTICS", NEW, WINDOW, stage=_insert_then_null_key(failing))
        assert counts() == COUNTS_OLD
        snowflake_replace_window(conn, snowflake_database, "ANALYTICS", NEW, WINDOW, stage=insert_rows)
        assert counts() == COUNTS_NEW
    finally:
        conn.close()


def _insert_then_null_key(failing: str):
    """Stage every table as production would, but let the broken table's rows reach the
    temporary table (created LIKE the target, without its NOT NULL) so that the failure comes
    from the INSERT inside the transaction, after the other tables' rows were swapped."""

    def stage(conn, frame: pd.DataFrame, table: str) -> None:
        insert_rows(conn, frame, table)
        if table.startswith(failing.upper() + "__"):
            # fakesnow's LIKE copies NOT NULL: make the staged key null after the fact instead
            key = TABLES[failing].key[0].upper()
            with conn.cursor() as cur:
                cur.execute(f"ALTER TABLE {table} ALTER COLUMN {key} DROP NOT NULL")
                cur.execute(f"UPDATE {table} SET {key} = NULL")

    return stage
