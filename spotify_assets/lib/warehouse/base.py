"""What every warehouse target gives: one interface, its results, and its SQL dialect.

A target is one module beside this one (`duckdb.py`, `snowflake.py`) defining a `DIALECT`
and a `WarehouseClient` implementation. Every write is window-exact and atomic: in ONE
transaction the selected rows (a window, the rows a condition selects, or the whole table)
are deleted and the new ones inserted, so a reader sees the old rows or the new ones, never
neither and never both, and other windows are never touched. Tables are created from their
declared columns (`lib/tables/schema.py`), so an empty window still leaves a typed table.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import DECLARED_TABLES, PARTITION_COLUMN, Column, Table
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


@dataclass
class WriteResult:
    rows_replaced: int  # rows of the same window (or table) that the write replaced
    table_rows: int  # rows in the whole table after the write


@dataclass
class AppendResult:
    rows_added: int  # rows of the frame that were not in the table (by key)
    table_rows: int  # rows in the table after the write


# fill: {table: (column, other table)}: before `table`'s rows go in, `column` is set to the rows
# added to `other table` (written earlier in the same call), so a registry row records the
# count of the very transaction that added them.
AppendFill = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class Dialect:
    """How one warehouse spells types and instants: defined once per target module."""

    name: str
    column_types: Mapping[str, str]  # declared column type (`schema.TYPES`) -> SQL type
    timestamp_type: str  # the cast that reads an ISO 8601 instant with offset
    # an undeclared frame column's pandas dtype -> SQL type (unlisted: text); datetimes apart
    dtype_sql: Mapping[str, str]
    aware_datetime_type: str  # datetime64[..., tz]
    naive_datetime_type: str  # datetime64[...]

    def sql_type(self, column: Column) -> str:
        return self.column_types[column.type]

    def dtype_type(self, dtype: Any) -> str:
        """The SQL type of a frame column of `dtype` that no table declares."""
        text = str(dtype)
        if text.startswith("datetime64"):
            return self.aware_datetime_type if "," in text else self.naive_datetime_type
        return self.dtype_sql.get(text, "VARCHAR")

    def create_table(self, table: Table, qualified_name: str) -> str:
        cols = ",\n".join(
            f"    {c.name} {self.sql_type(c)}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {qualified_name} (\n{cols}\n)"

    def timestamp(self, literal: str) -> str:
        """An instant (`Window.literals()` form) as a timestamp literal of the dialect."""
        return f"'{literal}'::{self.timestamp_type}"

    def window_predicate(self, window: Window) -> str:
        start, end = window.literals()
        return f"{PARTITION_COLUMN} >= {self.timestamp(start)} AND {PARTITION_COLUMN} < {self.timestamp(end)}"

    def where_window(self, window: Window | None) -> str:
        """` WHERE <the window>`, or '' for the whole table (window None)."""
        return "" if window is None else f" WHERE {self.window_predicate(window)}"


def dialect(name: str) -> Dialect:
    """The dialect of the target module `lib/warehouse/<name>.py`."""
    return importlib.import_module(f"{__package__}.{name}").DIALECT


class WarehouseClient(ABC):
    """One schema of one warehouse: what the IO managers, checks, views, features and the
    listening ingestion need. Reads return frames with lower-case column names."""

    dialect: Dialect
    schema_ref: str  # how SQL names the schema (`analytics`; `DATABASE.SCHEMA` in Snowflake)

    def qualified(self, name: str) -> str:
        return f"{self.schema_ref}.{name}"

    def render(self, sql: str, **values: object) -> str:
        return render(sql, self.schema_ref, **values)

    @abstractmethod
    def execute(self, statements: list[str]) -> None:
        """Run the statements (creating the schema first), in one transaction where the
        warehouse allows it."""

    @abstractmethod
    def reader(self) -> AbstractContextManager[Callable[[str], pd.DataFrame]]:
        """One connection for many queries: yields `query(sql)` -> frame, lower-case columns."""

    def query(self, sql: str) -> pd.DataFrame:
        with self.reader() as read:
            return read(sql)

    @abstractmethod
    def replace(self, table: str, frame: pd.DataFrame, window: Window | None, *, where: str | None = None) -> WriteResult:
        """In one transaction, replace `window` of `table` (the whole table when None; the rows
        the SQL condition `where` selects when given) by `frame`."""

    @abstractmethod
    def replace_window(self, frames: Mapping[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        """In ONE transaction, replace `window` of every table in `frames`: all change, or none."""

    @abstractmethod
    def append_new(self, frames: Mapping[str, pd.DataFrame], fill: AppendFill | None = None) -> dict[str, AppendResult]:
        """In ONE transaction, insert into each declared table (in order) the rows of its frame
        whose key is not in the table yet."""

    @abstractmethod
    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        """In one step, add the declared columns `table` lacks and replace all its rows by
        `frame`. Returns the rows it holds after."""

    @property
    @abstractmethod
    def catalog(self) -> tuple[str, str]:
        """Where the schema's tables are listed (information_schema), and the schema's name there."""

    def tables(self) -> set[str]:
        """The names (lower case) of the tables and views in the schema."""
        listing, schema = self.catalog
        found = self.query(f"SELECT table_name FROM {listing} WHERE table_schema = '{schema}'")
        return {str(name).lower() for name in found["table_name"]}

    def columns(self, name: str) -> pd.DataFrame:
        return describe_columns(self.query, self.catalog, name)


def describe_columns(query: Callable[[str], pd.DataFrame], catalog: tuple[str, str], name: str) -> pd.DataFrame:
    """The columns of table or view `name` as the warehouse describes them, in order:
    column_name, data_type, is_nullable (`catalog`: a client's)."""
    listing, schema = catalog
    columns = listing.rsplit(".", 1)[0] + (".COLUMNS" if listing.isupper() else ".columns")
    return query(
        f"SELECT column_name, data_type, is_nullable FROM {columns} "
        f"WHERE table_schema = '{schema}' AND lower(table_name) = '{name.lower()}' ORDER BY ordinal_position"
    )


def render(sql: str, schema: str, **values: object) -> str:
    """SQL written once for every target (`sql/`): `{schema}` becomes `schema` (the target's
    `schema_ref`), each `{name}` of `values` its value."""
    for name, value in {"schema": schema, **values}.items():
        sql = sql.replace("{" + name + "}", str(value))
    return sql


@contextmanager
def transaction(runner: Any) -> Iterator[None]:
    """BEGIN, then COMMIT, or ROLLBACK on any error; `runner` is anything with `execute`
    (a DuckDB connection, a Snowflake cursor)."""
    runner.execute("BEGIN")
    try:
        yield
        runner.execute("COMMIT")
    except BaseException:
        runner.execute("ROLLBACK")
        raise


def lower_case(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c).lower() for c in frame.columns]
    return frame


def conform_loaded(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A frame read back from a warehouse, with the dtypes it was written with."""
    lower_case(frame)
    spec = DECLARED_TABLES.get(table)
    return frame if spec is None else spec.conform(frame, partial=True)


def not_present(qualified: str, key: tuple[str, ...]) -> str:
    """The condition on staged rows `s` that their key is not in `qualified` yet."""
    match = " AND ".join(f"t.{c} = s.{c}" for c in key)
    return f"NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {match})"


def filled(table: str, frame: pd.DataFrame, fill: AppendFill | None, results: Mapping[str, AppendResult]) -> pd.DataFrame:
    """`frame` conformed to its declaration, with its `fill` column set from `results`."""
    if fill and table in fill:
        column, other = fill[table]
        frame = frame.assign(**{column: results[other].rows_added})
    return DECLARED_TABLES[table].conform(frame)
