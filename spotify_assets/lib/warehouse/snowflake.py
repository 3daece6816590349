"""The Snowflake target, through the Snowflake connector (imported only when rows are staged).

Rows travel to a temporary table by `write_pandas` (PUT + COPY INTO, the bulk path), then one
transaction swaps the window. DDL commits implicitly in Snowflake, so all of it (schema,
table, temporary table, stage) happens before the transaction opens. See `base.py` for the
contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import DECLARED_TABLES
from spotify_assets.lib.warehouse.base import (
    AppendFill,
    AppendResult,
    Dialect,
    WarehouseClient,
    WriteResult,
    lower_case,
    not_present,
    transaction,
)
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


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


_DTYPE_TYPES = {
    "object": "VARCHAR",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "int8": "NUMBER(3,0)",
    "int16": "NUMBER(5,0)",
    "int32": "NUMBER(10,0)",
    "int64": "NUMBER(19,0)",
    "Int8": "NUMBER(3,0)",
    "Int16": "NUMBER(5,0)",
    "Int32": "NUMBER(10,0)",
    "Int64": "NUMBER(19,0)",
    "float32": "FLOAT",
    "float64": "FLOAT",
    "Float64": "FLOAT",
}


DIALECT = Dialect(
    name="snowflake",
    column_types={
        "string": "VARCHAR",
        "int": "NUMBER(10,0)",
        "bigint": "NUMBER(19,0)",
        "bool": "BOOLEAN",
        "double": "FLOAT",
        "date": "DATE",
        "timestamp": "TIMESTAMP_TZ(6)",
    },
    timestamp_type="TIMESTAMP_TZ",
    dtype_sql=_DTYPE_TYPES,
    aware_datetime_type="TIMESTAMP_TZ(6)",
    naive_datetime_type="TIMESTAMP_NTZ(6)",
)


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
                cur.execute(DIALECT.create_table(spec, qualified))
            else:
                # An undeclared table takes the frame's columns: whole-table writes recreate it.
                cols = ", ".join(f"{str(c).upper()} {DIALECT.dtype_type(t)}" for c, t in frame.dtypes.items())
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
            selected = f" WHERE {where}" if where is not None else DIALECT.where_window(window)
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
            cur.execute(DIALECT.create_table(spec, qualified))
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
                    f"WHERE {not_present(qualified, tuple(c.upper() for c in spec.key))}"
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
                cur.execute(f"ALTER TABLE {qualified} ADD COLUMN {column.name.upper()} {DIALECT.sql_type(column)}")
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


class SnowflakeClient(WarehouseClient):
    """One schema of a Snowflake database. `connect()` opens a connector connection (a
    context manager); `stage` moves a frame's rows into a temporary table."""

    dialect = DIALECT

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Any]],
        database: str,
        schema: str,
        stage: StageFn = stage_with_write_pandas,
    ):
        self.connect = connect
        self.database = database
        self.schema = schema
        self.schema_ref = f"{database}.{schema}".upper()
        self.stage = stage

    def execute(self, statements: list[str]) -> None:
        # CREATE VIEW is DDL: Snowflake commits each one by itself.
        with self.connect() as conn, conn.cursor() as cur:
            ensure_snowflake_schema(cur, self.database, self.schema)
            for statement in statements:
                cur.execute(statement)

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], pd.DataFrame]]:
        with self.connect() as conn:
            yield lambda sql: lower_case(fetch(conn, sql))

    def replace(self, table: str, frame: pd.DataFrame, window: Window | None, *, where: str | None = None) -> WriteResult:
        with self.connect() as conn:
            return snowflake_replace(conn, self.database, self.schema, table, frame, window, self.stage, where=where)

    def replace_window(self, frames: Mapping[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        with self.connect() as conn:
            return snowflake_replace_window(conn, self.database, self.schema, frames, window, self.stage)

    def append_new(self, frames: Mapping[str, pd.DataFrame], fill: AppendFill | None = None) -> dict[str, AppendResult]:
        with self.connect() as conn:
            return snowflake_append_new(conn, self.database, self.schema, frames, fill, self.stage)

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        with self.connect() as conn:
            return snowflake_rewrite_table(conn, self.database, self.schema, table, frame, self.stage)

    @property
    def catalog(self) -> tuple[str, str]:
        return f"{self.database}.INFORMATION_SCHEMA.TABLES".upper(), self.schema.upper()


def fetch(conn: Any, sql: str) -> pd.DataFrame:
    """The result of one query on a connector connection, as a frame (columns as Snowflake names them)."""
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_pandas_all()
