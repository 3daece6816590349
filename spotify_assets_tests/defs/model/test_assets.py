"""The popularity forecast in real runs of the pipeline job: trained and judged on the sample's
windows, stored only when its champion beats persistence and the global mean, not retrained
without popularity, and the same in production (model in S3 through moto's server, tables in
fakesnow's Snowflake)."""

import base64
import os
import pickle
import re
import shutil
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
CHECK = "beats_baselines"
# The sample's windows from a fixed date (it can produce any window), so that what the forecast
# meets is the same whatever the day the tests run: two windows ahead, five windows give a
# held-out test (trained on the first), and there the champion beats persistence by about 10%.
FIRST_WINDOW = "2026-11-06"
HORIZON = 2
HORIZON_2 = {"ops": {MODEL_OP: {"config": {"horizon_windows": HORIZON}}}}


@pytest.fixture(autouse=True)
def pinned_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_ASSETS_FIRST_WINDOW", FIRST_WINDOW)


def _key(offset: int = 1) -> str:
    """The fifth window from FIRST_WINDOW (offset 1), the fourth (offset 2), ..."""
    return windows().get_partition_keys()[5 - offset]


def _run(instance: dg.DagsterInstance, key: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    return (
        defs()
        .resolve_job_def("spotify_pipeline_job")
        .execute_in_process(partition_key=key, instance=instance, raise_on_error=False, run_config=run_config or {})
    )


def _config(**fields: object) -> dict:
    return {"ops": {MODEL_OP: {"config": {"horizon_windows": HORIZON, **fields}}}}


@pytest.fixture(scope="module")
def sample_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's four windows before the fifth, run once for the module (the model's
    horizon set out of reach, so that nothing is trained or stored): a data directory each
    test copies, then runs the fifth window on."""
    data = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("SPOTIFY_", "SNOWFLAKE_", "AWS_", "DAGSTER_HOME")):
                mp.delenv(name)
        mp.setenv("SPOTIFY_ASSETS_DATA_DIR", str(data))
        mp.setenv("SPOTIFY_ASSETS_FIRST_WINDOW", FIRST_WINDOW)
        with dg.instance_for_test() as instance:
            for offset in (5, 4, 3, 2):
                result = _run(instance, _key(offset), _config(horizon_windows=90))
                assert result.success
                assert "popularity_model" not in _materialized(result)
    assert not (data / "models" / "popularity_model").exists()
    return data


def _with_history(history: Path) -> None:
    shutil.copytree(history, load_settings().data_dir, dirs_exist_ok=True)


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
def test_the_pipeline_forecasts_judges_stores_and_scores_on_the_sample(sample_history: Path) -> None:
    _with_history(sample_history)
    with dg.instance_for_test() as instance:
        result = _run(instance, _key(1), HORIZON_2)
        assert result.success, [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        meta = _materialized(result)
        model_meta = meta["popularity_model"]
        assert model_meta["horizon_windows"] == HORIZON and model_meta["champion"] in ml.CANDIDATES
        # the champion is the best candidate, and it beats persistence and the global mean
        candidates = {name: model_meta[f"{name}_mae"] for name in ml.CANDIDATES}
        assert model_meta["mae"] == min(candidates.values()) == candidates[model_meta["champion"]]
        assert model_meta["mae"] < model_meta["persistence_mae"] < model_meta["global_mean_mae"]
        records = model_meta["evaluation"].records
        assert [r.data["model"].removesuffix(" (champion)") for r in records] == [ml.MODEL_LABELS[m] for m in ml.MODEL_NAMES]
        assert [r.data["model"] for r in records].count(ml.MODEL_LABELS[model_meta["champion"]] + " (champion)") == 1
        # held out: songs with history and songs new in their window, each counted
        assert model_meta["held_out_pairs"] == model_meta["held_out_history"] + model_meta["held_out_new"]
        assert model_meta["held_out_history"] > 0 and model_meta["held_out_new"] > 0
        png = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", model_meta["plot"]).group(1)
        assert base64.b64decode(png).startswith(b"\x89PNG")
        importances = {r.data["feature"]: r.data["importance"] for r in model_meta["feature_importances"].records}
        assert set(importances) == set(ml.FEATURES) and max(importances.values()) > 0
        assert 0 < model_meta["model_size_mb"] < 50
        # figures rounded to what they mean: popularity errors to 0.01 point, R² to 0.001
        for name in ("mae", "rmse", *(f"{m}_mae" for m in ml.MODEL_NAMES)):
            assert round(model_meta[name], 2) == model_meta[name], (name, model_meta[name])
        assert round(model_meta["r2"], 3) == model_meta["r2"]
        checks = _model_checks(result)
        assert {n: c.passed for n, c in checks.items()} == {CHECK: True, "within_size_bound": True}

        # the stored model is the one the materialization describes, and loads in one line
        model = defs().load_asset_value("popularity_model")
        assert isinstance(model, PopularityModel) and model.version == model_meta["model_version"]
        assert model.kind == model_meta["champion"] and model.horizon_windows == HORIZON
        assert model.metrics["mae"] == pytest.approx(model_meta["mae"], abs=0.005)
        features = defs().load_asset_value("popularity_features")
        assert features["window_start"].nunique() == meta["popularity_features"]["windows"] == 5
        assert meta["popularity_features"]["songs"] == features["song_id"].nunique() > 300
        assert not features.duplicated(["song_id", "window_start"]).any()
        # the forecasts: every song of the newest window, a horizon ahead
        predictions = _predictions()
        newest = features[features["window_start"] == features["window_start"].max()]
        assert sorted(predictions["song_id"]) == sorted(newest["song_id"])
        assert set(predictions["model_version"]) == {model.version} and set(predictions["horizon_windows"]) == {HORIZON}
        assert (predictions["forecast_window"] - predictions["window_start"] == pd.Timedelta(hours=8 * HORIZON)).all()
        change = predictions["predicted_popularity"] - predictions["popularity"].astype("float64")
        assert (change.round(2) - predictions["expected_change"]).abs().max() < 0.011
        assert predictions["new_song"].sum() == (newest["windows_listed_before"] == 0).sum()
        by_song = predictions.set_index("song_id")["predicted_popularity"]
        # predict() derives the change over one horizon from the song's earlier rows: all of them given
        everywhere = pd.Series(model.predict(features).round(2), index=features.index)
        expected = pd.Series(everywhere.loc[newest.index].to_numpy(), index=newest["song_id"].to_numpy())
        pd.testing.assert_series_equal(by_song.loc[expected.index], expected, check_names=False)
        shown = meta["song_popularity_predictions"]
        columns = list(predictions.columns)
        assert [c.name for c in shown["dagster/column_schema"].columns] == columns
        rising = predictions[predictions["expected_change"] > 0]
        assert shown["songs_rising"] == len(rising) > 0
        top = shown["top_rising"]
        assert [r.data["expected_change"] for r in top.records] == rising["expected_change"].nlargest(10).tolist()
        # the rising_songs view: the rising forecasts, ranked
        view = defs().resources["warehouse"].query("SELECT * FROM analytics.rising_songs ORDER BY rising_rank")
        assert len(view) == len(rising) and list(view["rising_rank"]) == list(range(1, len(rising) + 1))
        assert view["expected_change"].is_monotonic_decreasing and view["artist_name"].notna().all()

        # the same window again: same data and parameters, so nothing is retrained or rewritten
        before = _model_file().read_bytes()
        again = _run(instance, _key(1), HORIZON_2)
        assert again.success and "popularity_model" not in _materialized(again)
        (seen,) = _observations(again)
        assert seen.metadata["retrained"].value is False and model.version in seen.metadata["reason"].value
        assert _model_file().read_bytes() == before
        # force retrains
        forced = _run(instance, _key(1), _config(force=True))
        assert _materialized(forced)["popularity_model"]["model_version"] == model.version


def _worse_than_persistence(evaluate):  # type: ignore[no-untyped-def]
    """ml.evaluate, but every candidate's held-out MAE comes out half a point worse than
    persistence's (what a forecast of data its features cannot explain looks like)."""

    def wrapped(features, params, log=None):  # type: ignore[no-untyped-def]
        evaluation = evaluate(features, params, log)
        table = evaluation.table.set_index("model")
        for name in ml.CANDIDATES:
            table.loc[name, "mae"] = table.loc["persistence", "mae"] + 0.5
        evaluation.table = table.reset_index()
        return evaluation

    return wrapped


@pytest.mark.slow
def test_a_forecast_that_does_not_beat_persistence_is_refused_with_the_figures(monkeypatch, sample_history: Path) -> None:
    _with_history(sample_history)
    with dg.instance_for_test() as instance:
        assert _run(instance, _key(), HORIZON_2).success
        stored = _model_file().read_bytes()
        version = defs().load_asset_value("popularity_model").version
        predictions = _predictions()

        monkeypatch.setattr(ml, "evaluate", _worse_than_persistence(ml.evaluate))
        result = _run(instance, _key(), _config(force=True))
        assert not result.success
        checks = _model_checks(result)
        check = checks[CHECK]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert check.metadata["model_in_use"].value == version
        assert "does not beat persistence" in check.description
        assert check.metadata["mae"].value == pytest.approx(check.metadata["persistence_mae"].value + 0.5, abs=0.011)
        assert checks["within_size_bound"].passed
        assert "popularity_model" not in _materialized(result)
        assert "song_popularity_predictions" not in _materialized(result)
        (rejected,) = _observations(result)
        assert rejected.metadata["stored"].value is False
        assert rejected.metadata["mae"].value > rejected.metadata["persistence_mae"].value
        assert "does not beat persistence" in rejected.description
        # the previous model and its forecasts stay in use, untouched
        assert _model_file().read_bytes() == stored
        pd.testing.assert_frame_equal(_predictions(), predictions)


@pytest.mark.slow
def test_bad_config_and_the_size_bound_store_nothing(sample_history: Path) -> None:
    _with_history(sample_history)
    with dg.instance_for_test() as instance:
        bad = _run(instance, _key(), _config(n_estimators=0))
        assert not bad.success
        (failure,) = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failure.step_key == MODEL_OP
        assert "n_estimators" in str(failure.event_specific_data.error) and "greater than or equal to 1" in str(failure.event_specific_data.error)

        big = _run(instance, _key(), _config(max_model_mb=0.001))
        assert not big.success
        checks = _model_checks(big)
        assert checks[CHECK].passed and not checks["within_size_bound"].passed
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
    monkeypatch.delenv("SPOTIFY_ASSETS_FIRST_WINDOW")  # the API's windows are the latest ones
    definitions = defs()
    schedule = definitions.resolve_schedule_def("spotify_pipeline_schedule")
    with dg.instance_for_test() as instance:
        tick = windows().time_window_for_partition_key(windows().get_partition_keys()[-1]).end
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            (request,) = schedule.evaluate_tick(context).run_requests
        result = definitions.resolve_job_def("spotify_pipeline_job").execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=instance, raise_on_error=False
        )
        assert result.success
        materialized = _materialized(result)
        assert materialized["popularity_features"]["song_windows_with_popularity"] == 0
        assert "popularity_model" not in materialized and "song_popularity_predictions" not in materialized
        (why,) = _observations(result)
        assert why.metadata["retrained"].value is False and why.metadata["model_in_use"].value == "none"
        assert "Development Mode" in why.description and "no longer returns it" in why.metadata["reason"].value
        # planned, never evaluated, in a run that succeeded: the UI shows the check as skipped
        (record,) = instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(MODEL, CHECK), limit=5)
        assert record.status == AssetCheckExecutionRecordStatus.PLANNED and record.run_id == result.run_id


def _drifting_playlist(window: int) -> tuple[dict, list[dict]]:
    """120 songs; the explicit half gains 3 points a window, the others stay: a trend the
    features announce, which persistence misses."""
    meta, rows = playlist("prod-model", 120)
    for i, r in enumerate(rows):
        rising = i % 2 == 0
        r["item"]["explicit"] = rising
        r["item"]["popularity"] = min(100, 20 + i % 50 + (3 * window if rising else 0))
    return meta, rows


@pytest.mark.slow
def test_production_stores_the_model_in_s3_and_notebooks_load_it_from_there(
    monkeypatch, s3_env, fakesnow_server, snowflake_database
) -> None:
    """Extended Quota shape (with popularity), four windows of a drifting playlist: the forecast
    trains on the API's rows, lands in S3, its forecasts in Snowflake, and `load_asset_value`
    reads it back from S3."""
    import boto3

    with SpotifyEmulator(shape="2025") as emulator:
        meta, _ = _drifting_playlist(0)
        configure(
            monkeypatch, s3_env=s3_env, fakesnow_server=fakesnow_server, database=snowflake_database,
            emulator=emulator, playlist_ids=[meta["id"]],
        )
        monkeypatch.setenv("SPOTIFY_ASSETS_MAX_WINDOW_LAG_HOURS", "48")  # the four windows before are read now
        monkeypatch.delenv("SPOTIFY_ASSETS_FIRST_WINDOW")  # the API's windows are the latest ones
        recent = windows().get_partition_keys()[-5:]
        with dg.instance_for_test() as instance:
            for window, key in enumerate(recent):
                emulator.add_playlist(*_drifting_playlist(window))
                result = _run(instance, key, HORIZON_2)
                assert result.success, [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    model_meta = _materialized(result)["popularity_model"]
    assert model_meta["mae"] < model_meta["persistence_mae"] and model_meta["mae"] < model_meta["global_mean_mae"]
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_env["bucket"], Prefix="spotify-assets/models/")["Contents"]]
    assert keys == ["spotify-assets/models/popularity_model"]
    model = defs().load_asset_value("popularity_model")
    assert isinstance(model, PopularityModel) and model.version == model_meta["model_version"]
    with snowflake.connector.connect(**fakesnow_server) as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*), MIN(model_version), MAX(model_version), AVG(CASE WHEN new_song THEN 1 ELSE 0 END) "
            f"FROM {snowflake_database}.ANALYTICS.SONG_POPULARITY_PREDICTIONS"
        )
        assert cur.fetchone() == (120, model.version, model.version, 0)
        # the rising half is forecast to rise, the steady half not
        cur.execute(f"SELECT COUNT(*) FROM {snowflake_database}.ANALYTICS.RISING_SONGS WHERE expected_change > 1.5")
        assert cur.fetchone()[0] >= 50


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
