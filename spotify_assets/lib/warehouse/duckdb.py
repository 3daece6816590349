"""The DuckDB target: a file under the data directory, and the locks it needs.

DuckDB lets one process write a database file at a time. Every connection made here first
takes an OS file lock next to the database (shared to read, exclusive to write), so parallel
steps and backfill runs queue for the file instead of failing on DuckDB's own lock.

A window of the six normalized tables is written all six in ONE transaction
(`duckdb_replace_window`): after a failure or a crash at any point, every table shows the old
window or every table shows the new one. See `base.py` for the contract.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import DECLARED_TABLES
from spotify_assets.lib.warehouse.base import (
    AppendFill,
    AppendResult,
    Dialect,
    WarehouseClient,
    WriteResult,
    filled,
    lower_case,
    not_present,
    transaction,
)
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


class WarehouseLockTimeout(TimeoutError):
    pass


_PANDAS_TO_DUCKDB = {
    "object": "VARCHAR",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "Int8": "TINYINT",
    "Int16": "SMALLINT",
    "Int32": "INTEGER",
    "Int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "Float64": "DOUBLE",
}


DIALECT = Dialect(
    name="duckdb",
    column_types={
        "string": "VARCHAR",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "double": "DOUBLE",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
    },
    timestamp_type="TIMESTAMPTZ",
    dtype_sql=_PANDAS_TO_DUCKDB,
    aware_datetime_type="TIMESTAMPTZ",
    naive_datetime_type="TIMESTAMP",
)


# DuckDB settings for every connection to the warehouse file (a connection's own config wins).
# max_vacuum_tasks=0: no checkpoint merges partly filled row groups. Each window's insert then
# keeps its own row groups, so writing a window never rewrites another window's storage (with
# DuckDB's default, every few windows a checkpoint rewrote the last 2-3 row groups: ~1 s at 42k
# songs a window, 6x the write itself), and replacing a window deletes whole row groups, which
# a checkpoint drops and whose blocks the next write reuses; the file stays smaller, too (see
# the history step of spotify_assets_tests/benchmarks/warehouse.py).
DUCKDB_DEFAULT_CONFIG: dict[str, Any] = {"custom_user_agent": "spotify-assets", "max_vacuum_tasks": 0}


class DuckDBDatabase:
    """A DuckDB file and the lock that serializes the processes using it."""

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout_s: float = 600.0, log: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s
        self._log = log or (lambda message: None)

    @contextmanager
    def connect(self, *, write: bool, config: dict[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection holding the file lock (exclusive when `write`), session time zone UTC."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._file_lock(exclusive=write):
            conn = self._open(write, config or {})
            try:
                conn.execute("SET TimeZone = 'UTC'")
                yield conn
            finally:
                conn.close()

    def _open(self, write: bool, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
        # Our own processes queue on the file lock; a process outside it (a DuckDB shell left
        # open on the file, say) can still hold DuckDB's lock: wait for it a while, then say so.
        read_only = not write and self.path.exists()
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config={**DUCKDB_DEFAULT_CONFIG, **config})
            except duckdb.IOException as err:
                if "lock" not in str(err).lower() or time.monotonic() >= deadline:
                    raise WarehouseLockTimeout(
                        f"could not open the DuckDB warehouse {self.path}: {err}. Another program has it "
                        "open; close it (a DuckDB shell or notebook, say) and run again."
                    ) from err
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    @contextmanager
    def _file_lock(self, *, exclusive: bool) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
            started = time.monotonic()
            waiting = False
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if not waiting:
                    self._log(f"waiting for the DuckDB warehouse {self.path}: another step is using it")
                    waiting = True
                if time.monotonic() - started > self.lock_timeout_s:
                    raise WarehouseLockTimeout(
                        f"waited {self.lock_timeout_s:g} s for the DuckDB warehouse {self.path} "
                        f"(lock file {self.lock_path}); another run holds it"
                    )
                time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def duckdb_replace(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    window: Window | None,
    *,
    where: str | None = None,
) -> WriteResult:
    """Replace one window of `schema.table` (or the whole table when window is None) with `frame`.
    `where` (an SQL condition) replaces the rows it selects instead of a window."""
    with transaction(conn):
        return _duckdb_swap(conn, schema, table, frame, window, where)


def duckdb_replace_window(
    conn: duckdb.DuckDBPyConnection, schema: str, frames: Mapping[str, pd.DataFrame], window: Window
) -> dict[str, WriteResult]:
    """Replace one window of several tables in ONE transaction: after a failure or a crash at
    any point, every table holds the old window, or every table holds the new one."""
    with transaction(conn):
        return {table: _duckdb_swap(conn, schema, table, frame, window, None) for table, frame in frames.items()}


def _duckdb_swap(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    window: Window | None,
    where: str | None,
) -> WriteResult:
    """Inside an open transaction: create the table if missing, delete the selected rows, insert."""
    spec = DECLARED_TABLES.get(table)
    qualified = f"{schema}.{table}"
    if spec is not None:
        frame = spec.conform(frame)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if spec is not None:
        conn.execute(DIALECT.create_table(spec, qualified))
    else:
        # An undeclared table takes the frame's columns: whole-table writes recreate it.
        cols = ", ".join(f'"{c}" {DIALECT.dtype_type(t)}' for c, t in frame.dtypes.items())
        create = "CREATE OR REPLACE TABLE" if window is None else "CREATE TABLE IF NOT EXISTS"
        conn.execute(f"{create} {qualified} ({cols})")
    selected = f" WHERE {where}" if where is not None else DIALECT.where_window(window)
    replaced = conn.execute(f"DELETE FROM {qualified}{selected}").fetchone()[0]
    conn.register("_frame_to_write", frame)
    try:
        conn.execute(f"INSERT INTO {qualified} BY NAME SELECT * FROM _frame_to_write")
    finally:
        # In a transaction the failed INSERT aborted, unregistering fails too: the INSERT's
        # error is the one to report (the next register of the name replaces this one).
        with suppress(duckdb.Error):
            conn.unregister("_frame_to_write")
    total = conn.execute(f"SELECT count(*) FROM {qualified}").fetchone()[0]
    return WriteResult(int(replaced), int(total))


# --- Appending new rows by key (the listening history) -------------------------------------
#
# `streams` is unique by play, not by file: each export file's plays are appended in ONE
# transaction together with the file's registry row, inserting only rows whose key is not in
# the table yet, so any re-export (cumulative, overlapping, the same file twice) adds only new
# plays, and a crash leaves the file either wholly recorded or not at all.


def duckdb_append_new(
    conn: duckdb.DuckDBPyConnection, schema: str, frames: Mapping[str, pd.DataFrame], fill: AppendFill | None = None
) -> dict[str, AppendResult]:
    """In ONE transaction, insert into each declared table (in order) the rows of its frame
    whose key (the declaration's) is not in the table yet; tables are created from their
    declarations."""
    results: dict[str, AppendResult] = {}
    with transaction(conn):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table, frame in frames.items():
            spec = DECLARED_TABLES[table]
            qualified = f"{schema}.{table}"
            frame = filled(table, frame, fill, results)
            conn.execute(DIALECT.create_table(spec, qualified))
            before = conn.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0]
            name = f"_append_{table}"
            conn.register(name, frame)
            try:
                columns = ", ".join(spec.column_names)
                conn.execute(
                    f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {name} s "
                    f"WHERE {not_present(qualified, spec.key)}"
                ).fetchall()
            finally:
                with suppress(duckdb.Error):
                    conn.unregister(name)
            after = conn.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0]
            results[table] = AppendResult(int(after - before), int(after))
    return results


def duckdb_rewrite_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pd.DataFrame) -> int:
    """Upgrade a declared table in place, in ONE transaction: add the declared columns it lacks,
    then replace all its rows with `frame`. Returns the rows it holds after."""
    spec = DECLARED_TABLES[table]
    qualified = f"{schema}.{table}"
    frame = spec.conform(frame)
    with transaction(conn):
        present = {r[0].lower() for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", [schema, table]
        ).fetchall()}
        for column in spec.columns:
            if column.name not in present:
                conn.execute(f"ALTER TABLE {qualified} ADD COLUMN {column.name} {DIALECT.sql_type(column)}")
        conn.execute(f"DELETE FROM {qualified}").fetchall()
        conn.register("_rewrite_frame", frame)
        try:
            columns = ", ".join(spec.column_names)
            conn.execute(f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM _rewrite_frame").fetchall()
        finally:
            with suppress(duckdb.Error):
                conn.unregister("_rewrite_frame")
        return int(conn.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0])


class DuckDBClient(WarehouseClient):
    """One schema of a DuckDB file; every call opens a connection that holds the file lock."""

    dialect = DIALECT

    def __init__(self, db: DuckDBDatabase, schema: str):
        self.db = db
        self.schema_ref = schema

    def execute(self, statements: list[str]) -> None:
        with self.db.connect(write=True) as conn, transaction(conn):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_ref}")
            for statement in statements:
                conn.execute(statement)

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], pd.DataFrame]]:
        with self.db.connect(write=False) as conn:
            yield lambda sql: lower_case(conn.execute(sql).fetchdf())

    def replace(self, table: str, frame: pd.DataFrame, window: Window | None, *, where: str | None = None) -> WriteResult:
        with self.db.connect(write=True) as conn:
            return duckdb_replace(conn, self.schema_ref, table, frame, window, where=where)

    def replace_window(self, frames: Mapping[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        with self.db.connect(write=True) as conn:
            return duckdb_replace_window(conn, self.schema_ref, frames, window)

    def append_new(self, frames: Mapping[str, pd.DataFrame], fill: AppendFill | None = None) -> dict[str, AppendResult]:
        with self.db.connect(write=True) as conn:
            return duckdb_append_new(conn, self.schema_ref, frames, fill)

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        with self.db.connect(write=True) as conn:
            return duckdb_rewrite_table(conn, self.schema_ref, table, frame)

    @property
    def catalog(self) -> tuple[str, str]:
        return "information_schema.tables", self.schema_ref
