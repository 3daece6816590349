"""SPOTIFY_ASSETS_WAREHOUSE picks the target; the lake's settings and resources follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from spotify_assets.lib.settings import Settings, SettingsError


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path), **values}


def test_the_default_target_follows_the_deployment(tmp_path: Path) -> None:
    assert Settings.from_env(_env(tmp_path)).warehouse_kind == "duckdb"
    with pytest.raises(SettingsError) as err:  # production's default is Snowflake, which needs its variables
        Settings.from_env(_env(tmp_path, SPOTIFY_ASSETS_DEPLOYMENT="production", SPOTIFY_ASSETS_S3_BUCKET="b"))
    assert "SNOWFLAKE_ACCOUNT" in str(err.value)


def test_the_local_lake_lives_under_the_data_directory(tmp_path: Path) -> None:
    settings = Settings.from_env(_env(tmp_path, SPOTIFY_ASSETS_WAREHOUSE="iceberg"))
    assert settings.warehouse_kind == "iceberg" and settings.snowflake is None
    assert settings.lake is not None and settings.lake.local_dir == (tmp_path / "lake").resolve()
    assert settings.lake.namespace == "analytics"


def test_the_production_lake_needs_no_snowflake_variable(tmp_path: Path) -> None:
    settings = Settings.from_env(
        _env(tmp_path, SPOTIFY_ASSETS_DEPLOYMENT="production", SPOTIFY_ASSETS_WAREHOUSE="iceberg", SPOTIFY_ASSETS_S3_BUCKET="b")
    )
    assert settings.snowflake is None and settings.lake is not None
    assert (settings.lake.s3_uri, settings.lake.namespace, settings.lake.athena_workgroup) == (
        "s3://b/spotify-assets/lake", "spotify_assets", "spotify_assets",
    )


def test_bad_lake_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(
            _env(
                tmp_path,
                SPOTIFY_ASSETS_DEPLOYMENT="production",
                SPOTIFY_ASSETS_WAREHOUSE="iceberg",
                SPOTIFY_ASSETS_S3_BUCKET="b",
                SPOTIFY_ASSETS_LAKE_DATABASE="Not-Glue",
                SPOTIFY_ASSETS_LAKE_S3_URI="https://b/lake",
            )
        )
    assert "SPOTIFY_ASSETS_LAKE_DATABASE" in str(err.value) and "SPOTIFY_ASSETS_LAKE_S3_URI" in str(err.value)
    with pytest.raises(SettingsError, match="SPOTIFY_ASSETS_WAREHOUSE"):
        Settings.from_env(_env(tmp_path, SPOTIFY_ASSETS_WAREHOUSE="bigquery"))


def test_the_lake_binds_the_warehouse_keys_and_keeps_the_deployments_stores(tmp_path: Path) -> None:
    from spotify_assets.defs.resources import build_resources

    local = build_resources(Settings.from_env(_env(tmp_path, SPOTIFY_ASSETS_WAREHOUSE="iceberg")))
    assert type(local["warehouse"]).__name__ == "IcebergWarehouse"
    assert type(local["warehouse_io_manager"]).__name__ == "WarehouseIcebergIOManager"
    assert type(local["raw_store"]).__name__ == "LocalRawSnapshotStore"
    production = build_resources(
        Settings.from_env(
            _env(tmp_path, SPOTIFY_ASSETS_DEPLOYMENT="production", SPOTIFY_ASSETS_WAREHOUSE="iceberg", SPOTIFY_ASSETS_S3_BUCKET="b")
        )
    )
    assert type(production["raw_store"]).__name__ == "S3RawSnapshotStore"
    assert type(production["model_io_manager"]).__name__ == "S3PickleIOManager"
    assert production["warehouse"].lake.s3_uri == "s3://b/spotify-assets/lake"


def test_a_lake_directory_that_cannot_be_written_is_named_at_load(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SettingsError) as err:
        Settings.from_env(_env(tmp_path, SPOTIFY_ASSETS_WAREHOUSE="iceberg", SPOTIFY_ASSETS_LAKE_DIR=str(blocker / "lake")))
    assert "SPOTIFY_ASSETS_LAKE_DIR=" in str(err.value) and "the lake directory" in str(err.value)
    # the data directory's lake/ is named by the variable that set it
    with pytest.raises(SettingsError, match=r"SPOTIFY_ASSETS_DATA_DIR \(lake/ in the data directory\)"):
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "lake").write_text("a file where the lake directory goes")
        Settings.from_env(_env(tmp_path, SPOTIFY_ASSETS_WAREHOUSE="iceberg", SPOTIFY_ASSETS_DATA_DIR=str(tmp_path / "data")))
