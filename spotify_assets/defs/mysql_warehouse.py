"""The MySQL warehouse's resources (`SPOTIFY_ASSETS_WAREHOUSE=mysql`): the `warehouse`
resource and the `warehouse_io_manager`, both writing through `lib/warehouse/mysql.py`.

Bound by `defs/resources.py` only when MySQL is selected; PyMySQL, SQLAlchemy and sqlglot are
imported when a connection opens or SQL is rendered, never when the code location loads. The
password is bound by variable name (`dg.EnvVar`), so its value never reaches the UI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.storage.db_io_manager import DbIOManager, TableSlice

from spotify_assets.defs.io_managers import _io_manager, _WindowClient
from spotify_assets.defs.warehouse import Warehouse
from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.settings import MySQLSettings, Settings
from spotify_assets.lib.warehouse import mysql as mysql_target

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")

PASSWORD_VARIABLE = "SPOTIFY_ASSETS_MYSQL_PASSWORD"


def url_of(config: Any) -> str:
    """The SQLAlchemy URL of a configured server (the password escaped, never logged)."""
    from sqlalchemy.engine import URL

    return URL.create(
        "mysql+pymysql", username=config.user, password=config.password or None, host=config.host, port=config.port
    ).render_as_string(hide_password=False)


def client_of(config: Any) -> mysql_target.MySQLClient:
    return mysql_target.client_for(url_of(config), config.database, ssl_ca=config.ssl_ca)


class MySQLWarehouse(Warehouse):
    """MySQL (RDS, Aurora MySQL, MariaDB): one database holds the tables and views."""

    host: str
    port: int = 3306
    user: str
    password: str | None = None
    database: str
    ssl_ca: str | None = None
    schema_name: str = ""  # the database: MySQL's schema

    def client(self) -> mysql_target.MySQLClient:
        return client_of(self)


class _MySQLIOClient(_WindowClient):
    """The DbIOManager's "connection" is a MySQLClient: each write opens its own connection
    and replaces the window in one transaction."""

    dialect = mysql_target.DIALECT

    def __init__(self, client: mysql_target.MySQLClient):
        self.client = client

    def qualified(self, table_slice: TableSlice) -> str:
        return f"{table_slice.schema}.{table_slice.table}"

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[Any]:  # type: ignore[override]
        yield self.client

    def replace(self, connection, table_slice, frame, window):  # type: ignore[no-untyped-def]
        return connection.replace(table_slice.table, frame, window)

    def fetch(self, connection, sql: str) -> pd.DataFrame:
        with connection.cursor() as cur:
            return mysql_target.fetch(cur, sql)


class WarehouseMySQLIOManager(dg.ConfigurableIOManagerFactory):
    """Pandas DataFrames to and from MySQL tables, one window per write, atomically."""

    host: str
    port: int = 3306
    user: str
    password: str | None = None
    database: str
    ssl_ca: str | None = None

    def create_io_manager(self, context) -> DbIOManager:  # type: ignore[no-untyped-def]
        return _io_manager(_MySQLIOClient(client_of(self)), self.database, self.database, "WarehouseMySQLIOManager")


def connection_fields(my: MySQLSettings) -> dict[str, object]:
    """The fields both resources take; the password as EnvVar, by name."""
    fields: dict[str, object] = {"host": my.host, "port": my.port, "user": my.user, "database": my.database}
    if my.password:
        fields["password"] = dg.EnvVar(PASSWORD_VARIABLE)
    if my.ssl_ca:
        fields["ssl_ca"] = my.ssl_ca
    return fields


def resources(settings: Settings) -> dict[str, object]:
    """The warehouse keys bound to MySQL."""
    assert settings.mysql is not None
    fields = connection_fields(settings.mysql)
    return {
        "warehouse_io_manager": WarehouseMySQLIOManager(**fields),  # type: ignore[arg-type]
        "warehouse": MySQLWarehouse(
            schema_name=settings.mysql.database, recent_release_days=settings.warehouse.recent_release_days, **fields  # type: ignore[arg-type]
        ),
    }
