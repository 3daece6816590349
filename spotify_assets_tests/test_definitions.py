"""The code location as Dagster sees it: loads, one lineage graph, the 8-hour schedule."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from spotify_assets.definitions import defs
from spotify_assets.defs.io_managers import WarehouseDuckDBIOManager, column_schema
from spotify_assets.defs.resources import LocalRawSnapshotStore, S3RawSnapshotStore, SpotifyResource
from spotify_assets.production import SnowflakeWarehouse, WarehouseSnowflakeIOManager


def test_project_loads_with_defaults() -> None:
    definitions = defs()
    keys = {k.to_user_string() for k in definitions.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_playlist_snapshots", "songs", "artists", "albums", "song_artists", "playlists", "playlist_tracks"} <= keys
    assert {"artist_analytics", "top_artists", "popularity_trends", "current_top_songs", "popularity_history"} <= keys
    resources = definitions.resources or {}
    assert isinstance(resources["warehouse_io_manager"], WarehouseDuckDBIOManager)
    assert isinstance(resources["spotify"], SpotifyResource) and resources["spotify"].is_sample
    assert isinstance(resources["raw_store"], LocalRawSnapshotStore)


def test_production_binds_the_same_keys_to_s3(monkeypatch) -> None:
    for name, value in {
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_S3_BUCKET": "bucket",
        "SNOWFLAKE_ACCOUNT": "acct",
        "SNOWFLAKE_USER": "svc",
        "SNOWFLAKE_PASSWORD": "pw",
        "SPOTIFY_CLIENT_ID": "id",
        "SPOTIFY_CLIENT_SECRET": "very-secret",
        "SPOTIFY_PLAYLISTS": "5ABHKGoOzxkaa28ttQV9sE",
    }.items():
        monkeypatch.setenv(name, value)
    resources = defs().resources or {}
    store = resources["raw_store"]
    assert isinstance(store, S3RawSnapshotStore) and store.bucket == "bucket" and store.prefix == "spotify-assets"
    spotify = resources["spotify"]
    assert spotify.settings.source == "api" and spotify.settings.playlist_ids == ("5ABHKGoOzxkaa28ttQV9sE",)
    # The secret is bound by name (resolved at run time), never by value.
    assert isinstance(spotify.client_secret, dg.EnvVar) and spotify.client_secret == "SPOTIFY_CLIENT_SECRET"
    assert "very-secret" not in repr(spotify)
    io = resources["warehouse_io_manager"]
    assert isinstance(io, WarehouseSnowflakeIOManager) and io.database == "SPOTIFY" and io.schema_ == "ANALYTICS"
    assert isinstance(io.password, dg.EnvVar) and "pw" not in repr(io.password)
    assert isinstance(resources["warehouse"], SnowflakeWarehouse)


TARGET_ENV = {
    "duckdb": {},
    "snowflake": {"SNOWFLAKE_ACCOUNT": "acct", "SNOWFLAKE_USER": "svc", "SNOWFLAKE_PASSWORD": "pw"},
    "mysql": {"SPOTIFY_ASSETS_MYSQL_HOST": "db.example", "SPOTIFY_ASSETS_MYSQL_USER": "pipeline"},
    "iceberg": {},
}
WAREHOUSE_CLASSES = {
    "duckdb": "DuckDBWarehouse", "snowflake": "SnowflakeWarehouse", "mysql": "MySQLWarehouse", "iceberg": "IcebergWarehouse",
}


@pytest.mark.parametrize("deployment", ["local", "production"])
@pytest.mark.parametrize("target", sorted(TARGET_ENV))
def test_every_deployment_and_warehouse_binds_every_resource_key(monkeypatch, tmp_path, deployment: str, target: str) -> None:
    """Raw snapshots where the deployment says, the tables where SPOTIFY_ASSETS_WAREHOUSE
    says: every pair binds the same keys, and every asset's resources resolve."""
    monkeypatch.setenv("SPOTIFY_ASSETS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SPOTIFY_ASSETS_DEPLOYMENT", deployment)
    monkeypatch.setenv("SPOTIFY_ASSETS_WAREHOUSE", target)
    monkeypatch.setenv("SPOTIFY_ASSETS_S3_BUCKET", "bucket")
    for name, value in TARGET_ENV[target].items():
        monkeypatch.setenv(name, value)
    definitions = defs()
    resources = definitions.resources or {}
    assert {"raw_store", "model_io_manager", "warehouse", "warehouse_io_manager", "spotify", "settings"} <= set(resources)
    store = type(resources["raw_store"]).__name__
    assert store.endswith("LocalRawSnapshotStore" if deployment == "local" else "S3RawSnapshotStore"), store
    assert WAREHOUSE_CLASSES[target] in [c.__name__ for c in type(resources["warehouse"]).__mro__]
    dg.Definitions.validate_loadable(definitions)


def test_alert_secrets_are_bound_by_variable_name(monkeypatch) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_ALERT_WEBHOOK", "https://hooks.example.com/T0/s3cr3t-path")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-s3cr3t")
    monkeypatch.setenv("SPOTIFY_ASSETS_SLACK_CHANNEL", "#data")
    alerts = (defs().resources or {})["alert_destinations"]
    assert isinstance(alerts.webhook_url, dg.EnvVar) and alerts.webhook_url == "SPOTIFY_ASSETS_ALERT_WEBHOOK"
    assert isinstance(alerts.slack_bot_token, dg.EnvVar) and alerts.slack_bot_token == "SLACK_BOT_TOKEN"
    assert "s3cr3t" not in repr(alerts)
    monkeypatch.delenv("SPOTIFY_ASSETS_SLACK_CHANNEL")
    monkeypatch.delenv("SPOTIFY_ASSETS_ALERT_WEBHOOK")
    unconfigured = (defs().resources or {})["alert_destinations"]  # no destination: no secret asked for
    assert unconfigured.webhook_url is None and unconfigured.slack_bot_token is None


_HEAVY = ("snowflake.", "dagster_snowflake", "dagster_aws", "boto3", "botocore", "pandas", "numpy", "sklearn", "matplotlib")
_LOADED_MODULES = """
import sys
from spotify_assets.definitions import defs
defs().get_repository_def()
print(" ".join(sorted(m for m in sys.modules if m.startswith({heavy!r}))))
"""


def _modules_after_load(env: dict[str, str]) -> set[str]:
    """The production-only modules a fresh process has imported once it loaded the definitions."""
    import os
    import subprocess
    import sys

    code = _LOADED_MODULES.format(heavy=_HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


@pytest.mark.slow
def test_the_local_deployment_imports_no_cloud_or_data_module(tmp_path) -> None:
    # Every run the daemon launches, its code server and every `dagster` command load the code
    # location afresh: the local deployment must not pay seconds for Snowflake and AWS modules
    # it never uses, nor for pandas and scikit-learn before a step needs them.
    loaded = _modules_after_load({"SPOTIFY_ASSETS_DATA_DIR": str(tmp_path)})
    assert loaded == set(), f"the local deployment imported {sorted(loaded)[:10]}"


@pytest.mark.slow
def test_production_imports_what_it_uses(tmp_path) -> None:
    loaded = _modules_after_load({
        "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path),
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_S3_BUCKET": "bucket",
        "SNOWFLAKE_ACCOUNT": "acct",
        "SNOWFLAKE_USER": "svc",
        "SNOWFLAKE_PASSWORD": "pw",
    })
    assert {"dagster_snowflake", "dagster_aws", "snowflake.connector"} <= loaded


@pytest.mark.slow
def test_production_with_another_warehouse_does_not_import_snowflake(tmp_path) -> None:
    loaded = _modules_after_load({
        "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path),
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_S3_BUCKET": "bucket",
        "SPOTIFY_ASSETS_WAREHOUSE": "mysql",
        "SPOTIFY_ASSETS_MYSQL_HOST": "db.example",
        "SPOTIFY_ASSETS_MYSQL_USER": "pipeline",
    })
    assert "dagster_aws" in loaded  # the S3 stores
    assert not {"dagster_snowflake", "snowflake.connector"} & loaded


def test_windows_are_8_hours_in_utc_with_hourly_keys() -> None:
    snapshot_windows = defs().resolve_job_def("spotify_pipeline_job").partitions_def
    assert snapshot_windows.cron_schedule == "0 */8 * * *"
    assert snapshot_windows.timezone == "UTC"
    now = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)
    keys = snapshot_windows.get_partition_keys(current_time=now)
    assert keys[:2] == ["2026-01-01-00:00", "2026-01-01-08:00"]
    assert keys[-1] == "2026-11-21-00:00"  # the window that closed at 08:00; 08:00-16:00 is open
    window = snapshot_windows.time_window_for_partition_key("2026-11-21-08:00")
    assert (window.end - window.start).total_seconds() == 8 * 3600


def test_the_first_window_setting_reaches_every_windowed_definition(monkeypatch) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_FIRST_WINDOW", "2026-06-01")
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    raw = graph.get(dg.AssetKey("raw_playlist_snapshots")).partitions_def
    starts = {
        "raw_playlist_snapshots": raw,
        "songs": graph.get(dg.AssetKey("songs")).partitions_def,
        "spotify_pipeline_job": definitions.resolve_job_def("spotify_pipeline_job").partitions_def,
        **{
            key.to_user_string(): graph.get_check_spec(key).partitions_def
            for key in graph.asset_check_keys
            if key.name != "fresh" and graph.get(key.asset_key).partitions_def is not None
        },
    }
    assert len(starts) > 20  # the raw and table checks are among them
    assert {name: p.get_first_partition_key() for name, p in starts.items()} == dict.fromkeys(starts, "2026-06-01-00:00")
    schedule = definitions.resolve_schedule_def("spotify_pipeline_schedule")
    assert schedule.cron_schedule == "0 */8 * * *" and schedule.job.partitions_def == raw


def test_schedule_runs_the_window_that_just_closed() -> None:
    definitions = defs()
    schedule = definitions.resolve_schedule_def("spotify_pipeline_schedule")
    assert schedule.cron_schedule == "0 */8 * * *" and schedule.execution_timezone == "UTC"
    tick = datetime(2026, 11, 21, 16, 0, tzinfo=timezone.utc)
    with dg.instance_for_test() as instance:
        # the context enters an instance of its own: closing it restores the global Dagster state
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests or []] == ["2026-11-21-08:00"]


def test_schedule_job_covers_everything_downstream_of_the_snapshots() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    job = definitions.resolve_job_def("spotify_pipeline_job")
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    downstream = {
        k.to_user_string()
        for k in dg.AssetSelection.assets("raw_playlist_snapshots").downstream().resolve(graph)
    }
    assert selected == downstream


def test_every_job_runs_its_steps_in_the_run_process() -> None:
    # A step process per step costs 5x the work here (benchmarks/daemon_path.py); the schedule,
    # the sensor, backfills and the UI's "Materialize" all launch one of these jobs.
    definitions = defs()
    repository = definitions.get_repository_def()
    names = [job.name for job in repository.get_all_jobs()]
    assert {"spotify_pipeline_job", "listening_job", "raw_freshness_job"} <= set(names)
    assert {name: repository.get_job(name).executor_def.name for name in names} == {name: "in_process" for name in names}


def test_loading_the_definitions_parses_the_environment_once(monkeypatch) -> None:
    """The settings are parsed once per load and handed down: no module parses them again
    while the definitions are built or the assets are bound."""
    from spotify_assets.lib import settings as settings_module

    defs()  # the modules are imported
    calls = []
    original = settings_module.Settings.from_env.__func__

    def counting(cls, env, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(cls, env, **kwargs)

    monkeypatch.setattr(settings_module.Settings, "from_env", classmethod(counting))
    definitions = defs()
    definitions.resolve_job_def("spotify_pipeline_job")
    assert len(calls) == 1
    assert definitions.resources["settings"].__class__ is settings_module.Settings


def test_the_tables_carry_the_deployments_warehouse_as_kind_and_column_types(monkeypatch) -> None:
    """Bound at load from the settings, not read at import: the same modules give DuckDB
    locally and Snowflake in production."""
    local = defs().resolve_assets_def("songs").specs_by_key[dg.AssetKey("songs")]
    assert "duckdb" in local.kinds and "snowflake" not in local.kinds
    assert local.metadata["dagster/column_schema"] == column_schema("songs", "duckdb")
    for name, value in {
        "SPOTIFY_ASSETS_DEPLOYMENT": "production",
        "SPOTIFY_ASSETS_S3_BUCKET": "b",
        "SNOWFLAKE_ACCOUNT": "a",
        "SNOWFLAKE_USER": "u",
        "SNOWFLAKE_PASSWORD": "p",
        "SNOWFLAKE_DATABASE": "d",
        "SNOWFLAKE_WAREHOUSE": "w",
    }.items():
        monkeypatch.setenv(name, value)
    production = defs().resolve_assets_def("streams").specs_by_key[dg.AssetKey("streams")]
    assert "snowflake" in production.kinds and "duckdb" not in production.kinds
    assert production.metadata["dagster/column_schema"] == column_schema("streams", "snowflake")
    assert column_schema("streams", "snowflake") != column_schema("streams", "duckdb")


def test_the_benchmarks_reference_definitions_load_with_the_default_executor() -> None:
    """benchmarks/daemon_path.py runs the job against these; they once broke unnoticed."""
    from spotify_assets_tests.benchmarks.default_executor import defs as reference

    job = reference().get_repository_def().get_job("spotify_pipeline_job")
    assert job.executor_def.name == "multi_or_in_process_executor"
