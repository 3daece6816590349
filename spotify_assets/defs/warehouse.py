"""The `warehouse` resource: one schema of the deployment's warehouse, for what is not a
DataFrame of an IO manager (views, checks, features, the listening history, previews).

Each target's resource only says how to build its client (`lib/warehouse/<target>.py`); every
operation is the client's. Snowflake's resource is in `spotify_assets/production.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import dagster as dg

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.warehouse.base import AppendResult, WarehouseClient, WriteResult
from spotify_assets.lib.warehouse.duckdb import DuckDBClient, DuckDBDatabase
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


class Warehouse(dg.ConfigurableResource):
    """The SQL warehouse the tables live in; see `lib/warehouse/base.py` for each operation."""

    schema_name: str
    recent_release_days: int = 365

    def client(self) -> WarehouseClient:
        raise NotImplementedError

    @property
    def dialect(self) -> str:
        """The target's name (`duckdb`, `snowflake`), as the UI's storage kinds name it."""
        return self.client().dialect.name

    @property
    def schema_ref(self) -> str:
        """How SQL names the schema (`analytics`; `DATABASE.SCHEMA` in Snowflake)."""
        return self.client().schema_ref

    def qualified(self, name: str) -> str:
        return self.client().qualified(name)

    def render(self, sql: str, **values: object) -> str:
        return self.client().render(sql, **values)

    def execute(self, statements: list[str]) -> None:
        self.client().execute(statements)

    def reader(self) -> AbstractContextManager[Callable[[str], pd.DataFrame]]:
        return self.client().reader()

    def query(self, sql: str) -> pd.DataFrame:
        return self.client().query(sql)

    def replace_rows(self, table: str, frame: pd.DataFrame, where: str) -> WriteResult:
        return self.client().replace(table, frame, None, where=where)

    def replace_window(self, frames: dict[str, pd.DataFrame], window: Window) -> dict[str, WriteResult]:
        return self.client().replace_window(frames, window)

    def append_new(self, frames: dict[str, pd.DataFrame], fill: dict[str, tuple[str, str]]) -> dict[str, AppendResult]:
        return self.client().append_new(frames, fill)

    def rewrite_table(self, table: str, frame: pd.DataFrame) -> int:
        return self.client().rewrite_table(table, frame)

    @property
    def catalog(self) -> tuple[str, str]:
        return self.client().catalog

    def tables(self) -> set[str]:
        return self.client().tables()

    def columns(self, name: str) -> pd.DataFrame:
        return self.client().columns(name)


class DuckDBWarehouse(Warehouse):
    """The embedded warehouse: a DuckDB file under the data directory."""

    database: str
    schema_name: str = "analytics"
    lock_timeout_seconds: float = 600.0

    def client(self) -> DuckDBClient:
        return DuckDBClient(DuckDBDatabase(self.database, lock_timeout_s=self.lock_timeout_seconds), self.schema_name)
