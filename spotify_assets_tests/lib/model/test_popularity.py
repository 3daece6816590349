"""The popularity model's rules, without Dagster: features in SQL on DuckDB and Snowflake,
no leakage, grouped evaluation against baselines, and when a model cannot be trained."""

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


def _features_duckdb(windows) -> pd.DataFrame:
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for start, frames in windows.items():
            for name, frame in frames.items():
                duckdb_replace(conn, "analytics", name, frame, Window(start, start + timedelta(hours=8)))
        sql = open(FEATURES_SQL, encoding="utf-8").read().replace("{schema}", "analytics")
        return POPULARITY_FEATURES.conform(conn.execute(sql).fetchdf()).sort_values("song_id", ignore_index=True)


def _features_snowflake(windows, server: dict, database: str) -> pd.DataFrame:
    with snowflake.connector.connect(**server) as conn:
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        for start, frames in windows.items():
            for name, frame in frames.items():
                snowflake_replace(conn, database, "analytics", name, frame, Window(start, start + timedelta(hours=8)), stage=insert_rows)
        sql = open(FEATURES_SQL, encoding="utf-8").read().replace("{schema}", f"{database}.ANALYTICS")
        cur = conn.cursor()
        cur.execute(sql)
        frame = cur.fetch_pandas_all()
    frame.columns = [c.lower() for c in frame.columns]
    return POPULARITY_FEATURES.conform(frame).sort_values("song_id", ignore_index=True)


@pytest.fixture(scope="module")
def fixture_features() -> pd.DataFrame:
    frame = _features_duckdb(_fixture_windows())
    frame["label"] = frame["name"]
    return frame.set_index("label")


def test_each_song_is_described_at_the_newest_window_that_gave_its_popularity(fixture_features) -> None:
    f = fixture_features
    assert sorted(f.index) == ["x1", "x2", "x3", "y1"]
    assert f.loc["x1", "window_start"] == pd.Timestamp(W2) and f.loc["x1", "popularity"] == 50
    # y1 lost its popularity in W2: its target is W1's, described as it was in W1
    assert f.loc["y1", "window_start"] == pd.Timestamp(W1) and f.loc["y1", "popularity"] == 70
    assert f.loc["y1", "windows_listed_before"] == 0
    # x3 never had one: a row to predict, at its newest window
    assert f.loc["x3", "window_start"] == pd.Timestamp(W2) and pd.isna(f.loc["x3", "popularity"])


def test_history_comes_only_from_earlier_windows(fixture_features) -> None:
    f = fixture_features
    assert f.loc["x1", "previous_popularity"] == 40 and f.loc["x2", "previous_popularity"] == 20
    assert f.loc["x1", "popularity_windows_before"] == 1 and f.loc["x1", "windows_listed_before"] == 1
    assert pd.isna(f.loc["y1", "previous_popularity"]) and f.loc["y1", "popularity_windows_before"] == 0
    assert pd.isna(f.loc["x3", "previous_popularity"]) and f.loc["x3", "windows_listed_before"] == 1


def test_artist_aggregates_leave_the_song_itself_out(fixture_features) -> None:
    f = fixture_features
    assert f.loc["x1", "artist_other_mean_popularity"] == 30  # x2 only: x3 has none, x1 is left out
    assert f.loc["x2", "artist_other_mean_popularity"] == 50
    assert f.loc["x3", "artist_other_mean_popularity"] == 40  # (50 + 30) / 2
    assert pd.isna(f.loc["y1", "artist_other_mean_popularity"])  # Y has no other song
    assert f.loc["x1", "artist_other_songs"] == 2 and f.loc["y1", "artist_other_songs"] == 0


def test_playlist_release_and_added_features(fixture_features) -> None:
    f = fixture_features
    assert f.loc["x1", "playlist_appearances"] == 2 and f.loc["x1", "playlist_count"] == 2
    assert f.loc["x1", "mean_position"] == 0.5  # P position 0, Q position 1
    assert f.loc["x3", "mean_position"] == 2 and f.loc["x3", "playlist_count"] == 1
    assert f.loc["x1", "days_since_added"] == 19  # first added 2026-11-01, window 2026-11-20
    # '2002' (year precision): from the middle of 2002 to the window, no invented January 1st
    middle = (date(2026, 11, 20) - date(2002, 1, 1)).days - (date(2002, 12, 31) - date(2002, 1, 1)).days / 2
    assert f.loc["x1", "release_age_days"] == middle and f.loc["x1", "release_date_precision"] == "year"


@pytest.mark.slow
def test_snowflake_computes_the_same_features(fixture_features, fakesnow_server) -> None:
    snow = _features_snowflake(_fixture_windows(), fakesnow_server, "MODEL_FEATURES")
    duck = fixture_features.reset_index(drop=True).sort_values("song_id", ignore_index=True)
    pd.testing.assert_frame_equal(snow, duck)


# --- evaluation and training on generated frames -----------------------------------------------


def _frame(rng: np.random.Generator, artists: int, songs_per_artist: int, *, target: str) -> pd.DataFrame:
    """A popularity_features-shaped frame. target 'features': popularity follows the features;
    'artist': a random level per artist, and each artist's songs share an otherwise meaningless
    code in track_number; 'noise': unrelated to anything."""
    n = artists * songs_per_artist
    artist_ids = np.repeat([f"artist{i:05d}" for i in range(artists)], songs_per_artist)
    level = np.repeat(rng.uniform(10, 90, artists), songs_per_artist)
    code = np.repeat(rng.permutation(artists) + 1, songs_per_artist)
    age = rng.uniform(0, 8000, n)
    duration = rng.integers(120_000, 360_000, n)
    explicit = rng.random(n) < 0.3
    if target == "features":
        popularity = 70 - age / 200 + 8 * explicit - np.abs(duration - 210_000) / 10_000 + rng.normal(0, 3, n)
    elif target == "artist":
        popularity = level + rng.normal(0, 2, n)
    else:
        popularity = rng.uniform(0, 100, n)
    popularity = np.clip(np.round(popularity), 0, 100).astype(int)
    frame = pd.DataFrame(
        {
            "song_id": [f"song{i:06d}" for i in range(n)],
            "window_start": pd.Timestamp(W2),
            "name": [f"song {i}" for i in range(n)],
            "artist_id": artist_ids,
            "popularity": popularity,
            "duration_ms": duration,
            "explicit": explicit,
            "track_number": code if target == "artist" else rng.integers(1, 14, n),
            "disc_number": 1,
            "artist_count": 1,
            "album_type": rng.choice(["album", "single", "compilation"], n),
            "album_total_tracks": rng.integers(1, 20, n),
            "release_date_precision": rng.choice(["day", "month", "year"], n),
            "release_age_days": age,
            "playlist_appearances": 1,
            "playlist_count": 1,
            "mean_position": rng.uniform(0, 100, n),
            "days_since_added": rng.integers(0, 500, n),
            "previous_popularity": None,
            "popularity_windows_before": 0,
            "windows_listed_before": 0,
            "artist_other_songs": songs_per_artist - 1,
            "artist_other_mean_popularity": None,
        }
    )
    if target == "artist":  # what the SQL computes: the mean of the artist's other songs
        sums = frame.groupby("artist_id")["popularity"].transform("sum")
        frame["artist_other_mean_popularity"] = (sums - frame["popularity"]) / (songs_per_artist - 1)
    return POPULARITY_FEATURES.conform(frame)


PARAMS = ml.TrainingParams(n_estimators=30, max_depth=10)


def test_the_forest_beats_both_baselines_when_the_features_explain_popularity() -> None:
    evaluation = ml.evaluate(_frame(np.random.default_rng(1), 60, 5, target="features"), PARAMS)
    assert evaluation.beats_global_mean
    assert evaluation.score("random_forest", "mae") < 0.5 * evaluation.score("global_mean", "mae")
    assert evaluation.score("random_forest", "mae") < evaluation.score("artist_mean", "mae")
    assert evaluation.folds == 5 and evaluation.songs == 300 and evaluation.artists == 60
    assert list(evaluation.table["model"]) == list(ml.MODEL_NAMES)


def test_noise_does_not_beat_the_global_mean() -> None:
    evaluation = ml.evaluate(_frame(np.random.default_rng(2), 200, 5, target="noise"), PARAMS)
    assert not evaluation.beats_global_mean


def test_folds_hold_whole_artists_out_so_an_artist_cannot_be_recognised() -> None:
    """Each artist's songs share a code and a popularity level. Were an artist's songs split
    across training and test, the forest would look the level up by the code."""
    frame = _frame(np.random.default_rng(3), 40, 20, target="artist")
    frame["artist_other_mean_popularity"] = np.nan  # only the code could tell the artist
    evaluation = ml.evaluate(frame, PARAMS)
    assert evaluation.score("random_forest", "mae") > 0.8 * evaluation.score("global_mean", "mae")
    # and the same data split by song instead of by artist scores far better: the gap is the leak
    frame["artist_id"] = frame["song_id"]
    leaky = ml.evaluate(frame, PARAMS)
    assert leaky.score("random_forest", "mae") < 0.5 * evaluation.score("random_forest", "mae")


def test_the_artist_mean_baseline_uses_the_artists_other_songs() -> None:
    frame = _frame(np.random.default_rng(4), 80, 5, target="artist")
    evaluation = ml.evaluate(frame, PARAMS)
    # the artist's level is the whole signal: the leave-one-out mean finds it, the global mean cannot
    assert evaluation.score("artist_mean", "mae") < 0.2 * evaluation.score("global_mean", "mae")


def test_a_trained_model_predicts_in_range_and_names_its_importances() -> None:
    frame = _frame(np.random.default_rng(5), 60, 5, target="features")
    model = ml.train(frame, PARAMS)
    predicted = model.predict(frame)
    assert len(predicted) == len(frame) and predicted.min() >= 0 and predicted.max() <= 100
    assert set(model.importances.index) == set(ml.FEATURES)
    assert model.importances.index[0] == "release_age_days"  # the strongest term of the target
    assert abs(model.importances.sum() - 1) < 1e-9
    assert model.version == ml.fingerprint(frame, PARAMS) and model.trained_songs == 300
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict(frame.head(3)), predicted[:3], rtol=1e-9)
    assert model.version != ml.fingerprint(frame, ml.TrainingParams(n_estimators=31, max_depth=10))


def test_the_same_songs_in_another_order_train_the_same_model() -> None:
    frame = _frame(np.random.default_rng(8), 60, 5, target="features")
    shuffled = frame.sample(frac=1, random_state=1)
    a, b = ml.train(frame, PARAMS), ml.train(shuffled, PARAMS)
    pd.testing.assert_frame_equal(a.evaluation.table, b.evaluation.table)
    assert a.version == b.version
    np.testing.assert_allclose(a.predict(frame), b.predict(frame), rtol=1e-12)


def test_data_that_cannot_train_a_model_says_why() -> None:
    frame = _frame(np.random.default_rng(6), 20, 5, target="features")
    none = frame.assign(popularity=pd.array([None] * len(frame), dtype="Int32"))
    assert "Development Mode" in ml.why_not_trainable(none, PARAMS)
    with pytest.raises(ml.NotTrainable, match="Development Mode"):
        ml.evaluate(none, PARAMS)
    assert "at least 50" in ml.why_not_trainable(frame.head(40), PARAMS)
    assert "1 artist" in ml.why_not_trainable(frame.assign(artist_id="one"), PARAMS)
    assert ml.why_not_trainable(frame, PARAMS) is None


def test_the_plot_is_a_png() -> None:
    model = ml.train(_frame(np.random.default_rng(7), 30, 5, target="features"), PARAMS)
    import base64

    assert base64.b64decode(ml.png_base64(ml.plot(model))).startswith(b"\x89PNG")


def test_the_readme_lists_every_feature_and_every_setting() -> None:
    from pathlib import Path

    from spotify_assets.defs.model.assets import PopularityModelConfig

    section = (Path(__file__).resolve().parents[3] / "docs/model.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("| `")]
    features = {r[0].strip("`"): r[1] for r in rows if len(r) == 2}
    settings = {r[0].strip("`"): r[1].strip("`") for r in rows if len(r) == 3 and not r[0].startswith("`popularity") and not r[0].startswith("`song_")}
    assert features == {**ml.NUMERIC_FEATURES, **ml.CATEGORICAL_FEATURES}
    defaults = {n: str(f.default).lower() if isinstance(f.default, bool) else str(f.default) for n, f in PopularityModelConfig.model_fields.items()}
    assert settings == defaults
    assert defaults["max_model_mb"] == "50.0"
