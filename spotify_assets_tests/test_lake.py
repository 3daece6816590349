"""The lake deployment locally (SPOTIFY_ASSETS_WAREHOUSE=iceberg): the bundled sample's windows
through the same assets into Iceberg tables on local files (pyiceberg's SQL catalog on
SQLite), views kept in Athena's dialect and run transpiled on DuckDB; every table, view, check
and the model's features answer as the DuckDB warehouse does for the same windows."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlglot

from spotify_assets.defs.analytics.views import view_assets
from spotify_assets.defs.model.assets import FEATURES_SQL
from spotify_assets.defs.resources import build_resources
from spotify_assets.definitions import build_definitions
from spotify_assets.lib.settings import Settings
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets.lib.warehouse.base import conform_loaded
from spotify_assets.lib.warehouse.duckdb import DuckDBClient, DuckDBDatabase
from spotify_assets.lib.warehouse.iceberg import IcebergClient, athena_to_duckdb, local_client, to_athena
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.windows import windowed, windows

pytestmark = pytest.mark.slow

# the views two windows build (rising_songs waits for a stored forecast, which needs more windows;
# its SQL is checked on DuckDB, Snowflake and MySQL in defs/analytics and lib/warehouse)
PLAYLIST_VIEWS = [v for v in view_assets if not v.key.to_user_string().startswith(("listening_", "rising_"))]


def _settings(data_dir: Path, target: str) -> Settings:
    return Settings.from_env({"SPOTIFY_ASSETS_DATA_DIR": str(data_dir), "SPOTIFY_ASSETS_WAREHOUSE": target})


def _run(settings: Settings, keys: list[str], *, raw: bool = True) -> dict[str, dict[str, bool]]:
    w = windowed()
    checks: dict[str, dict[str, bool]] = {}
    for key in keys:
        result = dg.materialize(
            [*([w.raw, w.raw_checks] if raw else []), w.tables, *PLAYLIST_VIEWS, w.table_checks],
            partition_key=key,
            resources=build_resources(settings),
        )
        assert result.success
        checks[key] = {f"{c.asset_key.to_user_string()}/{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}
    return checks


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame to compare across warehouses: values as Python objects, floats to 9 digits,
    missing values as None, rows in one order."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            column = pd.to_datetime(column, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        elif pd.api.types.is_float_dtype(column):
            column = column.round(9)
        out[name] = column.astype(object).where(column.notna(), None)
    return out.sort_values(list(out.columns), key=lambda c: c.astype(str)).reset_index(drop=True)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[IcebergClient, DuckDBClient, dict, dict, list[str], Path]:
    keys = windows().get_partition_keys()[-2:]
    lake_dir = tmp_path_factory.mktemp("lake-deployment")
    duck_dir = tmp_path_factory.mktemp("duckdb-deployment")
    lake_checks = _run(_settings(lake_dir, "iceberg"), keys)
    # the DuckDB warehouse from the very same raw snapshots (not a second read of the sample)
    shutil.copytree(lake_dir / "raw", duck_dir / "raw")
    duck_checks = _run(_settings(duck_dir, "duckdb"), keys, raw=False)
    return (
        local_client(lake_dir / "lake"),
        DuckDBClient(DuckDBDatabase(duck_dir / "warehouse.duckdb"), "analytics"),
        lake_checks,
        duck_checks,
        keys,
        lake_dir,
    )


def test_the_definitions_load_with_the_lake_and_name_its_kind(tmp_path: Path) -> None:
    defs = build_definitions(_settings(tmp_path, "iceberg"))
    songs = defs.resolve_assets_def("songs").specs_by_key[dg.AssetKey("songs")]
    assert "iceberg" in songs.kinds
    types = {c.name: c.type for c in songs.metadata["dagster/column_schema"].columns}
    assert types["window_start"] == "timestamptz" and types["duration_ms"] == "long" and types["popularity"] == "int"
    assert type(defs.resources["warehouse"]).__name__ == "IcebergWarehouse"


def test_the_six_tables_hold_what_the_duckdb_warehouse_holds(both) -> None:
    lake, duck, *_ = both
    for name in TABLES:
        # as the IO managers load them back: with the declared dtypes
        ours = conform_loaded(name, lake.scan(name).to_pandas())
        theirs = conform_loaded(name, duck.query(f"SELECT * FROM analytics.{name}"))
        assert {c: str(t) for c, t in ours.dtypes.items()} == {c: str(t) for c, t in theirs.dtypes.items()}, name
        assert len(ours) > 0, name
        pd.testing.assert_frame_equal(_comparable(ours), _comparable(theirs[ours.columns]), obj=name)


def test_each_table_is_partitioned_by_window(both) -> None:
    lake, _, _, _, keys, _ = both
    for name in TABLES:
        files = {task.file.file_path for task in lake.load(name).scan().plan_files()}
        assert len(files) >= len(keys), name  # one window, at least one file of its own


def test_every_view_answers_as_the_duckdb_warehouse(both) -> None:
    lake, duck, *_ = both
    for view in PLAYLIST_VIEWS:
        name = view.key.to_user_string()
        ours, theirs = lake.query(f"SELECT * FROM analytics.{name}"), duck.query(f"SELECT * FROM analytics.{name}")
        assert list(ours.columns) == list(theirs.columns), name
        pd.testing.assert_frame_equal(_comparable(ours), _comparable(theirs), obj=name)
    assert lake.query("SELECT count(*) AS n FROM analytics.genres")["n"][0] > 0  # the sample is enriched


def test_the_views_are_kept_in_athenas_dialect(both) -> None:
    lake, *_ = both
    kept = lake.engine._load()  # what Athena would have been sent (CREATE OR REPLACE VIEW)
    assert set(kept) == {v.key.to_user_string() for v in PLAYLIST_VIEWS}
    for name, statement in kept.items():
        parsed = sqlglot.parse_one(statement, read="athena")
        assert isinstance(parsed, sqlglot.exp.Create) and parsed.args.get("replace"), name
        assert "::" not in statement, name  # DuckDB's casts became CAST(... AS ...)


def test_the_model_features_answer_as_on_duckdb_in_athenas_dialect_too(both) -> None:
    lake, duck, *_ = both
    sql = FEATURES_SQL.read_text(encoding="utf-8")
    theirs = duck.query(duck.render(sql, history_windows=90))
    athena = to_athena(lake.render(sql, history_windows=90))
    sqlglot.parse_one(athena, read="athena")
    for ours in (lake.query(lake.render(sql, history_windows=90)), lake.query(athena_to_duckdb(athena))):
        assert len(ours) == len(theirs) > 0
        pd.testing.assert_frame_equal(_comparable(ours), _comparable(theirs))


def test_the_checks_reach_the_same_verdicts(both) -> None:
    _, _, lake_checks, duck_checks, _, _ = both
    assert all(all(v.values()) for v in lake_checks.values())  # raw and table checks
    table_checks = {k: {c: v for c, v in checks.items() if c in duck_checks[k]} for k, checks in lake_checks.items()}
    assert table_checks == duck_checks and all(duck_checks.values())


def test_tables_load_back_through_the_io_manager_one_window_with_their_dtypes(both) -> None:
    lake, _, _, _, keys, lake_dir = both
    newest = windows().time_window_for_partition_key(keys[-1])
    expected = lake.scan("playlist_tracks", Window(newest.start, newest.end)).num_rows
    assert 0 < expected < lake.scan("playlist_tracks").num_rows  # the other window has rows too

    @dg.asset(partitions_def=windows(), ins={name: dg.AssetIn(key=name) for name in ("playlist_tracks", "albums")})
    def reader(playlist_tracks: pd.DataFrame, albums: pd.DataFrame) -> None:
        assert len(playlist_tracks) == expected
        assert {str(t) for t in playlist_tracks["window_start"]} == {str(newest.start)}
        assert str(playlist_tracks["added_at"].dtype) == "datetime64[us, UTC]"
        assert str(albums["release_period_start"].dtype) == "datetime64[s]"
        assert str(albums["total_tracks"].dtype) == "Int32"

    resources = build_resources(_settings(lake_dir, "iceberg"))
    result = dg.materialize(
        [windowed().tables, reader],
        partition_key=keys[-1],
        resources={**resources, "io_manager": resources["warehouse_io_manager"]},
        selection=[reader],
    )
    assert result.success


def test_the_models_features_table_is_written_whole_through_the_io_manager(both) -> None:
    from spotify_assets.defs.model.assets import popularity_features

    lake, duck, _, _, _, lake_dir = both
    result = dg.materialize([popularity_features], resources=build_resources(_settings(lake_dir, "iceberg")))
    assert result.success
    stored = lake.load("popularity_features")
    assert [f.name for f in stored.spec().fields] == ["window_start"]  # written whole, still by window
    features = duck.query(duck.render(FEATURES_SQL.read_text(encoding="utf-8"), history_windows=90))
    assert stored.scan().to_arrow().num_rows == len(features)
    again = dg.materialize([popularity_features], resources=build_resources(_settings(lake_dir, "iceberg")))
    assert again.success and lake.load("popularity_features").scan().to_arrow().num_rows == len(features)


def test_the_dashboard_and_the_notebooks_loads_read_the_lake(both) -> None:
    from spotify_assets.defs.analytics.dashboard import dashboard

    lake, duck, _, _, _, lake_dir = both
    settings = _settings(lake_dir, "iceberg")
    shown = {}
    for target, data_dir in (("iceberg", lake_dir), ("duckdb", duck.db.path.parent)):
        result = dg.materialize([dashboard], resources=build_resources(_settings(data_dir, target)))
        assert result.success
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        shown[target] = {k: metadata[k].value for k in ("windows", "views_shown", "charts", "synthetic")}
    assert shown["iceberg"] == shown["duckdb"] and shown["iceberg"]["windows"] == 2
    assert (lake_dir / "dashboard" / "index.html").stat().st_size > 10_000
    # what notebooks/popularity_model.ipynb does: Definitions.load_asset_value through the IO manager
    from spotify_assets.defs.model.assets import popularity_features

    assert dg.materialize([popularity_features], resources=build_resources(settings)).success
    loaded = build_definitions(settings).load_asset_value("popularity_features")
    assert len(loaded) == len(duck.query(duck.render(FEATURES_SQL.read_text(encoding="utf-8"), history_windows=90)))


def test_the_listening_history_and_its_views_answer_as_on_duckdb(both) -> None:
    from datetime import datetime, timezone

    from spotify_assets.lib.listening.files import LISTENING_PREFIX
    from spotify_assets.lib.samples.listening import write_sample_exports

    lake, duck, _, _, _, lake_dir = both
    duck_dir = duck.db.path.parent
    write_sample_exports(lake_dir / LISTENING_PREFIX, now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    shutil.copytree(lake_dir / LISTENING_PREFIX, duck_dir / LISTENING_PREFIX)
    for target, data_dir in (("iceberg", lake_dir), ("duckdb", duck_dir)):
        job = build_definitions(_settings(data_dir, target)).resolve_job_def("listening_job")
        with dg.DagsterInstance.ephemeral() as instance:
            assert job.execute_in_process(instance=instance).success, target
    listening = sorted(v.key.to_user_string() for v in view_assets if v.key.to_user_string().startswith("listening_"))
    for name in ["streams", "listening_files", *listening]:
        ours, theirs = lake.query(f"SELECT * FROM analytics.{name}"), duck.query(f"SELECT * FROM analytics.{name}")
        assert len(ours) > 0, name
        # when each run read the files, and the copies' local tags (mtime, inode): all else is equal
        ours, theirs = (f.drop(columns=[c for c in ("ingested_at", "tag") if c in f.columns]) for f in (ours, theirs))
        pd.testing.assert_frame_equal(_comparable(ours), _comparable(theirs[ours.columns]), obj=name)
