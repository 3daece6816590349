"""Selecting the MySQL warehouse: the settings it reads and the resources it binds (no server)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from spotify_assets.lib.settings import Settings, SettingsError

MYSQL = {"SPOTIFY_ASSETS_WAREHOUSE": "mysql", "SPOTIFY_ASSETS_MYSQL_HOST": "db.example", "SPOTIFY_ASSETS_MYSQL_USER": "pipeline"}


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path), **env})


def test_the_warehouse_defaults_to_the_deployments(tmp_path: Path) -> None:
    assert _settings(tmp_path).warehouse_target == "duckdb"
    with pytest.raises(SettingsError, match="SNOWFLAKE_ACCOUNT"):  # production's default is Snowflake
        _settings(tmp_path, SPOTIFY_ASSETS_DEPLOYMENT="production", SPOTIFY_ASSETS_S3_BUCKET="b")


@pytest.mark.slow  # imports production's S3 and Snowflake modules
def test_mysql_is_selected_with_its_settings_and_needs_no_snowflake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = _settings(
        tmp_path, SPOTIFY_ASSETS_DEPLOYMENT="production", SPOTIFY_ASSETS_S3_BUCKET="b", **MYSQL,
        SPOTIFY_ASSETS_MYSQL_PASSWORD="secret", SPOTIFY_ASSETS_MYSQL_SSL_CA=str(ca), SPOTIFY_ASSETS_MYSQL_PORT="3307",
    )
    assert settings.warehouse_kind == "mysql" and settings.snowflake is None and settings.s3 is not None
    my = settings.mysql
    assert my is not None and (my.host, my.port, my.user, my.database, my.password, my.ssl_ca) == (
        "db.example", 3307, "pipeline", "spotify", True, str(ca.resolve())
    )
    assert "secret" not in repr(settings)

    from spotify_assets.defs.mysql_warehouse import MySQLWarehouse, WarehouseMySQLIOManager
    from spotify_assets.defs.resources import build_resources

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bound = build_resources(settings)
    assert isinstance(bound["warehouse"], MySQLWarehouse) and isinstance(bound["warehouse_io_manager"], WarehouseMySQLIOManager)
    assert type(bound["raw_store"]).__name__ == "S3RawSnapshotStore"  # raw snapshots: the deployment's
    local = build_resources(_settings(tmp_path, **MYSQL))
    assert isinstance(local["warehouse"], MySQLWarehouse) and type(local["raw_store"]).__name__ == "LocalRawSnapshotStore"


def test_the_mysql_settings_name_each_problem(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        _settings(
            tmp_path, SPOTIFY_ASSETS_WAREHOUSE="mysql", SPOTIFY_ASSETS_MYSQL_SSL_CA=str(tmp_path / "missing.pem"),
            SPOTIFY_ASSETS_MYSQL_DATABASE="spotify; DROP", SPOTIFY_ASSETS_MYSQL_PORT="70000",
        )
    text = str(err.value)
    for name in ("SPOTIFY_ASSETS_MYSQL_HOST", "SPOTIFY_ASSETS_MYSQL_USER", "SPOTIFY_ASSETS_MYSQL_SSL_CA",
                 "SPOTIFY_ASSETS_MYSQL_DATABASE", "SPOTIFY_ASSETS_MYSQL_PORT"):
        assert name in text
    with pytest.raises(SettingsError, match="SPOTIFY_ASSETS_WAREHOUSE='oracle' is not one of"):
        _settings(tmp_path, SPOTIFY_ASSETS_WAREHOUSE="oracle")


@pytest.mark.slow  # builds the whole code location
def test_the_code_location_loads_with_mysql_selected_and_shows_its_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spotify_assets.definitions import build_definitions

    defs = build_definitions(_settings(tmp_path, **MYSQL))
    songs = defs.resolve_assets_def("songs").specs_by_key[dg.AssetKey("songs")]
    assert "mysql" in songs.kinds
    types = {c.name: c.type for c in songs.metadata["dagster/column_schema"].columns}
    assert types["window_start"] == "datetime(6)" and types["song_id"] == "varchar(255)" and types["name"] == "text"
