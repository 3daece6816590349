"""Window-exact, atomic table writes for DuckDB and Snowflake, and the locks DuckDB needs.

Writing a window means: in ONE transaction, delete that window's rows and insert the new
ones. A reader sees the old window or the new one, never neither and never both; a failure
anywhere leaves the table as it was; other windows are never touched. Tables are created
from their declared columns (`lib/tables/schema.py`), so an empty window still leaves a typed table.

DuckDB lets one process write a database file at a time. Every connection made here first
takes an OS file lock next to the database (shared to read, exclusive to write), so parallel
steps and backfill runs queue for the file instead of failing on DuckDB's own lock.

A window of the six normalized tables is written the same way, all six in ONE transaction
(`duckdb_replace_window`, `snowflake_replace_window`): after a failure or a crash at any
point, every table shows the old window or every table shows the new one.

Snowflake: rows travel to a temporary table by `write_pandas` (PUT + COPY INTO, the bulk
path), then one transaction swaps the window. DDL commits implicitly in Snowflake, so all of
it (schema, table, temporary table, stage) happens before the transaction opens.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import DECLARED_TABLES, PARTITION_COLUMN

from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


class WarehouseLockTimeout(TimeoutError):
    pass


@dataclass
class WriteResult:
    rows_replaced: int  # rows of the same window (or table) that the write replaced
    table_rows: int  # rows in the whole table after the write


# --- DuckDB -------------------------------------------------------------------------------


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


def _duckdb_type(dtype: Any) -> str:
    text = str(dtype)
    if text.startswith("datetime64") and "," in text:
        return "TIMESTAMPTZ"
    if text.startswith("datetime64"):
        return "TIMESTAMP"
    return _PANDAS_TO_DUCKDB.get(text, "VARCHAR")


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
        conn.execute(spec.duckdb_ddl(qualified))
    else:
        # An undeclared table takes the frame's columns: whole-table writes recreate it.
        cols = ", ".join(f'"{c}" {_duckdb_type(t)}' for c, t in frame.dtypes.items())
        create = "CREATE OR REPLACE TABLE" if window is None else "CREATE TABLE IF NOT EXISTS"
        conn.execute(f"{create} {qualified} ({cols})")
    selected = f" WHERE {where}" if where is not None else where_window(window, "duckdb")
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


@contextmanager
def transaction(runner: Any) -> Iterator[None]:
    """BEGIN, then COMMIT, or ROLLBACK on any error; `runner` is a DuckDB connection or a
    Snowflake cursor (anything with `execute`)."""
    runner.execute("BEGIN")
    try:
        yield
        runner.execute("COMMIT")
    except BaseException:
        runner.execute("ROLLBACK")
        raise


def window_predicate(window: Window, dialect: str) -> str:
    start, end = window.literals()
    cast = "TIMESTAMPTZ" if dialect == "duckdb" else "TIMESTAMP_TZ"
    return (
        f"{PARTITION_COLUMN} >= '{start}'::{cast} AND {PARTITION_COLUMN} < '{end}'::{cast}"
    )


def where_window(window: Window | None, dialect: str) -> str:
    """` WHERE <the window>`, or '' for the whole table (window None)."""
    return "" if window is None else f" WHERE {window_predicate(window, dialect)}"


def conform_loaded(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A frame read back from a warehouse, with the dtypes it was written with."""
    frame.columns = [str(c).lower() for c in frame.columns]
    spec = DECLARED_TABLES.get(table)
    return frame if spec is None else spec.conform(frame, partial=True)


# --- Snowflake ------------------------------------------------------------------------------


def stage_with_write_pandas(conn: Any, frame: pd.DataFrame, table: str) -> None:
    """Bulk-load `frame` into an existing temporary table of the session's current schema:
    PUT to a temporary stage, then COPY INTO."""
    from snowflake.connector.pandas_tools import write_pandas

    ok, _chunks, rows, _ = write_pandas(
        conn=conn,
        df=frame,
        table_name=table,
        auto_create_table=False,
        overwrite=False,
        quote_identifiers=False,
        use_logical_type=True,
    )
    if not ok or rows != len(frame):
        raise RuntimeError(f"write_pandas loaded {rows} of {len(frame)} rows into {table}")


# The step that moves rows to Snowflake. Production uses PUT + COPY INTO; a Snowflake emulator
# that does not implement file transfer may be given another way to fill the same table.
StageFn = Callable[[Any, "pd.DataFrame", str], None]


def _snowflake_type(dtype: Any) -> str:
    ddb = _duckdb_type(dtype)
    return {
        "TIMESTAMPTZ": "TIMESTAMP_TZ(6)",
        "TIMESTAMP": "TIMESTAMP_NTZ(6)",
        "DOUBLE": "FLOAT",
        "TINYINT": "NUMBER(3,0)",
        "SMALLINT": "NUMBER(5,0)",
        "INTEGER": "NUMBER(10,0)",
        "BIGINT": "NUMBER(19,0)",
        "FLOAT": "FLOAT",
    }.get(ddb, ddb)


def snowflake_replace(
    conn: Any,
    database: str,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    window: Window | None,
    stage: StageFn = stage_with_write_pandas,
    *,
    where: str | None = None,
) -> WriteResult:
    """Replace one window of DATABASE.SCHEMA.TABLE (the whole table when window is None, the rows
    `where` selects when given)."""
    return _snowflake_swap(conn, database, schema, {table: frame}, window, stage, where)[table]


def snowflake_replace_window(
    conn: Any,
    database: str,
    schema: str,
    frames: Mapping[str, pd.DataFrame],
    window: Window,
    stage: StageFn = stage_with_write_pandas,
) -> dict[str, WriteResult]:
    """Replace one window of several tables in ONE transaction (every table's rows are staged
    first): every table holds the old window, or every table holds the new one."""
    return _snowflake_swap(conn, database, schema, frames, window, stage, None)


def _snowflake_swap(
    conn: Any,
    database: str,
    schema: str,
    frames: Mapping[str, pd.DataFrame],
    window: Window | None,
    stage: StageFn,
    where: str | None,
) -> dict[str, WriteResult]:
    cur = conn.cursor()
    temps: list[str] = []
    try:
        ensure_snowflake_schema(cur, database, schema)
        # DDL commits implicitly in Snowflake: tables and temporary tables are made, and every
        # frame staged, before the one transaction that swaps the rows opens.
        staged: list[tuple[str, str, str]] = []  # (table, qualified, temporary table)
        for table, frame in frames.items():
            spec = DECLARED_TABLES.get(table)
            if spec is not None:
                frame = spec.conform(frame)
            qualified = f"{database}.{schema}.{table}".upper()
            if spec is not None:
                cur.execute(spec.snowflake_ddl(qualified))
            else:
                # An undeclared table takes the frame's columns: whole-table writes recreate it.
                cols = ", ".join(f"{str(c).upper()} {_snowflake_type(t)}" for c, t in frame.dtypes.items())
                create = "CREATE OR REPLACE TABLE" if window is None else "CREATE TABLE IF NOT EXISTS"
                cur.execute(f"{create} {qualified} ({cols})")
            # A temporary table lives in the session's current schema and vanishes with the
            # session, so an interrupted load leaves nothing behind.
            cur.execute(f"USE SCHEMA {database}.{schema}".upper())
            temp = f"{table}__load_{uuid.uuid4().hex[:12]}".upper()
            cur.execute(f"CREATE TEMPORARY TABLE {temp} LIKE {qualified}")
            temps.append(temp)
            upper = frame.rename(columns=lambda c: str(c).upper())
            stage(conn, upper, temp)
            staged.append((table, qualified, ", ".join(upper.columns)))
        results: dict[str, WriteResult] = {}
        with transaction(cur):
            selected = f" WHERE {where}" if where is not None else where_window(window, "snowflake")
            for (table, qualified, columns), temp in zip(staged, temps):
                cur.execute(f"DELETE FROM {qualified}{selected}")
                replaced = _affected(cur)
                cur.execute(f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {temp}")
                cur.execute(f"SELECT count(*) FROM {qualified}")
                results[table] = WriteResult(replaced, int(cur.fetchone()[0]))
        return results
    finally:
        _drop_and_close(cur, temps)


def _drop_and_close(cur: Any, temps: list[str]) -> None:
    for temp in temps:
        # Only tidiness: a temporary table goes with the session anyway, and a failed DROP
        # must not hide the error that brought us here.
        with suppress(Exception):
            cur.execute(f"DROP TABLE IF EXISTS {temp}")
    cur.close()


def ensure_snowflake_schema(cur: Any, database: str, schema: str) -> None:
    """Create the schema only when it is missing: Snowflake checks the CREATE SCHEMA privilege
    even for IF NOT EXISTS, and the pipeline's role does not need it once setup.sql has run."""
    cur.execute(f"SHOW SCHEMAS IN DATABASE {database.upper()}")
    name_at = [str(d[0]).lower() for d in cur.description].index("name")
    if not any(str(row[name_at]).upper() == schema.upper() for row in cur.fetchall()):
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}".upper())


def _affected(cur: Any) -> int:
    if cur.rowcount is not None and cur.rowcount >= 0:
        return int(cur.rowcount)
    row = cur.fetchone()
    return int(row[0]) if row else 0


# --- Appending new rows by key (the listening history) -------------------------------------
#
# `streams` is unique by play, not by file: each export file's plays are appended in ONE
# transaction together with the file's registry row, inserting only rows whose key is not in
# the table yet, so any re-export (cumulative, overlapping, the same file twice) adds only new
# plays, and a crash leaves the file either wholly recorded or not at all.


@dataclass
class AppendResult:
    rows_added: int  # rows of the frame that were not in the table (by key)
    table_rows: int  # rows in the table after the write


def _not_present(qualified: str, source: str, key: tuple[str, ...]) -> str:
    match = " AND ".join(f"t.{c} = s.{c}" for c in key)
    return f"NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {match})"


# fill: {table: (column, other table)}: before `table`'s rows go in, `column` is set to the rows
# added to `other table` (written earlier in the same call), so a registry row records the
# count of the very transaction that added them.
AppendFill = Mapping[str, tuple[str, str]]


def _filled(table: str, frame: pd.DataFrame, fill: AppendFill | None, results: Mapping[str, AppendResult]) -> pd.DataFrame:
    if fill and table in fill:
        column, other = fill[table]
        frame = frame.assign(**{column: results[other].rows_added})
    return DECLARED_TABLES[table].conform(frame)


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
            frame = _filled(table, frame, fill, results)
            conn.execute(spec.duckdb_ddl(qualified))
            before = conn.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0]
            name = f"_append_{table}"
            conn.register(name, frame)
            try:
                columns = ", ".join(spec.column_names)
                conn.execute(
                    f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {name} s "
                    f"WHERE {_not_present(qualified, 's', spec.key)}"
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
                conn.execute(f"ALTER TABLE {qualified} ADD COLUMN {column.name} {column.sql_type('duckdb')}")
        conn.execute(f"DELETE FROM {qualified}").fetchall()
        conn.register("_rewrite_frame", frame)
        try:
            columns = ", ".join(spec.column_names)
            conn.execute(f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM _rewrite_frame").fetchall()
        finally:
            with suppress(duckdb.Error):
                conn.unregister("_rewrite_frame")
        return int(conn.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0])


def snowflake_append_new(
    conn: Any,
    database: str,
    schema: str,
    frames: Mapping[str, pd.DataFrame],
    fill: AppendFill | None = None,
    stage: StageFn = stage_with_write_pandas,
) -> dict[str, AppendResult]:
    """`duckdb_append_new` for Snowflake: every frame is staged first (DDL commits implicitly),
    then ONE transaction inserts the rows whose key is not in each table yet (a `fill` column
    is set in the staged rows inside that transaction)."""
    cur = conn.cursor()
    temps: list[str] = []
    try:
        ensure_snowflake_schema(cur, database, schema)
        staged: list[tuple[str, str, str]] = []
        for table, frame in frames.items():
            spec = DECLARED_TABLES[table]
            qualified = f"{database}.{schema}.{table}".upper()
            cur.execute(spec.snowflake_ddl(qualified))
            cur.execute(f"USE SCHEMA {database}.{schema}".upper())
            temp = f"{table}__append_{uuid.uuid4().hex[:12]}".upper()
            cur.execute(f"CREATE TEMPORARY TABLE {temp} LIKE {qualified}")
            temps.append(temp)
            upper = spec.conform(frame).rename(columns=lambda c: str(c).upper())
            stage(conn, upper, temp)
            staged.append((table, qualified, temp))
        results: dict[str, AppendResult] = {}
        with transaction(cur):
            for table, qualified, temp in staged:
                spec = DECLARED_TABLES[table]
                columns = ", ".join(c.upper() for c in spec.column_names)
                if fill and table in fill:
                    column, other = fill[table]
                    cur.execute(f"UPDATE {temp} SET {column.upper()} = {int(results[other].rows_added)}")
                cur.execute(f"SELECT count(*) FROM {qualified}")
                before = int(cur.fetchall()[0][0])
                cur.execute(
                    f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {temp} s "
                    f"WHERE {_not_present(qualified, 's', tuple(c.upper() for c in spec.key))}"
                )
                cur.execute(f"SELECT count(*) FROM {qualified}")
                after = int(cur.fetchall()[0][0])
                results[table] = AppendResult(after - before, after)
        return results
    finally:
        _drop_and_close(cur, temps)


def snowflake_rewrite_table(
    conn: Any, database: str, schema: str, table: str, frame: pd.DataFrame, stage: StageFn = stage_with_write_pandas
) -> int:
    """`duckdb_rewrite_table` for Snowflake: the missing columns are added (DDL, nullable, each
    commits by itself: harmless), the rows staged, then ONE transaction replaces all rows."""
    spec = DECLARED_TABLES[table]
    qualified = f"{database}.{schema}.{table}".upper()
    frame = spec.conform(frame)
    cur = conn.cursor()
    temp = f"{table}__rewrite_{uuid.uuid4().hex[:12]}".upper()
    try:
        cur.execute(
            f"SELECT column_name FROM {database.upper()}.INFORMATION_SCHEMA.COLUMNS "
            f"WHERE table_schema = '{schema.upper()}' AND table_name = '{table.upper()}'"
        )
        present = {str(r[0]).lower() for r in cur.fetchall()}
        for column in spec.columns:
            if column.name not in present:
                cur.execute(f"ALTER TABLE {qualified} ADD COLUMN {column.name.upper()} {column.sql_type('snowflake')}")
        cur.execute(f"USE SCHEMA {database}.{schema}".upper())
        cur.execute(f"CREATE TEMPORARY TABLE {temp} LIKE {qualified}")
        stage(conn, frame.rename(columns=lambda c: str(c).upper()), temp)
        columns = ", ".join(c.upper() for c in spec.column_names)
        with transaction(cur):
            cur.execute(f"DELETE FROM {qualified}")
            cur.execute(f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {temp}")
            cur.execute(f"SELECT count(*) FROM {qualified}")
            return int(cur.fetchall()[0][0])
    finally:
        _drop_and_close(cur, [temp])
