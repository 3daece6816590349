"""The song popularity model: features, honest evaluation, training. Plain Python, no Dagster.

The features (`sql/model/popularity_features.sql`) are what both API modes return, plus
history. The model is a bounded RandomForest in a scikit-learn pipeline. It is judged on
held-out folds that are grouped by artist (no artist sits in both the training and the test
part of a fold, so the model cannot score by recognising an artist), next to two baselines and
a linear model:

- `global_mean`: every song gets the mean popularity of the training part;
- `artist_mean`: the mean popularity of the artist's other songs (leave-one-out, as the
  feature), else the training mean;
- `linear`: ridge regression on the same features;
- `random_forest`: the model that is stored.

The artist's mean popularity is the only feature built from other songs' targets, and it
leaves the song itself out, so a song's own popularity never reaches its features.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    pd = lazy("pandas")
    np = lazy("numpy")


TARGET = "popularity"
GROUP = "artist_id"  # the song's first artist: folds never split an artist

# name -> what it is (docs/model.md's table is checked against these)
NUMERIC_FEATURES: dict[str, str] = {
    "duration_ms": "length in milliseconds",
    "explicit": "explicit lyrics (0/1)",
    "track_number": "position on its disc",
    "disc_number": "disc of the album",
    "album_total_tracks": "tracks on the album",
    "release_age_days": "days from the middle of the release period to the snapshot window",
    "artist_count": "artists credited on the song",
    "artist_other_songs": "the first artist's other songs in our data",
    "playlist_appearances": "playlist rows listing the song in the snapshot window",
    "playlist_count": "playlists listing the song in the snapshot window",
    "mean_position": "mean 0-based position in those playlists",
    "days_since_added": "days since the song was first added to one of them",
    "previous_popularity": "the song's popularity in the newest earlier window that had one",
    "popularity_windows_before": "earlier windows that gave the song a popularity",
    "windows_listed_before": "earlier windows that listed the song",
    "artist_other_mean_popularity": "mean popularity of the first artist's OTHER songs (leave-one-out)",
}
CATEGORICAL_FEATURES: dict[str, str] = {
    "album_type": "album, single or compilation",
    "release_date_precision": "year, month or day: how exact the release age is",
}
FEATURES = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]

MODEL_NAMES = ("global_mean", "artist_mean", "linear", "random_forest")
MODEL_LABELS = {
    "global_mean": "baseline: global mean",
    "artist_mean": "baseline: artist mean",
    "linear": "linear (ridge)",
    "random_forest": "random forest",
}


@dataclass(frozen=True)
class TrainingParams:
    """Hyperparameters and bounds (the asset's run config, `PopularityModelConfig`)."""

    # Bounded by construction: a tree of depth 12 has at most 8,191 nodes (~72 bytes each
    # pickled), so 50 of them stay under ~30 MB whatever the data's size. On 100,000 songs, 50
    # trees score as 100 do (benchmarks/model.py) in half the time.
    n_estimators: int = 50
    max_depth: int | None = 12
    min_samples_leaf: int = 5
    random_state: int = 0
    cv_folds: int = 5
    min_training_songs: int = 50
    max_model_mb: float = 50.0


class NotTrainable(Exception):
    """The data cannot train a model (the message says why); the previous model stays."""


def training_rows(features: pd.DataFrame) -> pd.DataFrame:
    """The songs that have a target, in song_id order: folds and bootstrap samples are drawn by
    position, so a warehouse returning the same rows in another order trains the same model."""
    return features[features[TARGET].notna()].sort_values("song_id", kind="stable")


def why_not_trainable(features: pd.DataFrame, params: TrainingParams) -> str | None:
    """None when the features can train a model; otherwise the reason, for a person."""
    labelled = training_rows(features)
    if labelled.empty:
        return (
            f"none of the {len(features)} songs has a popularity: the Spotify API no longer returns it to "
            "Development Mode apps (since February 2026), so there is no target to learn from. The model "
            "is not retrained; the previous model, if any, stays in use."
        )
    if len(labelled) < params.min_training_songs:
        return (
            f"only {len(labelled)} of {len(features)} songs have a popularity; at least "
            f"{params.min_training_songs} are needed (min_training_songs) to train and evaluate a model. "
            "The previous model, if any, stays in use."
        )
    artists = labelled[GROUP].nunique()
    if artists < 2:
        return (
            f"the {len(labelled)} songs with a popularity belong to {artists} artist(s); evaluation holds "
            "artists out, so it needs at least 2. The previous model, if any, stays in use."
        )
    return None


def feature_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns with plain dtypes (nullable integers and booleans as floats)."""
    missing = [c for c in FEATURES if c not in features.columns]
    if missing:
        raise ValueError(f"the features frame lacks {missing}")
    out = {}
    for name in NUMERIC_FEATURES:
        out[name] = pd.to_numeric(features[name].astype("Float64"), errors="coerce").astype("float64")
    for name in CATEGORICAL_FEATURES:
        out[name] = features[name].astype(object).where(features[name].notna(), "unknown")
    return pd.DataFrame(out, index=features.index)


def build_pipeline(kind: str, params: TrainingParams) -> Any:
    """An unfitted scikit-learn pipeline: imputation, encoding, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric: list[Any] = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    if kind == "linear":
        numeric.append(StandardScaler())
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(*numeric), list(NUMERIC_FEATURES)),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ],
        verbose_feature_names_out=True,
    )
    if kind == "linear":
        estimator: Any = Ridge(alpha=1.0)
    elif kind == "random_forest":
        estimator = RandomForestRegressor(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf,
            random_state=params.random_state,
            n_jobs=-1,
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return Pipeline([("features", columns), ("model", estimator)])


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "mae": float(mean_absolute_error(y, predicted)),
        "rmse": float(math.sqrt(mean_squared_error(y, predicted))),
        "r2": float(r2_score(y, predicted)),
    }


@dataclass
class Evaluation:
    """Held-out scores of the model and its comparisons, over artist-grouped folds."""

    table: pd.DataFrame  # one row per model: model, mae, rmse, r2, mae_fold_sd
    folds: int
    songs: int
    artists: int

    def score(self, model: str, metric: str) -> float:
        return float(self.table.set_index("model").loc[model, metric])

    @property
    def beats_global_mean(self) -> bool:
        return self.score("random_forest", "mae") < self.score("global_mean", "mae")


def evaluate(features: pd.DataFrame, params: TrainingParams) -> Evaluation:
    """Out-of-fold predictions of every model; folds group songs by their first artist."""
    from sklearn.model_selection import GroupKFold

    reason = why_not_trainable(features, params)
    if reason:
        raise NotTrainable(reason)
    labelled = training_rows(features)
    X = feature_matrix(labelled)
    y = labelled[TARGET].astype("float64").to_numpy()
    groups = labelled[GROUP].astype(str).to_numpy()
    artist_mean = pd.to_numeric(labelled["artist_other_mean_popularity"].astype("Float64")).astype("float64").to_numpy()
    n_folds = min(params.cv_folds, len(set(groups)))
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=params.random_state)
    predicted = {name: np.full(len(y), np.nan) for name in MODEL_NAMES}
    fold_mae: dict[str, list[float]] = {name: [] for name in MODEL_NAMES}
    for train, test in splitter.split(X, y, groups):
        train_mean = float(y[train].mean())
        predicted["global_mean"][test] = train_mean
        predicted["artist_mean"][test] = np.where(np.isnan(artist_mean[test]), train_mean, artist_mean[test])
        for kind in ("linear", "random_forest"):
            pipeline = build_pipeline(kind, params).fit(X.iloc[train], y[train])
            predicted[kind][test] = np.clip(pipeline.predict(X.iloc[test]), 0, 100)
        for name in MODEL_NAMES:
            fold_mae[name].append(float(np.abs(y[test] - predicted[name][test]).mean()))
    rows = []
    for name in MODEL_NAMES:
        rows.append({"model": name, **scores(y, predicted[name]), "mae_fold_sd": float(np.std(fold_mae[name]))})
    return Evaluation(pd.DataFrame(rows), n_folds, len(y), len(set(groups)))


def importances(pipeline: Any) -> pd.Series:
    """The fitted forest's impurity-based importances, summed back onto the input features
    (a categorical's one-hot columns and a feature's missing-value indicator count for it)."""
    names = pipeline.named_steps["features"].get_feature_names_out()
    weights = pipeline.named_steps["model"].feature_importances_
    totals = dict.fromkeys(FEATURES, 0.0)
    for name, weight in zip(names, weights):
        kind, _, column = str(name).partition("__")
        column = column.removeprefix("missingindicator_")
        if kind == "cat":
            column = next(c for c in CATEGORICAL_FEATURES if column.startswith(c + "_"))
        totals[column] += float(weight)
    return pd.Series(totals, name="importance").sort_values(ascending=False)


@dataclass
class PopularityModel:
    """What the `popularity_model` asset stores: the fitted pipeline and how it was judged."""

    pipeline: Any
    evaluation: Evaluation
    importances: pd.Series
    params: TrainingParams
    trained_songs: int
    trained_artists: int
    data_through: datetime | None  # the newest snapshot window among the training songs
    trained_at: datetime
    version: str
    sklearn_version: str
    features: list[str] = field(default_factory=lambda: list(FEATURES))

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Predicted popularity (0-100) for each row of a `popularity_features`-shaped frame."""
        if features.empty:
            return np.array([], dtype="float64")
        return np.clip(self.pipeline.predict(feature_matrix(features)), 0, 100)

    @property
    def metrics(self) -> dict[str, float]:
        """The stored model's held-out MAE, RMSE and R²."""
        row = self.evaluation.table.set_index("model").loc["random_forest"]
        return {"mae": float(row["mae"]), "rmse": float(row["rmse"]), "r2": float(row["r2"])}

    def __repr__(self) -> str:
        m = self.metrics
        base = self.evaluation.score("global_mean", "mae")
        return (
            f"PopularityModel(version={self.version!r}, trained on {self.trained_songs} songs of "
            f"{self.trained_artists} artists, held-out MAE {m['mae']:.2f} vs {base:.2f} for the global mean, "
            f"R² {m['r2']:.3f})"
        )


def fingerprint(features: pd.DataFrame, params: TrainingParams) -> str:
    """A short hash of the training data and the hyperparameters: the model's version."""
    labelled = training_rows(features)
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(labelled[["song_id", TARGET, *FEATURES]], index=False).to_numpy().tobytes())
    digest.update(repr(sorted(asdict(params).items())).encode())
    return digest.hexdigest()[:12]


def train(features: pd.DataFrame, params: TrainingParams, evaluation: Evaluation | None = None) -> PopularityModel:
    """Evaluate (unless given), then fit the forest on every song that has a target."""
    import sklearn

    evaluation = evaluation or evaluate(features, params)
    labelled = training_rows(features)
    pipeline = build_pipeline("random_forest", params).fit(
        feature_matrix(labelled), labelled[TARGET].astype("float64").to_numpy()
    )
    windows = pd.to_datetime(labelled["window_start"], utc=True) if "window_start" in labelled else pd.Series([], dtype=object)
    return PopularityModel(
        pipeline=pipeline,
        evaluation=evaluation,
        importances=importances(pipeline),
        params=params,
        trained_songs=len(labelled),
        trained_artists=int(labelled[GROUP].nunique()),
        data_through=windows.max().to_pydatetime() if len(windows) else None,
        trained_at=datetime.now(timezone.utc),
        version=fingerprint(features, params),
        sklearn_version=sklearn.__version__,
    )


# --- how the UI and the notebook show it ----------------------------------------------------


def evaluation_markdown(evaluation: Evaluation) -> str:
    lines = [
        f"Held-out over {evaluation.folds} folds grouped by artist ({evaluation.songs} songs, {evaluation.artists} artists); lower MAE/RMSE is better.",
        "",
        "| model | MAE | RMSE | R² | MAE sd across folds |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in evaluation.table.itertuples():
        lines.append(f"| {MODEL_LABELS[row.model]} | {row.mae:.2f} | {row.rmse:.2f} | {row.r2:.3f} | {row.mae_fold_sd:.2f} |")
    return "\n".join(lines)


def plot(model: PopularityModel, top: int = 12) -> Any:
    """A matplotlib figure: held-out MAE of each model, and the forest's feature importances."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    table = model.evaluation.table
    colors = ["#b0b0b0", "#b0b0b0", "#7aa6c2", "#1db954"]
    bars = left.barh([MODEL_LABELS[m] for m in table["model"]], table["mae"], color=colors)
    left.bar_label(bars, fmt="%.2f", padding=3)
    left.invert_yaxis()
    left.set_xlabel("held-out MAE (popularity points, lower is better)")
    left.set_title("Model against baselines")
    left.margins(x=0.15)
    shown = model.importances.head(top)[::-1]
    right.barh(list(shown.index), shown.to_numpy(), color="#1db954")
    right.set_xlabel("impurity-based importance")
    right.set_title("Feature importances (random forest)")
    return fig


def png_base64(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
