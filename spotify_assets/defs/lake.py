"""The lake's resources (SPOTIFY_ASSETS_WAREHOUSE=iceberg): the six tables and the model's as
Iceberg tables, the views and checks on Athena (production) or DuckDB (local).

Imported only when that target is selected (by `defs/resources.py`); pyiceberg, pyarrow,
sqlglot and boto3 are imported only when a resource is used. The deployment still decides
where raw snapshots and models go (`defs/resources.py`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import dagster as dg

from spotify_assets.defs.io_managers import table_metadata
from spotify_assets.defs.warehouse import Warehouse
from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.settings import Settings
from spotify_assets.lib.warehouse import iceberg
from spotify_assets.lib.warehouse.base import conform_loaded
from spotify_assets.lib.window import Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")


def aws_properties() -> dict[str, str]:
    """pyiceberg's properties for the AWS services, from the standard AWS variables (a region,
    and an endpoint when one is set: a VPC endpoint, or moto in the tests). Credentials come
    from the AWS chain (role, profile, environment), never from the config."""
    props: dict[str, str] = {}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        props.update({"glue.region": region, "s3.region": region, "client.region": region})
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        props.update({"glue.endpoint": endpoint, "s3.endpoint": endpoint})
    return props


def make_athena_client() -> Any:
    """boto3's Athena client (the tests, where Athena cannot run, replace this)."""
    import boto3

    return boto3.client("athena")


class LakeConfig(dg.Config):
    """Where the lake is: `local_dir` (SQL catalog and files there, SQL on DuckDB), or the Glue
    catalog with data under `s3_uri` and SQL on the Athena workgroup `athena_workgroup`."""

    namespace: str = "analytics"
    local_dir: str | None = None
    s3_uri: str | None = None
    athena_workgroup: str | None = None

    def client(self) -> iceberg.IcebergClient:
        """One client per lake and process: its catalog (a boto3 session and Glue client, or
        SQLAlchemy's engine) and the local engine's scans are made once, not at every call."""
        key = (self.namespace, self.local_dir, self.s3_uri, self.athena_workgroup, make_athena_client)
        if key not in _CLIENTS:
            _CLIENTS[key] = self._new_client()
        return _CLIENTS[key]

    def _new_client(self) -> iceberg.IcebergClient:
        if self.local_dir is not None:
            return iceberg.local_client(self.local_dir, self.namespace)
        assert self.s3_uri and self.athena_workgroup, "the lake needs local_dir, or s3_uri and athena_workgroup"
        uri, workgroup = self.s3_uri, self.athena_workgroup
        return iceberg.IcebergClient(
            lambda: iceberg.glue_catalog(uri, aws_properties()),
            self.namespace,
            lambda client: iceberg.AthenaEngine(client, workgroup, athena=make_athena_client()),
        )


_CLIENTS: dict[tuple[Any, ...], iceberg.IcebergClient] = {}


class IcebergWarehouse(Warehouse):
    """The lake as the `warehouse` resource (views, checks, features, listening history)."""

    lake: LakeConfig
    schema_name: str = "analytics"

    def client(self) -> iceberg.IcebergClient:
        return self.lake.client()


class WarehouseIcebergIOManager(dg.ConfigurableIOManager):
    """DataFrames to and from the lake's tables: a partitioned asset's output replaces its
    window (one commit), an unpartitioned one the whole table; inputs read one window's files
    (or the whole table)."""

    lake: LakeConfig

    @staticmethod
    def _window(context: dg.InputContext | dg.OutputContext) -> Window | None:
        if not context.has_asset_partitions:
            return None
        bounds = context.asset_partitions_time_window
        return Window(bounds.start, bounds.end)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        table = context.asset_key.path[-1]
        client = self.lake.client()
        result = client.replace(table, obj, self._window(context))
        context.log.info(
            f"{client.qualified(table)}: wrote {len(obj)} rows, replaced {result.rows_replaced}; "
            f"the table now has {result.table_rows}"
        )
        context.add_output_metadata(
            table_metadata(table, obj, result, "iceberg", partitioned=context.has_asset_partitions)
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        table = context.upstream_output.asset_key.path[-1] if context.upstream_output else context.asset_key.path[-1]
        window = self._window(context)
        frame = self.lake.client().scan(table, window).to_pandas()
        return conform_loaded(table, frame)


def lake_config(settings: Settings) -> LakeConfig:
    lake = settings.lake
    assert lake is not None
    if settings.deployment == "local":
        return LakeConfig(namespace=lake.namespace, local_dir=str(lake.local_dir))
    return LakeConfig(namespace=lake.namespace, s3_uri=lake.s3_uri, athena_workgroup=lake.athena_workgroup)


def resources(settings: Settings) -> dict[str, object]:
    """The warehouse keys bound to the lake."""
    config = lake_config(settings)
    return {
        "warehouse_io_manager": WarehouseIcebergIOManager(lake=config),
        "warehouse": IcebergWarehouse(
            lake=config, schema_name=config.namespace, recent_release_days=settings.warehouse.recent_release_days
        ),
    }
