"""IO managers for the warehouse tables: DuckDB locally, Snowflake in production (its manager
is in `spotify_assets/production.py`, imported only by that deployment).

Both build on the upstream integrations (dagster-duckdb-pandas, dagster-snowflake-pandas)
and keep their table naming, schema handling and reads, but write through the target's
module under `lib/warehouse/` (the code path of the `warehouse` resource too), which fixes
what the upstream managers get wrong for partitioned tables:

- the window's rows are deleted and the new ones inserted in ONE transaction (upstream
  deletes, commits, then inserts: a failed insert loses the window, dagster#14091);
- the delete covers exactly the window (UTC instants, not the session time zone);
- an empty frame writes an empty window into a typed table instead of being skipped or
  crashing (dagster#24172);
- DuckDB writers queue on a file lock, so parallel steps of a backfill wait for each other
  instead of failing on DuckDB's single-writer lock.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import (
    DbClient,
    DbIOManager,
    DbTypeHandler,
    TableSlice,
)
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster_duckdb import DuckDBIOManager

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.raw.store import remove_stale_temporaries, write_atomically
from spotify_assets.lib.tables.schema import DECLARED_TABLES
from spotify_assets.lib.warehouse import duckdb as duckdb_target
from spotify_assets.lib.warehouse.base import Dialect, WriteResult, conform_loaded, dialect
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    np = lazy("numpy")
    pd = lazy("pandas")

PREVIEW_ROWS = 5


def _window(table_slice: TableSlice) -> Window | None:
    """The time window of a partitioned slice (None: the whole table)."""
    if not table_slice.partition_dimensions:
        return None
    partitions = table_slice.partition_dimensions[0].partitions
    if not isinstance(partitions, TimeWindow):
        raise dg.DagsterInvariantViolationError(
            f"table {table_slice.table}: only time-window partitions are supported, got {partitions!r}"
        )
    return Window(partitions.start, partitions.end)


def column_schema(table: str, storage: str) -> dg.TableSchema:
    """A declared table's columns as the UI shows them, with the warehouse's own type names."""
    types = dialect(storage)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                types.sql_type(c).lower(),
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in DECLARED_TABLES[table].columns
        ]
    )


def write_metadata(context: dg.OutputContext, table: str, frame: pd.DataFrame, result: WriteResult, storage: str) -> dict[str, Any]:
    """What a table's materialization shows: counts, its column schema, a preview."""
    return table_metadata(table, frame, result, storage, partitioned=context.has_asset_partitions)


def table_metadata(table: str, frame: pd.DataFrame, result: WriteResult, storage: str, *, partitioned: bool) -> dict[str, Any]:
    """What a table's materialization shows: its rows (the whole table's as `dagster/row_count`,
    which the asset's Overview shows as "Row count"; a window's as `dagster/partition_row_count`,
    when `partitioned`), the rows replaced, its column schema, a preview of every column."""
    if table in DECLARED_TABLES:
        schema = column_schema(table, storage)
    else:
        schema = dg.TableSchema(columns=[dg.TableColumn(str(n), str(t)) for n, t in frame.dtypes.items()])
    counts = {"dagster/row_count": result.table_rows}
    if partitioned:
        counts["dagster/partition_row_count"] = len(frame)
    return {
        **counts,
        "dagster/storage_kind": storage,
        "dagster/column_schema": schema,
        "rows_replaced": result.rows_replaced,
        "preview": preview_table(frame, schema=schema),
    }


def round_float(value: float) -> float | None:
    """A float as far as it is meaningful to a reader: 3 decimals, or 3 significant digits below
    1 (a share of 0.00042 stays 0.00042); NaN is None."""
    if math.isnan(value):
        return None
    if math.isinf(value) or value == 0:
        return value
    digits = 3 if abs(value) >= 1 else 2 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def cell(value: object) -> str | int | float | bool | None:
    """One value as a TableRecord holds it (str, int, float, bool or None): numpy scalars as
    Python numbers, floats rounded, NaN/NaT/NA as None, instants as `2026-12-03 00:00:00 UTC`,
    dates in ISO 8601, lists and mappings as JSON."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        return round_float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # NaT stays NaT
    if value is pd.NaT:
        return None
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _instant(value: datetime) -> str:
    """`2026-12-03 00:00:00 UTC`: short enough for a preview's column, and says the zone."""
    text = value.strftime("%Y-%m-%d %H:%M:%S") + (f".{value.microsecond:06d}".rstrip("0") if value.microsecond else "")
    if value.tzinfo is None:
        return text
    offset = value.utcoffset()
    return f"{text} UTC" if not offset else f"{text}{value.strftime('%z')}"


def records_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | dg.TableSchema | None = None) -> dg.TableMetadataValue:
    """Records (name -> value) as a table the UI draws inline: every column (`columns`, or in
    first-seen order), every value converted by `cell`."""
    if isinstance(columns, dg.TableSchema):
        names = [c.name for c in columns.columns]
    else:
        names = list(columns) if columns is not None else list(dict.fromkeys(str(c) for r in rows for c in r))
    records = [{n: cell(r.get(n)) for n in names} for r in rows]
    if not isinstance(columns, dg.TableSchema):
        columns = dg.TableSchema(columns=[dg.TableColumn(n, _type_name(records, n)) for n in names])
    return dg.MetadataValue.table(records=[dg.TableRecord(r) for r in records], schema=columns)


def _type_name(records: list[dict[str, Any]], name: str) -> str:
    kinds = {type(r[name]) for r in records if r[name] is not None}
    return {bool: "bool", int: "int", float: "float"}.get(kinds.pop(), "string") if len(kinds) == 1 else "string"


def preview_table(frame: pd.DataFrame, rows: int = PREVIEW_ROWS, schema: dg.TableSchema | None = None) -> dg.TableMetadataValue:
    """The first `rows` rows of a frame with every one of its columns, typed by `schema` (the
    table's or view's column schema) where it names them, else by the frame's dtypes."""
    known = {c.name: c for c in schema.columns} if schema is not None else {}
    columns = [known.get(str(n)) or dg.TableColumn(str(n), str(t)) for n, t in frame.dtypes.items()]
    head = frame.head(rows)
    head.columns = [str(c) for c in head.columns]
    return records_table(head.astype(object).to_dict("records"), dg.TableSchema(columns=columns))


# --- shared by both warehouses ------------------------------------------------------------


class _WindowClient(DbClient):
    """Schema creation and the window's delete happen inside the write (with the insert, in
    one transaction), so the upstream manager's own steps are no-ops here. Each warehouse
    says how it names a table, connects, and (through its `lib/warehouse/` module) replaces a
    window and fetches a query's frame."""

    dialect: Dialect

    def qualified(self, table_slice: TableSlice) -> str:
        raise NotImplementedError

    def replace(self, connection, table_slice: TableSlice, frame: pd.DataFrame, window: Window | None) -> WriteResult:
        raise NotImplementedError

    def fetch(self, connection, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def ensure_schema_exists(self, context, table_slice: TableSlice, connection) -> None:  # type: ignore[override]
        pass

    def delete_table_slice(self, context, table_slice: TableSlice, connection) -> None:  # type: ignore[override]
        pass

    def get_select_statement(self, table_slice: TableSlice) -> str:  # type: ignore[override]
        columns = ", ".join(table_slice.columns) if table_slice.columns else "*"
        return f"SELECT {columns} FROM {self.qualified(table_slice)}{self.dialect.where_window(_window(table_slice))}"


class _FrameHandler(DbTypeHandler):  # of pd.DataFrame, not subscripted: pandas loads on first use
    """Writes a frame as one window (or the whole table) and reads it back with its dtypes."""

    def __init__(self, client: _WindowClient):
        self.client = client

    def handle_output(self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection) -> Mapping[str, Any]:
        result = self.client.replace(connection, table_slice, obj, _window(table_slice))
        context.log.info(
            f"{self.client.qualified(table_slice)}: wrote {len(obj)} rows, replaced {result.rows_replaced}; "
            f"the table now has {result.table_rows}"
        )
        return write_metadata(context, table_slice.table, obj, result, self.client.dialect.name)

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        frame = self.client.fetch(connection, self.client.get_select_statement(table_slice))
        return conform_loaded(table_slice.table, frame)

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame]


def _io_manager(client: _WindowClient, database: str, schema: str | None, name: str) -> DbIOManager:
    return DbIOManager(
        db_client=client,
        database=database,
        schema=schema,
        type_handlers=[_FrameHandler(client)],
        default_load_type=pd.DataFrame,
        io_manager_name=name,
    )


# --- DuckDB -------------------------------------------------------------------------------


class _DuckDBClient(_WindowClient):
    """Connections that hold the warehouse file lock."""

    dialect = duckdb_target.DIALECT

    def __init__(self, lock_timeout_s: float):
        self.lock_timeout_s = lock_timeout_s

    def qualified(self, table_slice: TableSlice) -> str:
        return f"{table_slice.schema}.{table_slice.table}"

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[Any]:  # type: ignore[override]
        config = context.resource_config or {}
        db = duckdb_target.DuckDBDatabase(config["database"], lock_timeout_s=self.lock_timeout_s, log=context.log.info)
        with db.connect(write=isinstance(context, dg.OutputContext), config=config.get("connection_config") or {}) as conn:
            yield conn

    def replace(self, connection, table_slice, frame, window):  # type: ignore[no-untyped-def]
        return duckdb_target.duckdb_replace(connection, table_slice.schema, table_slice.table, frame, window)

    def fetch(self, connection, sql: str) -> pd.DataFrame:
        return connection.execute(sql).fetchdf()


class WarehouseDuckDBIOManager(DuckDBIOManager):
    """Pandas DataFrames to and from DuckDB tables, one window per write, atomically.

    Configured like dagster-duckdb-pandas's `DuckDBPandasIOManager` (database, schema,
    connection_config), built on its base so that loading the code location needs no pandas."""

    lock_timeout_seconds: float = 600.0

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return []  # create_io_manager supplies the frame handler

    @staticmethod
    def default_load_type() -> type | None:
        return pd.DataFrame

    def create_io_manager(self, context) -> DbIOManager:
        return _io_manager(_DuckDBClient(self.lock_timeout_seconds), self.database, self.schema_, "WarehouseDuckDBIOManager")


# --- the model store ----------------------------------------------------------------------


class _AtomicPickleFiles(PickledObjectFilesystemIOManager):
    """Dagster's pickle files, but a write goes to a temporary file that is then renamed over
    the old one: a reader (a notebook, the predictions step) gets the old model or the new
    one, and a failed or interrupted write leaves the old one in place. Each write also
    removes the temporary files that killed writes left anywhere in the store (past the
    grace period), and reports how many in the output's metadata."""

    def dump_to_path(self, context: dg.OutputContext, obj: object, path) -> None:  # type: ignore[no-untyped-def]
        removed = write_atomically(Path(os.fspath(path)), pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
        removed += remove_stale_temporaries(Path(os.fspath(self._base_path)))
        context.add_output_metadata({"stale_temporaries_removed": removed})


class ModelFilesIOManager(dg.FilesystemIOManager):
    """Models as pickle files under `base_dir` (`<data dir>/models/<asset>`), replaced atomically.
    Production stores them with dagster-aws's `S3PickleIOManager` instead."""

    def create_io_manager(self, context) -> PickledObjectFilesystemIOManager:  # type: ignore[no-untyped-def]
        return _AtomicPickleFiles(base_dir=self.base_dir or context.instance.storage_directory())
