"""The Snowflake warehouse's resources (SPOTIFY_ASSETS_WAREHOUSE=snowflake, the production
deployment's default; raw snapshots and models in S3 are `defs/resources.py`'s `s3_stores`).

Imported only when Snowflake is the warehouse selected (by `defs/resources.py`):
dagster-snowflake (through snowflake.core) takes seconds to import, and every step process of a
daemon-launched run loads the code location again, so no other target pays for it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, TableSlice
from dagster_snowflake import SnowflakeResource
from dagster_snowflake_pandas import SnowflakePandasIOManager

from spotify_assets.defs.io_managers import _io_manager, _WindowClient
from spotify_assets.defs.warehouse import Warehouse
from spotify_assets.lib.settings import Settings, SnowflakeSettings
from spotify_assets.lib.warehouse import snowflake as snowflake_target

# How rows reach Snowflake (PUT + COPY INTO). Tests against an emulator without file transfer
# replace this one step; see spotify_assets_tests/support/snowflake.py.
stage_frame: snowflake_target.StageFn = snowflake_target.stage_with_write_pandas


class _SnowflakeClient(_WindowClient):
    dialect = snowflake_target.DIALECT

    def qualified(self, table_slice: TableSlice) -> str:
        return f"{table_slice.database}.{table_slice.schema}.{table_slice.table}"

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[Any]:  # type: ignore[override]
        config = {k: v for k, v in (context.resource_config or {}).items() if k != "schema"}
        with SnowflakeResource(schema=table_slice.schema, **config).get_connection(raw_conn=False) as conn:
            yield conn

    def replace(self, connection, table_slice, frame, window):  # type: ignore[no-untyped-def]
        return snowflake_target.snowflake_replace(
            connection, cast(str, table_slice.database), table_slice.schema, table_slice.table, frame, window, stage=stage_frame
        )

    def fetch(self, connection, sql: str) -> pd.DataFrame:
        return snowflake_target.fetch(connection, sql)


class WarehouseSnowflakeIOManager(SnowflakePandasIOManager):
    """Pandas DataFrames to and from Snowflake tables, one window per write, atomically."""

    def create_io_manager(self, context) -> DbIOManager:
        return _io_manager(_SnowflakeClient(), self.database, self.schema_, "WarehouseSnowflakeIOManager")


class SnowflakeWarehouse(Warehouse):
    """Snowflake, through dagster-snowflake's resource."""

    snowflake: SnowflakeResource
    database: str
    schema_name: str = "ANALYTICS"

    def client(self) -> snowflake_target.SnowflakeClient:
        # stage_frame is read at each call: tests against an emulator replace it.
        return snowflake_target.SnowflakeClient(self.snowflake.get_connection, self.database, self.schema_name, stage_frame)


def _snowflake_connection(sf: SnowflakeSettings) -> dict[str, object]:
    """Connection fields shared by the Snowflake IO manager and resource; secrets as EnvVar."""
    fields: dict[str, object] = {
        "account": sf.account,
        "user": sf.user,
        "database": sf.database,
        # the field is named like the auth kind, and read from SNOWFLAKE_<KIND>
        sf.auth: dg.EnvVar(f"SNOWFLAKE_{sf.auth.upper()}"),
    }
    if sf.private_key_password:
        fields["private_key_password"] = dg.EnvVar("SNOWFLAKE_PRIVATE_KEY_PASSWORD")
    if sf.warehouse:
        fields["warehouse"] = sf.warehouse
    if sf.role:
        fields["role"] = sf.role
    extra: dict[str, object] = {}
    if sf.host:
        extra["host"] = sf.host
    if sf.port:
        extra["port"] = sf.port
    if sf.protocol != "https":
        extra["protocol"] = sf.protocol
    if extra:
        fields["additional_snowflake_connection_args"] = extra
    return fields


def snowflake_resources(settings: Settings) -> dict[str, object]:
    """The warehouse keys bound to Snowflake."""
    assert settings.snowflake is not None
    sf = settings.snowflake
    connection = _snowflake_connection(sf)
    return {
        "warehouse_io_manager": WarehouseSnowflakeIOManager(schema=sf.schema, **connection),  # type: ignore[arg-type]
        "warehouse": SnowflakeWarehouse(
            snowflake=SnowflakeResource(schema=sf.schema, **connection),  # type: ignore[arg-type]
            database=sf.database,
            schema_name=sf.schema,
            recent_release_days=settings.warehouse.recent_release_days,
        ),
    }
