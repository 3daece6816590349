"""The popularity forecast's rules, without Dagster: features in SQL on DuckDB and Snowflake,
pairs a horizon apart, folds that never train on the future or on the tested artists, the
champion against the baselines, and when a model cannot be trained."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta, timezone

import duckdb
import numpy as np
import pandas as pd
import pytest
import snowflake.connector

from spotify_assets.lib.model import popularity as ml
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.tables.schema import POPULARITY_FEATURES
from spotify_assets.lib.warehouse.duckdb import duckdb_replace
from spotify_assets.lib.warehouse.snowflake import snowflake_replace
from spotify_assets.lib.window import Window
from spotify_assets_tests.support.fixtures import artist, document, playlist, row, track
from spotify_assets_tests.support.panel import make_panel
from spotify_assets_tests.support.snowflake import insert_rows

FEATURES_SQL = (ml.__file__.rsplit("/spotify_assets/", 1)[0]) + "/sql/model/popularity_features.sql"
W1 = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
W2 = W1 + timedelta(hours=8)


# --- features in SQL: computed by hand on a small fixture --------------------------------------


def _song(label: str, artist_label: str, popularity: int | None) -> dict:
    t = track(label, popularity=popularity or 0)
    t["artists"] = [artist(artist_label)]
    if popularity is None:
        del t["popularity"]  # as a Development Mode app receives it
    return t


def _fixture_windows() -> dict[datetime, dict[str, pd.DataFrame]]:
    """Artist X: x1 (40 then 50), x2 (20 then 30), x3 (never a popularity). Artist Y: y1 (70,
    then none). Playlist P lists x1, x2, x3, y1; playlist Q lists x2, x1."""
    popularity = {W1: {"x1": 40, "x2": 20, "x3": None, "y1": 70}, W2: {"x1": 50, "x2": 30, "x3": None, "y1": None}}
    p_meta, _ = playlist("P", 0)
    q_meta, _ = playlist("Q", 0)
    windows = {}
    for window, pops in popularity.items():
        songs = {label: _song(label, "Y" if label == "y1" else "X", pops[label]) for label in pops}
        p_rows = [row(songs[x], added_at="2026-11-01T00:00:00Z") for x in ("x1", "x2", "x3", "y1")]
        q_rows = [row(songs[x], added_at="2026-11-10T00:00:00Z") for x in ("x2", "x1")]
        docs = [document(p_meta, p_rows), document(q_meta, q_rows)]
        windows[window] = normalize_documents(window, docs).frames
    return windows


def _sql(schema: str, history_windows: int = 90) -> str:
    sql = open(FEATURES_SQL, encoding="utf-8").read()
    return sql.replace("{schema}", schema).replace("{history_windows}", str(history_windows))


def _features_duckdb(windows, history_windows: int = 90) -> pd.DataFrame:
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for start, frames in windows.items():
            for name, frame in frames.items():
                duckdb_replace(conn, "analytics", name, frame, Window(start, start + timedelta(hours=8)))
        frame = conn.execute(_sql("analytics", history_windows)).fetchdf()
        return POPULARITY_FEATURES.conform(frame).sort_values(["song_id", "window_start"], ignore_index=True)


def _features_snowflake(windows, server: dict, database: str) -> pd.DataFrame:
    with snowflake.connector.connect(**server) as conn:
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        for start, frames in windows.items():
            for name, frame in frames.items():
                snowflake_replace(conn, database, "analytics", name, frame, Window(start, start + timedelta(hours=8)), stage=insert_rows)
        cur = conn.cursor()
        cur.execute(_sql(f"{database}.ANALYTICS"))
        frame = cur.fetch_pandas_all()
    frame.columns = [c.lower() for c in frame.columns]
    return POPULARITY_FEATURES.conform(frame).sort_values(["song_id", "window_start"], ignore_index=True)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["label"] = frame["name"]
    frame["window"] = frame["window_start"].map({pd.Timestamp(W1): 1, pd.Timestamp(W2): 2})
    return frame.set_index(["label", "window"])


@pytest.fixture(scope="module")
def fixture_features() -> pd.DataFrame:
    return _labelled(_features_duckdb(_fixture_windows()))


def test_one_row_per_song_and_window_with_the_popularity_then(fixture_features) -> None:
    f = fixture_features
    assert sorted(f.index) == [(x, w) for x in ("x1", "x2", "x3", "y1") for w in (1, 2)]
    assert f.loc[("x1", 1), "popularity"] == 40 and f.loc[("x1", 2), "popularity"] == 50
    assert f.loc[("y1", 1), "popularity"] == 70 and pd.isna(f.loc[("y1", 2), "popularity"])
    assert pd.isna(f.loc[("x3", 1), "popularity"]) and pd.isna(f.loc[("x3", 2), "popularity"])


def test_history_comes_only_from_earlier_windows(fixture_features) -> None:
    f = fixture_features
    for label in ("x1", "x2", "x3", "y1"):  # the first window knows no history
        assert pd.isna(f.loc[(label, 1), "previous_popularity"]) and f.loc[(label, 1), "windows_listed_before"] == 0
        assert f.loc[(label, 1), "popularity_windows_before"] == 0
    assert f.loc[("x1", 2), "previous_popularity"] == 40 and f.loc[("x2", 2), "previous_popularity"] == 20
    assert f.loc[("x1", 2), "popularity_windows_before"] == 1 and f.loc[("x1", 2), "windows_listed_before"] == 1
    # y1 lost its popularity in W2: its history still says 70, from W1
    assert f.loc[("y1", 2), "previous_popularity"] == 70 and f.loc[("y1", 2), "popularity_windows_before"] == 1
    assert pd.isna(f.loc[("x3", 2), "previous_popularity"]) and f.loc[("x3", 2), "windows_listed_before"] == 1


def test_artist_aggregates_are_per_window_and_leave_the_song_itself_out(fixture_features) -> None:
    f = fixture_features
    assert f.loc[("x1", 2), "artist_other_mean_popularity"] == 30  # x2 only: x3 has none, x1 is left out
    assert f.loc[("x2", 2), "artist_other_mean_popularity"] == 50
    assert f.loc[("x3", 2), "artist_other_mean_popularity"] == 40  # (50 + 30) / 2
    assert f.loc[("x3", 1), "artist_other_mean_popularity"] == 30  # (40 + 20) / 2: W1's values
    assert pd.isna(f.loc[("y1", 2), "artist_other_mean_popularity"])  # Y has no other song
    assert f.loc[("x1", 2), "artist_other_songs"] == 2 and f.loc[("y1", 2), "artist_other_songs"] == 0


def test_playlist_release_and_added_features(fixture_features) -> None:
    f = fixture_features
    x1 = f.loc[("x1", 2)]
    assert x1["playlist_appearances"] == 2 and x1["playlist_count"] == 2
    assert x1["mean_position"] == 0.5  # P position 0, Q position 1
    assert f.loc[("x3", 2), "mean_position"] == 2 and f.loc[("x3", 2), "playlist_count"] == 1
    assert x1["days_since_added"] == 19  # first added 2026-11-01, window 2026-11-20
    # '2002' (year precision): from the middle of 2002 to the window, no invented January 1st
    middle = (date(2026, 11, 20) - date(2002, 1, 1)).days - (date(2002, 12, 31) - date(2002, 1, 1)).days / 2
    assert x1["release_age_days"] == middle and x1["release_date_precision"] == "year"


def test_history_windows_bounds_the_rows_not_the_history() -> None:
    newest = _labelled(_features_duckdb(_fixture_windows(), history_windows=1))
    assert sorted(newest.index) == [(x, 2) for x in ("x1", "x2", "x3", "y1")]
    assert newest.loc[("x1", 2), "previous_popularity"] == 40 and newest.loc[("x1", 2), "windows_listed_before"] == 1


@pytest.mark.slow
def test_snowflake_computes_the_same_features(fixture_features, fakesnow_server) -> None:
    snow = _features_snowflake(_fixture_windows(), fakesnow_server, "MODEL_FEATURES")
    pd.testing.assert_frame_equal(snow, _features_duckdb(_fixture_windows()))


# --- pairs, folds, evaluation and training on generated frames ----------------------------------

PARAMS = ml.TrainingParams(horizon_windows=3, n_estimators=20, max_depth=8, boosting_iterations=60, cv_folds=3)


@pytest.fixture(scope="module")
def trending() -> pd.DataFrame:
    """Songs that peak after release and decay, slow drifts, a little noise; plus a planted
    trend: songs under 30 days old climb 1.5 points a window."""
    return make_panel(600, 12, seed=3, planted=1.5)


def test_pairs_are_the_same_song_a_horizon_later() -> None:
    frame = make_panel(50, 6, seed=1)
    pairs = ml.forecast_pairs(frame, 2)
    by_key = frame.set_index(["song_id", "window_start"])["popularity"]
    assert len(pairs) > 0
    for p in pairs.sample(40, random_state=0).itertuples():
        assert p.target_window == p.window_start + pd.Timedelta(hours=16)
        assert p.target == by_key[(p.song_id, p.target_window)] and p.popularity == by_key[(p.song_id, p.window_start)]
    # a song not listed a horizon later has no pair; rows without a popularity make none
    listed = set(by_key.index)
    expected = sum((s, w + pd.Timedelta(hours=16)) in listed for s, w in listed)
    assert len(pairs) == expected
    gone = frame.assign(popularity=frame["popularity"].where(frame["window_start"] != frame["window_start"].max()))
    assert len(ml.forecast_pairs(gone, 2)) < len(pairs)
    # derived history: the change over one horizon is from the same song's row a horizon earlier
    some = pairs[pairs["popularity_change_horizon"].notna()].iloc[0]
    earlier = by_key[(some["song_id"], some["window_start"] - pd.Timedelta(hours=16))]
    assert some["popularity_change_horizon"] == some["popularity"] - earlier


@pytest.mark.parametrize("horizon", [1, 3])
def test_the_time_split_never_trains_on_a_window_later_than_one_it_tests_on(horizon: int) -> None:
    frame = make_panel(400, 14, seed=2)
    pairs = ml.forecast_pairs(frame, horizon)
    folds = ml.time_artist_folds(pairs, horizon, 5, seed=0)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert len(tested) == len(set(tested.tolist()))  # each pair tested once
    for train, test in folds:
        train_rows, test_rows = pairs.iloc[train], pairs.iloc[test]
        # every answer the fold trains on was known when its first test forecast was made
        assert train_rows["target_window"].max() <= test_rows["window_start"].min()
        assert train_rows["window_start"].max() < test_rows["window_start"].min()
        assert not set(train_rows["artist_id"]) & set(test_rows["artist_id"])  # no tested artist trains


def test_the_time_split_holds_out_windows_a_horizon_after_the_first() -> None:
    frame = make_panel(300, 5, seed=4)  # windows 0..4, horizon 2: pairs at 0..2, tests only at 2
    pairs = ml.forecast_pairs(frame, 2)
    folds = ml.time_artist_folds(pairs, 2, 5, seed=0)
    assert len(folds) == 2  # one window to test, split between two groups of artists
    for train, test in folds:
        assert set(ml.window_index(pairs["window_start"])[test]) == {2}
        assert set(ml.window_index(pairs["window_start"])[train]) == {0}
    assert ml.time_artist_folds(ml.forecast_pairs(make_panel(300, 4, seed=4), 2), 2, 5, seed=0) == []


def test_a_planted_trend_is_forecast_better_than_persistence(trending: pd.DataFrame) -> None:
    evaluation = ml.evaluate(trending, PARAMS)
    assert evaluation.beats_baselines
    best = evaluation.score(evaluation.champion)
    assert best < 0.8 * evaluation.score("persistence") < evaluation.score("global_mean")
    # the new songs are where the trend is: persistence misses most there
    assert evaluation.score(evaluation.champion, "mae_new") < 0.6 * evaluation.score("persistence", "mae_new")
    assert evaluation.held_out == evaluation.held_out_history + evaluation.held_out_new
    assert evaluation.held_out_new > 0 and evaluation.held_out_history > 0
    assert list(evaluation.table["model"]) == list(ml.MODEL_NAMES)


def test_the_champion_is_the_best_candidate(trending: pd.DataFrame) -> None:
    evaluation = ml.evaluate(trending, PARAMS)
    maes = {name: evaluation.score(name) for name in ml.CANDIDATES}
    assert evaluation.champion == min(maes, key=maes.get)
    # whichever candidate wins is the one trained and stored
    for winner in ml.CANDIDATES:
        table = evaluation.table.set_index("model")
        table.loc[list(ml.CANDIDATES), "mae"] = 5.0
        table.loc[winner, "mae"] = 1.0
        evaluation.table = table.reset_index()
        assert evaluation.champion == winner
    model = ml.train(trending, PARAMS, evaluation)
    assert model.kind == ml.CANDIDATES[-1]
    assert type(model.pipeline.named_steps["model"]).__name__ == "HistGradientBoostingRegressor"


def test_a_random_walk_is_not_forecast_better_than_persistence() -> None:
    """Changes that nothing announces: no candidate may claim to beat persistence by much,
    and the global mean stays far behind."""
    rng = np.random.default_rng(9)
    frame = make_panel(500, 12, seed=9, noise=0.0)
    frame = frame.sort_values(["song_id", "window_start"], ignore_index=True)
    steps = pd.Series(rng.normal(0, 2.0, len(frame))).groupby(frame["song_id"]).cumsum()
    start = frame.groupby("song_id")["popularity"].transform("first")
    frame["popularity"] = np.clip(np.round(start + steps), 0, 100).astype(int)
    frame["previous_popularity"] = frame.groupby("song_id")["popularity"].shift()
    frame["artist_other_mean_popularity"] = np.nan
    evaluation = ml.evaluate(frame, PARAMS)
    assert evaluation.score(evaluation.champion) > 0.95 * evaluation.score("persistence")
    assert evaluation.score("persistence") < 0.5 * evaluation.score("global_mean")


def test_a_trained_model_forecasts_the_newest_window(trending: pd.DataFrame) -> None:
    model = ml.train(trending, PARAMS)
    newest = trending[trending["window_start"] == trending["window_start"].max()]
    forecast = model.forecast(trending)
    assert sorted(forecast["song_id"]) == sorted(newest["song_id"])
    assert forecast["predicted_popularity"].between(0, 100).all()
    assert (forecast["forecast_window"] - forecast["window_start"] == pd.Timedelta(hours=24)).all()
    assert forecast["expected_change"].is_monotonic_decreasing
    np.testing.assert_allclose(
        forecast["expected_change"], (forecast["predicted_popularity"] - forecast["popularity"]).round(2), atol=0.011
    )
    # young songs (the planted trend) lead the rising list
    young = set(newest.loc[newest["release_age_days"] < 30, "song_id"])
    assert len(set(forecast["song_id"].head(10)) & young) >= 8
    assert set(model.importances.index) == set(ml.FEATURES) and model.importances.max() > 0
    assert model.version == ml.fingerprint(trending, PARAMS)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict(newest.head(3)), model.predict(newest.head(3)), rtol=1e-9)
    assert model.version != ml.fingerprint(trending, ml.TrainingParams(horizon_windows=2))
    # a row without a popularity now has no forecast
    assert np.isnan(model.predict(newest.head(1).assign(popularity=pd.array([None], dtype="Int32")))).all()


def test_the_same_rows_in_another_order_train_the_same_model(trending: pd.DataFrame) -> None:
    shuffled = trending.sample(frac=1, random_state=1)
    a, b = ml.train(trending, PARAMS), ml.train(shuffled, PARAMS)
    pd.testing.assert_frame_equal(a.evaluation.table, b.evaluation.table)
    assert a.version == b.version
    np.testing.assert_allclose(a.predict(trending), b.predict(trending), rtol=1e-12)


def test_data_that_cannot_train_a_model_says_why() -> None:
    frame = make_panel(200, 8, seed=6)
    none = frame.assign(popularity=pd.array([None] * len(frame), dtype="Int32"))
    assert "Development Mode" in ml.why_not_trainable(none, PARAMS)
    with pytest.raises(ml.NotTrainable, match="Development Mode"):
        ml.evaluate(none, PARAMS)
    few = frame[frame["song_id"].isin(sorted(frame["song_id"].unique())[:5])]
    assert "at least 50 pairs" in ml.why_not_trainable(few, PARAMS)
    short = frame[ml.window_index(frame["window_start"]) < 6]  # 6 windows: pairs at 0..2, none 3 after 0
    assert "7 consecutive windows" in ml.why_not_trainable(short, PARAMS)
    assert "7 consecutive windows" in ml.why_not_trainable(frame.assign(artist_id="one"), PARAMS)
    assert ml.why_not_trainable(frame, PARAMS) is None


def test_the_plot_is_a_png(trending: pd.DataFrame) -> None:
    model = ml.train(trending, PARAMS)
    import base64

    assert base64.b64decode(ml.png_base64(ml.plot(model))).startswith(b"\x89PNG")
    assert "**" + ml.MODEL_LABELS[model.kind] + "**" in ml.evaluation_markdown(model.evaluation)


def test_the_docs_list_every_feature_and_every_setting() -> None:
    from pathlib import Path

    from spotify_assets.defs.model.assets import PopularityFeaturesConfig, PopularityModelConfig

    section = (Path(__file__).resolve().parents[3] / "docs/model.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("| `")]
    features = {r[0].strip("`"): r[1] for r in rows if len(r) == 2}
    assets = ("`popularity_", "`song_", "`rising_")
    settings = {r[0].strip("`"): r[1].strip("`") for r in rows if len(r) == 3 and not r[0].startswith(assets)}
    assert features == {**ml.NUMERIC_FEATURES, **ml.CATEGORICAL_FEATURES}
    fields = {**PopularityFeaturesConfig.model_fields, **PopularityModelConfig.model_fields}
    defaults = {n: str(f.default).lower() if isinstance(f.default, bool) else str(f.default) for n, f in fields.items()}
    assert settings == defaults
    assert defaults["max_model_mb"] == "50.0" and defaults["horizon_windows"] == "3"
