"""The song popularity forecast: pairs, honest evaluation, the champion. Plain Python, no Dagster.

The model predicts a song's popularity `horizon` windows (of 8 hours) after the window it stands
at, from what was known at that window. `popularity_features` (sql/model/popularity_features.sql)
has one row per song and window; `forecast_pairs` pairs each row (features at t) with the same
song's popularity at t + horizon (the answer), and every row with both is a training pair.

Evaluation never lets the future help: folds split by time and by artist at once. Fold k tests
on a block of later windows and one group of artists, and trains only on pairs whose *answer*
was known when the test forecasts were made (feature window at most the test block's first
window minus the horizon) and on the other artists. Every candidate is compared with three
baselines on the same held-out pairs:

- `persistence`: the popularity now (what a forecast must beat to be worth anything);
- `global_mean`: the mean answer of the training part;
- `artist_mean`: the mean popularity of the artist's other songs in the window, else the global mean;

and the candidates are ridge regression, a bounded random forest and scikit-learn's
`HistGradientBoostingRegressor`. Each candidate learns the *change* from the popularity now. The
champion is the candidate with the lowest held-out MAE; it is stored only when it beats both
persistence and the global mean (the asset's gate). Figures are given for every held-out pair,
and separately for songs with history and songs new in the window (the cold-start case).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    pd = lazy("pandas")
    np = lazy("numpy")


WINDOW = timedelta(hours=8)
CURRENT = "popularity"  # the popularity at the row's window: where a forecast starts
TARGET = "target"  # the same song's popularity `horizon` windows later (forecast_pairs)
GROUP = "artist_id"  # the song's first artist: folds never split an artist

# name -> what it is (docs/model.md's table is checked against these)
NUMERIC_FEATURES: dict[str, str] = {
    "popularity": "the song's popularity at the window (persistence's forecast)",
    "previous_popularity": "its popularity in the newest earlier window that had one",
    "popularity_change": "popularity minus previous_popularity",
    "popularity_change_horizon": "popularity minus the song's popularity one horizon earlier",
    "popularity_windows_before": "earlier windows that gave the song a popularity",
    "windows_listed_before": "earlier windows that listed the song (0: new in the window)",
    "duration_ms": "length in milliseconds",
    "explicit": "explicit lyrics (0/1)",
    "track_number": "position on its disc",
    "disc_number": "disc of the album",
    "album_total_tracks": "tracks on the album",
    "release_age_days": "days from the middle of the release period to the window",
    "artist_count": "artists credited on the song",
    "artist_other_songs": "the first artist's other songs in the window",
    "artist_other_mean_popularity": "mean popularity of the first artist's OTHER songs in the window",
    "playlist_appearances": "playlist rows listing the song in the window",
    "playlist_count": "playlists listing the song in the window",
    "mean_position": "mean 0-based position in those playlists",
    "days_since_added": "days since the song was first added to one of them",
}
CATEGORICAL_FEATURES: dict[str, str] = {
    "album_type": "album, single or compilation",
    "release_date_precision": "year, month or day: how exact the release age is",
}
FEATURES = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
DERIVED = ("popularity_change", "popularity_change_horizon")  # computed here, not in the SQL

BASELINES = ("persistence", "global_mean", "artist_mean")
CANDIDATES = ("ridge", "random_forest", "hist_gradient_boosting")
MODEL_NAMES = (*BASELINES, *CANDIDATES)
MODEL_LABELS = {
    "persistence": "baseline: persistence (popularity now)",
    "global_mean": "baseline: global mean",
    "artist_mean": "baseline: artist's other songs",
    "ridge": "ridge regression",
    "random_forest": "random forest",
    "hist_gradient_boosting": "histogram gradient boosting",
}
SEGMENTS = {"history": "songs with history", "new": "songs new in the window"}


@dataclass(frozen=True)
class TrainingParams:
    """Hyperparameters and bounds (the asset's run config, `PopularityModelConfig`)."""

    horizon_windows: int = 3  # one day of 8-hour windows
    # Bounded by construction: a tree of depth 12 has at most 8,191 nodes (~72 bytes each
    # pickled), so 50 of them stay under ~30 MB whatever the data's size.
    n_estimators: int = 50
    max_depth: int | None = 12
    min_samples_leaf: int = 5
    boosting_iterations: int = 200
    random_state: int = 0
    cv_folds: int = 5
    min_training_songs: int = 50
    # Training pairs per fit, drawn evenly (seeded) when there are more: bounds time and memory.
    max_training_pairs: int = 200_000
    max_model_mb: float = 50.0


class NotTrainable(Exception):
    """The data cannot train a model (the message says why); the previous model stays."""


# --- pairs ------------------------------------------------------------------------------------


def _windows(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def with_derived(features: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The features frame with the features computed from other rows of the same song:
    the change since the previous popularity, and since one horizon earlier."""
    out = features.copy()
    out["window_start"] = _windows(out["window_start"])
    now = pd.to_numeric(out[CURRENT].astype("Float64")).astype("float64")
    before = pd.to_numeric(out["previous_popularity"].astype("Float64")).astype("float64")
    out["popularity_change"] = now - before
    earlier = out[["song_id", "window_start", CURRENT]].rename(columns={CURRENT: "_earlier"})
    earlier["window_start"] = earlier["window_start"] + horizon * WINDOW
    merged = out[["song_id", "window_start"]].merge(earlier, on=["song_id", "window_start"], how="left")
    out["popularity_change_horizon"] = now - pd.to_numeric(merged["_earlier"].astype("Float64")).astype("float64").to_numpy()
    return out


def forecast_pairs(features: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Every row that has a popularity now and the same song's popularity `horizon` windows
    later (`target`, at `target_window`), ordered by window and song: the training pairs. A
    warehouse returning the rows in another order gives the same pairs in the same order."""
    if horizon < 1:
        raise ValueError(f"the horizon must be at least 1 window, got {horizon}")
    rows = with_derived(features, horizon)
    answers = rows[["song_id", "window_start", CURRENT]].rename(columns={CURRENT: TARGET, "window_start": "target_window"})
    rows["target_window"] = rows["window_start"] + horizon * WINDOW
    pairs = rows.merge(answers, on=["song_id", "target_window"], how="inner")
    pairs = pairs[pairs[CURRENT].notna() & pairs[TARGET].notna()]
    return pairs.sort_values(["window_start", "song_id"], kind="stable", ignore_index=True)


def window_index(windows: pd.Series) -> np.ndarray:
    """Each window as a count of 8-hour windows from the first one."""
    starts = _windows(windows)
    return ((starts - starts.min()) // WINDOW).astype("int64").to_numpy() if len(starts) else np.array([], dtype="int64")


def why_not_trainable(features: pd.DataFrame, params: TrainingParams) -> str | None:
    """None when the features can train and evaluate a forecast; otherwise the reason, for a person."""
    h = params.horizon_windows
    if features.empty or features[CURRENT].notna().sum() == 0:
        return (
            f"none of the {len(features)} song windows has a popularity: the Spotify API no longer returns it "
            "to Development Mode apps (since February 2026), so there is nothing to forecast from or to. The "
            "model is not retrained; the previous model, if any, stays in use."
        )
    pairs = forecast_pairs(features, h)
    known = features.loc[features[CURRENT].notna(), "window_start"].nunique()
    if len(pairs) < params.min_training_songs:
        return (
            f"only {len(pairs)} song windows have the song's popularity {h} window(s) later (the horizon) among "
            f"{known} window(s) with a popularity; at least {params.min_training_songs} pairs are needed "
            "(min_training_songs). The previous model, if any, stays in use."
        )
    if not time_artist_folds(pairs, h, params.cv_folds, params.random_state):
        return (
            f"the {len(pairs)} pairs span {pairs['window_start'].nunique()} window(s) (of {known} with a popularity) "
            f"and {pairs[GROUP].nunique()} artist(s): a held-out test needs a later window whose forecasts were made "
            f"at least {h} window(s) (the horizon) after an earlier pair's window, and at least 2 artists, so "
            f"{2 * h + 1} consecutive windows with a popularity. The previous model, if any, stays in use."
        )
    return None


def time_artist_folds(pairs: pd.DataFrame, horizon: int, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row positions of each fold. Fold k tests the pairs of block k of the later
    windows and of artist group k; it trains on the other artists' pairs whose answer was known
    when the test forecasts were made: feature window at most the block's first window minus
    the horizon. Blocks and groups are as many as there can be, at most `n_folds`."""
    idx = window_index(pairs["window_start"])
    if len(idx) == 0:
        return []
    first = int(idx.min())
    eligible = np.unique(idx[idx >= first + horizon])
    artists = np.array(sorted(pairs[GROUP].astype(str).unique()))
    if len(eligible) == 0 or len(artists) < 2:
        return []
    # at least 2 artist groups, so that a fold can hold artists out; one time block may serve both
    k = min(max(2, min(n_folds, len(eligible))), len(artists))
    # artists to groups, largest first, each to the group with the fewest pairs so far (ties
    # broken by a seeded order): groups of about equal size whatever the catalogue sizes
    sizes = pairs[GROUP].astype(str).value_counts()
    tiebreak = dict(zip(artists, np.random.default_rng(seed).permutation(len(artists))))
    group_of, load = {}, np.zeros(k)
    for name in sorted(artists, key=lambda a: (-int(sizes[a]), tiebreak[a])):
        group = int(np.argmin(load))
        group_of[name] = group
        load[group] += int(sizes[name])
    groups = pairs[GROUP].astype(str).map(group_of).to_numpy()
    blocks = np.array_split(eligible, min(k, len(eligible)))
    folds = []
    for i in range(k):
        block = blocks[i % len(blocks)]
        test = np.flatnonzero(np.isin(idx, block) & (groups == i))
        train = np.flatnonzero((idx <= block.min() - horizon) & (groups != i))
        if len(test) and len(train):
            folds.append((train, test))
    return folds


# --- models -----------------------------------------------------------------------------------


def feature_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns with plain dtypes (nullable integers and booleans as floats)."""
    missing = [c for c in FEATURES if c not in pairs.columns]
    if missing:
        raise ValueError(f"the features frame lacks {missing}")
    out = {}
    for name in NUMERIC_FEATURES:
        out[name] = pd.to_numeric(pairs[name].astype("Float64"), errors="coerce").astype("float64")
    for name in CATEGORICAL_FEATURES:
        out[name] = pairs[name].astype(object).where(pairs[name].notna(), "unknown")
    return pd.DataFrame(out, index=pairs.index)


def build_pipeline(kind: str, params: TrainingParams) -> Any:
    """An unfitted scikit-learn pipeline: imputation, encoding, then the estimator. It learns
    the change from the popularity now."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric: list[Any] = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    if kind == "ridge":
        numeric.append(StandardScaler())
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(*numeric), list(NUMERIC_FEATURES)),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL_FEATURES)),
        ],
        verbose_feature_names_out=True,
    )
    if kind == "ridge":
        estimator: Any = Ridge(alpha=1.0)
    elif kind == "random_forest":
        estimator = RandomForestRegressor(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf,
            random_state=params.random_state,
            n_jobs=-1,
        )
    elif kind == "hist_gradient_boosting":
        estimator = HistGradientBoostingRegressor(
            # the median change, not the mean: the forecast is judged by its absolute error, and
            # most songs' integer popularity does not move within a day
            loss="absolute_error",
            max_iter=params.boosting_iterations,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=20,
            early_stopping=False,
            random_state=params.random_state,
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return Pipeline([("features", columns), ("model", estimator)])


def _change(pairs: pd.DataFrame) -> np.ndarray:
    return (pairs[TARGET].astype("float64") - pairs[CURRENT].astype("float64")).to_numpy()


def _now(pairs: pd.DataFrame) -> np.ndarray:
    return pairs[CURRENT].astype("float64").to_numpy()


def _forecast(pipeline: Any, rows: pd.DataFrame) -> np.ndarray:
    return np.clip(_now(rows) + pipeline.predict(feature_matrix(rows)), 0, 100)


def _cap(positions: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of the positions, drawn without replacement (seeded), in order."""
    if len(positions) <= limit:
        return positions
    return np.sort(np.random.default_rng(seed).choice(positions, size=limit, replace=False))


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    if len(y) == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "r2": float("nan")}
    return {
        "mae": float(mean_absolute_error(y, predicted)),
        "rmse": float(math.sqrt(mean_squared_error(y, predicted))),
        "r2": float(r2_score(y, predicted)) if len(y) > 1 else float("nan"),
    }


@dataclass
class Evaluation:
    """Held-out scores of every baseline and candidate, over folds split by time and artist."""

    table: pd.DataFrame  # one row per model: model, role, mae, rmse, r2, mae_fold_sd, mae_history, mae_new
    folds: int
    pairs: int  # training pairs in all
    held_out: int  # held-out pairs (each tested once)
    held_out_history: int  # ... of songs with history
    held_out_new: int  # ... of songs new in their window
    windows: int  # windows with pairs
    artists: int
    horizon_windows: int

    def score(self, model: str, metric: str = "mae") -> float:
        return float(self.table.set_index("model").loc[model, metric])

    @property
    def champion(self) -> str:
        """The candidate with the lowest held-out MAE (ties: the first of CANDIDATES)."""
        return min(CANDIDATES, key=lambda name: (self.score(name), CANDIDATES.index(name)))

    def beats(self, baseline: str) -> bool:
        return self.score(self.champion) < self.score(baseline)

    @property
    def beats_baselines(self) -> bool:
        """The champion's held-out MAE is below persistence's and the global mean's."""
        return self.beats("persistence") and self.beats("global_mean")


def evaluate(features: pd.DataFrame, params: TrainingParams, log: Any = None) -> Evaluation:
    """Held-out forecasts of every baseline and candidate on folds split by time and artist."""
    reason = why_not_trainable(features, params)
    if reason:
        raise NotTrainable(reason)
    h = params.horizon_windows
    pairs = forecast_pairs(features, h)
    folds = time_artist_folds(pairs, h, params.cv_folds, params.random_state)
    X = feature_matrix(pairs)
    y, now, change = pairs[TARGET].astype("float64").to_numpy(), _now(pairs), _change(pairs)
    artist_mean = pd.to_numeric(pairs["artist_other_mean_popularity"].astype("Float64")).astype("float64").to_numpy()
    new = pd.to_numeric(pairs["windows_listed_before"].astype("Float64")).fillna(0).to_numpy() == 0
    predicted = {name: np.full(len(y), np.nan) for name in MODEL_NAMES}
    fold_mae: dict[str, list[float]] = {name: [] for name in MODEL_NAMES}
    for number, (train, test) in enumerate(folds, 1):
        fit = _cap(train, params.max_training_pairs, params.random_state + number)
        train_mean = float(y[train].mean())
        predicted["persistence"][test] = now[test]
        predicted["global_mean"][test] = train_mean
        predicted["artist_mean"][test] = np.where(np.isnan(artist_mean[test]), train_mean, artist_mean[test])
        for kind in CANDIDATES:
            pipeline = build_pipeline(kind, params).fit(X.iloc[fit], change[fit])
            predicted[kind][test] = np.clip(now[test] + pipeline.predict(X.iloc[test]), 0, 100)
        for name in MODEL_NAMES:
            fold_mae[name].append(float(np.abs(y[test] - predicted[name][test]).mean()))
        if log is not None:
            log(f"fold {number}/{len(folds)}: trained on {len(fit)} pairs, tested on {len(test)}; MAE " + ", ".join(
                f"{name} {fold_mae[name][-1]:.2f}" for name in MODEL_NAMES))
    tested = ~np.isnan(predicted["persistence"])
    rows = []
    for name in MODEL_NAMES:
        p = predicted[name]
        rows.append(
            {
                "model": name,
                "role": "baseline" if name in BASELINES else "candidate",
                **scores(y[tested], p[tested]),
                "mae_fold_sd": float(np.std(fold_mae[name])),
                "mae_history": scores(y[tested & ~new], p[tested & ~new])["mae"],
                "mae_new": scores(y[tested & new], p[tested & new])["mae"],
            }
        )
    return Evaluation(
        table=pd.DataFrame(rows),
        folds=len(folds),
        pairs=len(pairs),
        held_out=int(tested.sum()),
        held_out_history=int((tested & ~new).sum()),
        held_out_new=int((tested & new).sum()),
        windows=int(pairs["window_start"].nunique()),
        artists=int(pairs[GROUP].nunique()),
        horizon_windows=h,
    )


def importances(pipeline: Any, rows: pd.DataFrame, seed: int, sample: int = 5_000) -> pd.Series:
    """Permutation importances of the fitted pipeline on up to `sample` of its training pairs,
    per input feature: the increase in MAE when the feature's values are shuffled."""
    from sklearn.inspection import permutation_importance

    chosen = rows.iloc[_cap(np.arange(len(rows)), sample, seed)]
    result = permutation_importance(
        pipeline, feature_matrix(chosen), _change(chosen), scoring="neg_mean_absolute_error",
        n_repeats=3, random_state=seed, n_jobs=1,
    )
    return pd.Series(result.importances_mean, index=FEATURES, name="importance").clip(lower=0).sort_values(ascending=False)


@dataclass
class PopularityModel:
    """What the `popularity_model` asset stores: the champion's fitted pipeline and how it was judged."""

    pipeline: Any
    kind: str  # the champion: one of CANDIDATES
    evaluation: Evaluation
    importances: pd.Series
    params: TrainingParams
    trained_pairs: int
    trained_songs: int
    trained_artists: int
    data_through: datetime | None  # the newest window among the training pairs' answers
    trained_at: datetime
    version: str
    sklearn_version: str
    features: list[str] = field(default_factory=lambda: list(FEATURES))

    @property
    def horizon_windows(self) -> int:
        return self.params.horizon_windows

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The popularity (0-100) expected `horizon_windows` after each row's window, for rows
        shaped like `popularity_features`; NaN where the row has no popularity to start from.
        The change over the last horizon is read from the same song's row one horizon earlier:
        pass the earlier windows too (as `forecast` does), or that feature is missing."""
        if features.empty:
            return np.array([], dtype="float64")
        rows = with_derived(features, self.horizon_windows)
        return _forecast(self.pipeline, rows)

    def forecast(self, features: pd.DataFrame) -> pd.DataFrame:
        """Each song of the newest window, its popularity now, the popularity expected a
        horizon later and the expected change, most rising first."""
        rows = with_derived(features, self.horizon_windows)
        if rows.empty:
            current = rows
        else:
            current = rows[rows["window_start"] == rows["window_start"].max()]
        predicted = _forecast(self.pipeline, current) if len(current) else np.array([], dtype="float64")
        now = _now(current)
        frame = pd.DataFrame(
            {
                "song_id": current["song_id"].to_numpy(),
                "window_start": current["window_start"].to_numpy(),
                "forecast_window": (current["window_start"] + self.horizon_windows * WINDOW).to_numpy(),
                "horizon_windows": self.horizon_windows,
                "name": current["name"].to_numpy(),
                "artist_id": current["artist_id"].to_numpy(),
                "popularity": current[CURRENT].to_numpy(),
                "predicted_popularity": np.round(predicted, 2),
                "expected_change": np.round(predicted - now, 2),
                "new_song": pd.to_numeric(current["windows_listed_before"].astype("Float64")).fillna(0).to_numpy() == 0,
                "model": self.kind,
                "model_version": self.version,
            }
        )
        return frame.sort_values(["expected_change", "song_id"], ascending=[False, True], na_position="last", ignore_index=True)

    @property
    def metrics(self) -> dict[str, float]:
        """The champion's held-out MAE, RMSE and R²."""
        row = self.evaluation.table.set_index("model").loc[self.kind]
        return {"mae": float(row["mae"]), "rmse": float(row["rmse"]), "r2": float(row["r2"])}

    def __repr__(self) -> str:
        m, ev = self.metrics, self.evaluation
        return (
            f"PopularityModel(version={self.version!r}, {MODEL_LABELS[self.kind]} forecasting "
            f"{self.horizon_windows} window(s) ahead, trained on {self.trained_pairs} pairs of "
            f"{self.trained_songs} songs; held-out MAE {m['mae']:.2f} vs {ev.score('persistence'):.2f} for "
            f"persistence and {ev.score('global_mean'):.2f} for the global mean)"
        )


def fingerprint(features: pd.DataFrame, params: TrainingParams) -> str:
    """A short hash of the training pairs and the hyperparameters: the model's version."""
    pairs = forecast_pairs(features, params.horizon_windows)
    digest = hashlib.sha256()
    columns = ["song_id", "window_start", TARGET, *FEATURES]
    digest.update(pd.util.hash_pandas_object(pairs[columns], index=False).to_numpy().tobytes())
    digest.update(repr(sorted(asdict(params).items())).encode())
    return digest.hexdigest()[:12]


def train(features: pd.DataFrame, params: TrainingParams, evaluation: Evaluation | None = None, log: Any = None) -> PopularityModel:
    """Evaluate (unless given), then fit the champion on every pair (at most max_training_pairs)."""
    import sklearn

    evaluation = evaluation or evaluate(features, params, log)
    pairs = forecast_pairs(features, params.horizon_windows)
    fit = pairs.iloc[_cap(np.arange(len(pairs)), params.max_training_pairs, params.random_state)]
    kind = evaluation.champion
    pipeline = build_pipeline(kind, params).fit(feature_matrix(fit), _change(fit))
    return PopularityModel(
        pipeline=pipeline,
        kind=kind,
        evaluation=evaluation,
        importances=importances(pipeline, fit, params.random_state),
        params=params,
        trained_pairs=len(fit),
        trained_songs=int(fit["song_id"].nunique()),
        trained_artists=int(fit[GROUP].nunique()),
        data_through=pairs["target_window"].max().to_pydatetime() if len(pairs) else None,
        trained_at=datetime.now(timezone.utc),
        version=fingerprint(features, params),
        sklearn_version=sklearn.__version__,
    )


# --- how the UI and the notebook show it ----------------------------------------------------


def _figure(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"  # NaN: no pair in that segment


def evaluation_markdown(evaluation: Evaluation) -> str:
    champion = evaluation.champion
    lines = [
        f"Forecast {evaluation.horizon_windows} window(s) (8 h each) ahead. Held out over {evaluation.folds} "
        f"folds split by time and by artist: {evaluation.held_out} pairs tested ({evaluation.held_out_history} of "
        f"songs with history, {evaluation.held_out_new} of songs new in their window), out of {evaluation.pairs} "
        f"pairs in {evaluation.windows} windows and {evaluation.artists} artists. Lower MAE/RMSE is better; "
        f"**bold** is the champion.",
        "",
        "| model | MAE | RMSE | R² | MAE sd across folds | MAE, songs with history | MAE, new songs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in evaluation.table.itertuples():
        label = MODEL_LABELS[row.model]
        label = f"**{label}**" if row.model == champion else label
        lines.append(
            f"| {label} | {_figure(row.mae)} | {_figure(row.rmse)} | {row.r2:.3f} | {_figure(row.mae_fold_sd)} | "
            f"{_figure(row.mae_history)} | {_figure(row.mae_new)} |"
        )
    return "\n".join(lines)


def plot(model: PopularityModel, top: int = 12) -> Any:
    """A matplotlib figure: held-out MAE of each baseline and candidate, and the champion's
    permutation importances."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    table = model.evaluation.table
    colors = ["#1db954" if m == model.kind else "#7aa6c2" if m in CANDIDATES else "#b0b0b0" for m in table["model"]]
    bars = left.barh([MODEL_LABELS[m] for m in table["model"]], table["mae"], color=colors)
    left.bar_label(bars, fmt="%.2f", padding=3)
    left.invert_yaxis()
    left.set_xlabel("held-out MAE (popularity points, lower is better)")
    left.set_title(f"Forecast {model.horizon_windows} windows ahead against baselines")
    left.margins(x=0.15)
    shown = model.importances.head(top)[::-1]
    right.barh(list(shown.index), shown.to_numpy(), color="#1db954")
    right.set_xlabel("permutation importance (MAE increase when shuffled)")
    right.set_title(f"What the {MODEL_LABELS[model.kind]} looks at")
    return fig


def png_base64(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
