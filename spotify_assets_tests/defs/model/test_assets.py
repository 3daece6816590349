"""The popularity model in real runs of the pipeline job: trained and judged on the sample,
stored only when it beats the global mean, not retrained without popularity, and the same
in production (model in S3 through moto's server, tables in fakesnow's Snowflake)."""

import base64
import pickle
import re
from pathlib import Path

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.definitions import defs
from spotify_assets_tests.support.windows import windows
from spotify_assets.lib.settings import load_settings
from spotify_assets.lib.model import popularity as ml
from spotify_assets.lib.model.popularity import PopularityModel
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist
from spotify_assets_tests.support.production import configure

MODEL = dg.AssetKey("popularity_model")
MODEL_OP = "popularity_model_training"


def _key(offset: int = 1) -> str:
    return windows().get_partition_keys()[-offset]


def _run(instance: dg.DagsterInstance, key: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    return (
        defs()
        .resolve_job_def("spotify_pipeline_job")
        .execute_in_process(partition_key=key, instance=instance, raise_on_error=False, run_config=run_config or {})
    )


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def _model_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations() if c.asset_key == MODEL}


def _observations(result: dg.ExecuteInProcessResult) -> list[dg.AssetObservation]:
    return [e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]


def _model_file() -> Path:
    return load_settings().data_dir / "models" / "popularity_model"


def _predictions() -> pd.DataFrame:
    return defs().load_asset_value("song_popularity_predictions")


@pytest.mark.slow
def test_the_pipeline_trains_judges_stores_and_scores_the_model_on_the_sample() -> None:
    with dg.instance_for_test() as instance:
        first = _run(instance, _key(2))
        result = _run(instance, _key(1))
        assert first.success and result.success
        meta = _materialized(result)
        model_meta = meta["popularity_model"]
        assert model_meta["mae"] < model_meta["global_mean_mae"] and model_meta["mae"] < model_meta["artist_mean_mae"]
        assert model_meta["r2"] > 0.5
        records = model_meta["evaluation"].records
        assert [r.data["model"] for r in records] == [
            "baseline: global mean", "baseline: artist mean", "linear (ridge)", "random forest"
        ]
        png = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", model_meta["plot"]).group(1)
        assert base64.b64decode(png).startswith(b"\x89PNG")
        importances = {r.data["feature"]: r.data["importance"] for r in model_meta["feature_importances"].records}
        assert "previous_popularity" in importances and sum(importances.values()) == pytest.approx(1, abs=0.01)
        assert 0 < model_meta["model_size_mb"] < 50
        # figures rounded to what they mean: popularity errors to 0.01 point, R² to 0.001
        for name in ("mae", "rmse", "global_mean_mae", "artist_mean_mae", "linear_mae"):
            assert round(model_meta[name], 2) == model_meta[name], (name, model_meta[name])
        assert round(model_meta["r2"], 3) == model_meta["r2"]
        assert all(round(r.data["mae"], 2) == r.data["mae"] for r in records)
        checks = _model_checks(result)
        assert {n: c.passed for n, c in checks.items()} == {"beats_global_mean": True, "within_size_bound": True}

        # the stored model is the one the materialization describes, and loads in one line
        model = defs().load_asset_value("popularity_model")
        assert isinstance(model, PopularityModel) and model.version == model_meta["model_version"]
        assert model.metrics["mae"] == pytest.approx(model_meta["mae"], abs=0.005)
        features = defs().load_asset_value("popularity_features")
        assert meta["popularity_features"]["songs"] == len(features) > 300
        assert meta["popularity_features"]["songs_with_history"] > 0  # the window before gave popularity
        predictions = _predictions()
        assert len(predictions) == len(features) and set(predictions["model_version"]) == {model.version}
        # the predictions table: its declared schema, and previews with every column
        shown = meta["song_popularity_predictions"]
        columns = list(predictions.columns)
        assert [c.name for c in shown["dagster/column_schema"].columns] == columns
        assert isinstance(shown["preview"], dg.TableMetadataValue) and [c.name for c in shown["preview"].schema.columns] == columns
        assert shown["dagster/row_count"] == len(predictions)
        top = shown["top_predicted"]
        assert isinstance(top, dg.TableMetadataValue) and len(top.records) == 10
        assert [r.data["predicted_popularity"] for r in top.records] == sorted(predictions["predicted_popularity"].nlargest(10).round(2).tolist(), reverse=True)
        by_song = predictions.set_index("song_id")["predicted_popularity"]
        expected = pd.Series(model.predict(features).round(2), index=features["song_id"])
        pd.testing.assert_series_equal(by_song.loc[expected.index], expected, check_names=False)

        # the same window again: same data and parameters, so nothing is retrained or rewritten
        before = _model_file().read_bytes()
        again = _run(instance, _key(1))
        assert again.success and "popularity_model" not in _materialized(again)
        (seen,) = _observations(again)
        assert seen.metadata["retrained"].value is False and model.version in seen.metadata["reason"].value
        assert _model_file().read_bytes() == before
        # force retrains
        forced = _run(instance, _key(1), {"ops": {MODEL_OP: {"config": {"force": True}}}})
        assert _materialized(forced)["popularity_model"]["model_version"] == model.version


def _worse_than_the_global_mean(evaluate):  # type: ignore[no-untyped-def]
    """ml.evaluate, but the forest's held-out MAE comes out one point worse than the global
    mean's (what a candidate trained on data its features cannot explain looks like)."""

    def wrapped(features, params):  # type: ignore[no-untyped-def]
        evaluation = evaluate(features, params)
        table = evaluation.table.set_index("model")
        table.loc["random_forest", "mae"] = table.loc["global_mean", "mae"] + 1
        evaluation.table = table.reset_index()
        return evaluation

    return wrapped


@pytest.mark.slow
def test_a_model_that_does_not_beat_the_global_mean_is_not_stored(monkeypatch) -> None:
    with dg.instance_for_test() as instance:
        assert _run(instance, _key()).success
        stored = _model_file().read_bytes()
        version = defs().load_asset_value("popularity_model").version
        predictions = _predictions()

        monkeypatch.setattr(ml, "evaluate", _worse_than_the_global_mean(ml.evaluate))
        result = _run(instance, _key(), {"ops": {MODEL_OP: {"config": {"force": True}}}})
        assert not result.success
        checks = _model_checks(result)
        assert not checks["beats_global_mean"].passed and checks["beats_global_mean"].severity == dg.AssetCheckSeverity.ERROR
        assert checks["beats_global_mean"].metadata["model_in_use"].value == version
        assert checks["within_size_bound"].passed
        assert "popularity_model" not in _materialized(result)
        assert "song_popularity_predictions" not in _materialized(result)
        (rejected,) = _observations(result)
        assert rejected.metadata["stored"].value is False and rejected.metadata["mae"].value >= rejected.metadata["global_mean_mae"].value
        # the previous model and its predictions stay in use, untouched
        assert _model_file().read_bytes() == stored
        pd.testing.assert_frame_equal(_predictions(), predictions)


@pytest.mark.slow
def test_bad_config_and_the_size_bound_store_nothing() -> None:
    with dg.instance_for_test() as instance:
        bad = _run(instance, _key(), {"ops": {MODEL_OP: {"config": {"n_estimators": 0}}}})
        assert not bad.success
        (failure,) = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failure.step_key == MODEL_OP
        assert "n_estimators" in str(failure.event_specific_data.error) and "greater than or equal to 1" in str(failure.event_specific_data.error)

        big = _run(instance, _key(), {"ops": {MODEL_OP: {"config": {"max_model_mb": 0.001}}}})
        assert not big.success
        checks = _model_checks(big)
        assert checks["beats_global_mean"].passed and not checks["within_size_bound"].passed
        assert "over max_model_mb" in _observations(big)[0].description
        assert not _model_file().exists()
        assert "popularity_model" not in _materialized(big)


@pytest.mark.slow
def test_without_popularity_the_scheduled_run_succeeds_and_says_why(monkeypatch, emulator: SpotifyEmulator) -> None:
    """A Development Mode app: the emulator's 2026 shape carries no popularity."""
    meta, rows = playlist("dev-mode", 80)
    emulator.add_playlist(meta, rows)
    for name, value in {
        "SPOTIFY_CLIENT_ID": emulator.client_id,
        "SPOTIFY_CLIENT_SECRET": emulator.client_secret,
        "SPOTIFY_API_URL": emulator.api_url,
        "SPOTIFY_ACCOUNTS_URL": emulator.accounts_url,
        "SPOTIFY_PLAYLISTS": meta["id"],
    }.items():
        monkeypatch.setenv(name, value)
    definitions = defs()
    schedule = definitions.resolve_schedule_def("spotify_pipeline_schedule")
    with dg.instance_for_test() as instance:
        tick = windows().time_window_for_partition_key(_key()).end
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            (request,) = schedule.evaluate_tick(context).run_requests
        result = definitions.resolve_job_def("spotify_pipeline_job").execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=instance, raise_on_error=False
        )
        assert result.success
        materialized = _materialized(result)
        assert materialized["popularity_features"]["songs_with_popularity"] == 0
        assert "popularity_model" not in materialized and "song_popularity_predictions" not in materialized
        (why,) = _observations(result)
        assert why.metadata["retrained"].value is False and why.metadata["model_in_use"].value == "none"
        assert "Development Mode" in why.description and "no longer returns it" in why.metadata["reason"].value
        # planned, never evaluated, in a run that succeeded: the UI shows the check as skipped
        (record,) = instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(MODEL, "beats_global_mean"), limit=5)
        assert record.status == AssetCheckExecutionRecordStatus.PLANNED and record.run_id == result.run_id


@pytest.mark.slow
def test_production_stores_the_model_in_s3_and_notebooks_load_it_from_there(
    monkeypatch, s3_env, fakesnow_server, snowflake_database
) -> None:
    """Extended Quota shape (with popularity): the model trains on the API's rows, lands in S3,
    its predictions in Snowflake, and `load_asset_value` reads it back from S3."""
    import boto3

    meta, rows = playlist("prod-model", 120)  # popularity follows the row's position
    with SpotifyEmulator(shape="2025") as emulator:
        emulator.add_playlist(meta, rows)
        configure(
            monkeypatch, s3_env=s3_env, fakesnow_server=fakesnow_server, database=snowflake_database,
            emulator=emulator, playlist_ids=[meta["id"]],
        )
        with dg.instance_for_test() as instance:
            result = _run(instance, _key())
    assert result.success, [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    model_meta = _materialized(result)["popularity_model"]
    assert model_meta["mae"] < model_meta["global_mean_mae"]
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_env["bucket"], Prefix="spotify-assets/models/")["Contents"]]
    assert keys == ["spotify-assets/models/popularity_model"]
    model = defs().load_asset_value("popularity_model")
    assert isinstance(model, PopularityModel) and model.version == model_meta["model_version"]
    with snowflake.connector.connect(**fakesnow_server) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*), MIN(model_version), MAX(model_version) FROM {snowflake_database}.ANALYTICS.SONG_POPULARITY_PREDICTIONS")
        assert cur.fetchone() == (120, model.version, model.version)


class _FailsToPickle:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        raise pickle.PicklingError("this object cannot be stored")


def test_a_model_write_that_fails_leaves_the_stored_model_whole(tmp_path: Path) -> None:
    """The local model store writes a temporary file and renames it: a write that fails half
    way (after 8 MB here) leaves the previous file exactly as it was."""
    from spotify_assets.defs.io_managers import ModelFilesIOManager

    value = {"first": b"x" * 1000}

    @dg.asset(name="popularity_model", io_manager_key="models")
    def stored():  # type: ignore[no-untyped-def]
        return value

    models = ModelFilesIOManager(base_dir=str(tmp_path))
    assert dg.materialize([stored], resources={"models": models}).success
    before = (tmp_path / "popularity_model").read_bytes()
    value.clear()
    value.update({"big": b"y" * 8_000_000, "broken": _FailsToPickle()})
    assert not dg.materialize([stored], resources={"models": models}, raise_on_error=False).success
    assert (tmp_path / "popularity_model").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["popularity_model"]  # no temporary file left
