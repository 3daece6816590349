"""The popularity forecast: its features table, the model, and its forecasts table.

`popularity_features` is SQL over the tables (`sql/model/popularity_features.sql`): one row per
song and window, stored like the tables. `popularity_model` pairs each row with the same song's
popularity a horizon later, judges ridge, a bounded random forest and histogram gradient
boosting on folds split by time and artist against persistence, the global mean and the
artist's other songs, and stores the champion (by `model_io_manager`: files locally, S3 in
production) only when it beats persistence and the global mean and fits the size bound;
otherwise the previous model and forecasts stay in use. It trains only when the data has
popularity. `song_popularity_predictions` forecasts every song of the newest window.
"""

import pickle
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import dagster as dg
from pydantic import Field

from spotify_assets.defs.io_managers import preview_table, records_table
from spotify_assets.defs.resources import Warehouse
from spotify_assets.lib.model import popularity as ml
from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import MODEL_TABLES, POPULARITY_FEATURES

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")

FEATURES_SQL = Path(__file__).resolve().parents[3] / "sql" / "model" / "popularity_features.sql"
_MODEL_KEY = dg.AssetKey("popularity_model")
BEATS_BASELINE = "beats_baselines"
# Popularity is 0-100 in whole points: errors mean something to 0.01 point, R² to 0.001.
ERROR_DIGITS, R2_DIGITS = 2, 3
SIZE_BOUND = "within_size_bound"


def _model_table(name: str, kind: str) -> dict[str, object]:
    """The asset arguments of one of the model's tables: stored like the tables (the
    warehouse's kind and column types are added at load, see definitions.bind)."""
    return {
        "io_manager_key": "warehouse_io_manager",
        "group_name": "model",
        "kinds": {kind},
        "tags": {"layer": "model"},
        "description": MODEL_TABLES[name].description,
    }


class PopularityFeaturesConfig(dg.Config):
    """How much history the features table keeps (set it in the launchpad)."""

    history_windows: int = Field(
        default=90, ge=2, le=3 * 366,
        description="the newest 8-hour windows described (90: 30 days); the model trains on their pairs",
    )


@dg.asset(
    deps=[dg.AssetKey("songs"), dg.AssetKey("albums"), dg.AssetKey("playlist_tracks")],
    **_model_table("popularity_features", "sql"),
)
def popularity_features(
    context: dg.AssetExecutionContext, config: PopularityFeaturesConfig, warehouse: Warehouse
) -> dg.Output:  # of a DataFrame
    sql = warehouse.render(FEATURES_SQL.read_text(encoding="utf-8"), history_windows=config.history_windows)
    started = time.perf_counter()
    frame = POPULARITY_FEATURES.conform(warehouse.query(sql))
    labelled = int(frame["popularity"].notna().sum())
    windows = frame["window_start"].nunique()
    context.log.info(
        f"popularity_features: {len(frame)} song windows ({frame['song_id'].nunique()} songs in {windows} "
        f"window(s)), {labelled} with a popularity, in {time.perf_counter() - started:.1f} s"
    )
    return dg.Output(
        frame,
        metadata={
            "songs": int(frame["song_id"].nunique()),
            "windows": int(windows),
            "song_windows_with_popularity": labelled,
            "new_song_windows": int((frame["windows_listed_before"] == 0).sum()),
            "artists": int(frame["artist_id"].nunique()),
            "first_window": str(frame["window_start"].min()) if len(frame) else "none",
            "newest_window": str(frame["window_start"].max()) if len(frame) else "none",
        },
    )


class PopularityModelConfig(dg.Config):
    """Horizon, hyperparameters and bounds of the popularity forecast (set them in the launchpad)."""

    horizon_windows: int = Field(default=3, ge=1, le=90, description="how far ahead to forecast, in 8-hour windows (3: one day)")
    n_estimators: int = Field(default=50, ge=1, le=1000, description="trees in the forest")
    max_depth: Optional[int] = Field(default=12, ge=1, le=40, description="deepest a tree may grow (null: no limit, and no size guarantee)")
    min_samples_leaf: int = Field(default=5, ge=1, description="fewest training pairs in a leaf of the forest")
    boosting_iterations: int = Field(default=200, ge=1, le=2000, description="boosting rounds of the histogram gradient boosting")
    random_state: int = Field(default=0, description="seed of the models, the artist folds and the sampling")
    cv_folds: int = Field(default=5, ge=2, le=20, description="held-out folds (each a block of later windows and a group of artists)")
    min_training_songs: int = Field(default=50, ge=10, description="fewest training pairs (a song's popularity now and a horizon later)")
    max_training_pairs: int = Field(default=200_000, ge=1000, description="most pairs one fit trains on (drawn evenly, seeded)")
    max_model_mb: float = Field(default=50.0, gt=0, le=50, description="largest stored model, in MB (at most 50)")
    force: bool = Field(
        default=False, description="retrain even when the training pairs and parameters are those of the model in use"
    )

    def params(self) -> ml.TrainingParams:
        return ml.TrainingParams(**self.model_dump(exclude={"force"}))


def _previous_version(context: dg.AssetExecutionContext) -> str:
    event = context.instance.get_latest_materialization_event(_MODEL_KEY)
    if event is None or event.asset_materialization is None:
        return "none"
    entry = event.asset_materialization.metadata.get("model_version")
    return str(entry.value) if entry is not None else "unknown"


def _rounded(value: float, digits: int = ERROR_DIGITS) -> float | None:
    return None if value != value else round(float(value), digits)  # NaN: no pair in that segment


_EVALUATION_COLUMNS = [
    dg.TableColumn("model", "string"),
    dg.TableColumn("role", "string", description="baseline, or candidate for champion"),
    dg.TableColumn("mae", "float", description="mean absolute error, held out"),
    dg.TableColumn("rmse", "float", description="root mean squared error, held out"),
    dg.TableColumn("r2", "float", description="R², held out"),
    dg.TableColumn("mae_fold_sd", "float", description="spread of the MAE across folds"),
    dg.TableColumn("mae_history", "float", description="MAE on songs with history"),
    dg.TableColumn("mae_new", "float", description="MAE on songs new in their window (cold start)"),
]


def _evaluation_table(evaluation: ml.Evaluation) -> dg.TableMetadataValue:
    champion = evaluation.champion
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "model": ml.MODEL_LABELS[r.model] + (" (champion)" if r.model == champion else ""),
                    "role": r.role,
                    "mae": _rounded(r.mae),
                    "rmse": _rounded(r.rmse),
                    "r2": _rounded(r.r2, R2_DIGITS),
                    "mae_fold_sd": _rounded(r.mae_fold_sd),
                    "mae_history": _rounded(r.mae_history),
                    "mae_new": _rounded(r.mae_new),
                }
            )
            for r in evaluation.table.itertuples()
        ],
        schema=dg.TableSchema(columns=_EVALUATION_COLUMNS),
    )


def _model_metadata(model: ml.PopularityModel, size_bytes: int) -> dict[str, object]:
    ev = model.evaluation
    figure = ml.plot(model)
    champion = ev.table.set_index("model").loc[model.kind]
    return {
        "champion": model.kind,
        "horizon_windows": model.horizon_windows,
        "mae": _rounded(model.metrics["mae"]),
        "rmse": _rounded(model.metrics["rmse"]),
        "r2": round(float(model.metrics["r2"]), R2_DIGITS),
        **{f"{name}_mae": _rounded(ev.score(name)) for name in ml.MODEL_NAMES},
        "mae_history": _rounded(champion["mae_history"]),
        "mae_new": _rounded(champion["mae_new"]),
        "held_out_pairs": ev.held_out,
        "held_out_history": ev.held_out_history,
        "held_out_new": ev.held_out_new,
        "evaluation": _evaluation_table(ev),
        "plot": dg.MetadataValue.md(
            ml.evaluation_markdown(ev) + f"\n\n![evaluation and feature importances](data:image/png;base64,{ml.png_base64(figure)})"
        ),
        "feature_importances": records_table(
            [{"feature": name, "importance": round(float(weight), 4)} for name, weight in model.importances.items()],
            dg.TableSchema(
                columns=[
                    dg.TableColumn("feature", "string"),
                    dg.TableColumn("importance", "float", description="held-in MAE increase when the feature is shuffled"),
                ]
            ),
        ),
        "trained_pairs": model.trained_pairs,
        "trained_songs": model.trained_songs,
        "trained_artists": model.trained_artists,
        "folds": ev.folds,
        "model_version": model.version,
        "model_size_mb": round(size_bytes / 1e6, 3),
        "data_through": str(model.data_through),
        "params": dg.MetadataValue.json(dict(vars(model.params))),
        "sklearn_version": model.sklearn_version,
    }


@dg.multi_asset(
    outs={
        "popularity_model": dg.AssetOut(
            io_manager_key="model_io_manager",
            is_required=False,
            group_name="model",
            kinds={"scikitlearn"},
            tags={"layer": "model"},
            description=(
                "Forecast of a song's popularity (0-100) a horizon ahead (default one day) from popularity_features. "
                "Ridge, a bounded random forest and histogram gradient boosting are judged on folds split by time "
                "and by artist against persistence, the global mean and the artist's other songs; the champion is "
                "stored only when it beats persistence and the global mean and fits the size bound. Not retrained "
                "when the data has no popularity (Development Mode), and the asset's events say why."
            ),
        )
    },
    check_specs=[
        dg.AssetCheckSpec(
            BEATS_BASELINE,
            asset=_MODEL_KEY,
            blocking=True,
            description=(
                "ERROR, blocking. The champion's held-out MAE is below persistence's (the popularity now) and the "
                "global mean's. When it is not, the new model is not stored: the previous model and forecasts stay in use."
            ),
        ),
        dg.AssetCheckSpec(
            SIZE_BOUND,
            asset=_MODEL_KEY,
            blocking=True,
            description="ERROR, blocking. The pickled model is at most max_model_mb (50 MB); a larger one is not stored.",
        ),
    ],
    # Subsettable only so that the model and its checks may be left unproduced: when there is
    # no popularity to learn from, nothing is trained, stored or checked, and the run succeeds.
    can_subset=True,
    name="popularity_model_training",
)
def popularity_model(context: dg.AssetExecutionContext, config: PopularityModelConfig, popularity_features):  # a DataFrame
    params = config.params()
    in_use = _previous_version(context)
    reason = ml.why_not_trainable(popularity_features, params)
    if reason is None and not config.force and ml.fingerprint(popularity_features, params) == in_use:
        reason = (
            f"the training pairs, their features and the parameters are those model {in_use} was "
            "trained on (run with force: true to retrain anyway)."
        )
    if reason:
        context.log.warning(f"popularity_model not retrained: {reason} Model in use: {in_use}.")
        context.log_event(
            dg.AssetObservation(
                asset_key=_MODEL_KEY,
                description=f"Not retrained: {reason}",
                metadata={
                    "retrained": False,
                    "reason": reason,
                    "song_windows": len(popularity_features),
                    "song_windows_with_popularity": int(popularity_features["popularity"].notna().sum()),
                    "model_in_use": in_use,
                },
            )
        )
        return
    started = time.perf_counter()
    evaluation = ml.evaluate(popularity_features, params, log=context.log.info)
    model = ml.train(popularity_features, params, evaluation)
    size = len(pickle.dumps(model, pickle.HIGHEST_PROTOCOL))
    baselines = ", ".join(f"{evaluation.score(b):.2f} ({ml.MODEL_LABELS[b].removeprefix('baseline: ')})" for b in ml.BASELINES)
    context.log.info(
        f"popularity_model {model.version}: {ml.MODEL_LABELS[model.kind]} forecasting {params.horizon_windows} "
        f"window(s) ahead, trained on {model.trained_pairs} pairs in {time.perf_counter() - started:.1f} s; "
        f"held-out MAE {model.metrics['mae']:.2f} against {baselines}; {size / 1e6:.1f} MB"
    )
    metadata = _model_metadata(model, size)
    mae, bound = model.metrics["mae"], params.max_model_mb
    persistence, global_mean = evaluation.score("persistence"), evaluation.score("global_mean")
    fits = size <= bound * 1e6
    losses = [f"{b} ({evaluation.score(b):.2f})" for b in ("persistence", "global_mean") if not evaluation.beats(b)]
    # (check, passed, what it found, its metadata): the checks' results and the reasons not to store
    verdicts = [
        (
            BEATS_BASELINE,
            evaluation.beats_baselines,
            f"held-out MAE of the champion ({ml.MODEL_LABELS[model.kind]}) {mae:.2f} against {persistence:.2f} for "
            f"persistence and {global_mean:.2f} for the global mean"
            + ("" if evaluation.beats_baselines else f": it does not beat {' or '.join(losses)}"),
            {
                "mae": _rounded(mae),
                "persistence_mae": _rounded(persistence),
                "global_mean_mae": _rounded(global_mean),
                "evaluation": metadata["evaluation"],
            },
        ),
        (
            SIZE_BOUND,
            fits,
            f"{size / 1e6:.2f} MB against a bound of {bound:g} MB" if fits else
            f"it pickles to {size / 1e6:.1f} MB, over max_model_mb ({bound:g} MB): lower n_estimators or max_depth, "
            "or raise min_samples_leaf",
            {"model_size_mb": round(size / 1e6, 3), "max_model_mb": bound},
        ),
    ]
    problems = [summary for _, passed, summary, _ in verdicts if not passed]
    if problems:
        context.log.error(
            f"popularity_model {model.version} is not stored: {'; '.join(problems)}. Model in use: {in_use}."
        )
        context.log_event(
            dg.AssetObservation(
                asset_key=_MODEL_KEY,
                description=f"Candidate {model.version} rejected: {'; '.join(problems)}",
                metadata={"retrained": True, "stored": False, "model_in_use": in_use, **metadata},
            )
        )
    else:
        # The model's version is its data version, a beta parameter in Dagster 1.13 (pinned). The
        # warning is silenced here, where it is raised: Dagster restores the warning filters after
        # loading the definitions, so a module-level filter would not last until run time.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Parameter `data_version`", category=dg.BetaWarning)
            output = dg.Output(model, output_name="popularity_model", metadata=metadata, data_version=dg.DataVersion(model.version))
        yield output

    selected = context.selected_asset_check_keys
    for name, passed, summary, details in verdicts:
        if dg.AssetCheckKey(_MODEL_KEY, name) in selected:
            yield dg.AssetCheckResult(
                asset_key=_MODEL_KEY,
                check_name=name,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=summary,
                metadata={**details, "summary": summary, "candidate_version": model.version, "model_in_use": in_use if problems else model.version},
            )
    if problems and not any(dg.AssetCheckKey(_MODEL_KEY, name) in selected for name, *_ in verdicts):
        raise dg.Failure(description=f"popularity_model {model.version} is not stored: {'; '.join(problems)}")


@dg.asset(**_model_table("song_popularity_predictions", "pandas"))
def song_popularity_predictions(
    context: dg.AssetExecutionContext, popularity_model: ml.PopularityModel, popularity_features
) -> dg.Output:  # of a DataFrame: dagster resolves annotations at load, pandas is imported later
    frame = popularity_model.forecast(popularity_features)
    frame["predicted_at"] = datetime.now(timezone.utc)
    frame = MODEL_TABLES["song_popularity_predictions"].conform(frame)
    forecast = frame[frame["predicted_popularity"].notna()]
    rising = forecast[forecast["expected_change"] > 0]
    window = str(frame["window_start"].max()) if len(frame) else "none"
    context.log.info(
        f"song_popularity_predictions: {len(forecast)} of {len(frame)} songs of window {window} forecast "
        f"{popularity_model.horizon_windows} window(s) ahead by model {popularity_model.version} "
        f"({ml.MODEL_LABELS[popularity_model.kind]}); {len(rising)} expected to rise"
        + (f", {len(frame) - len(forecast)} without a popularity to start from" if len(forecast) < len(frame) else "")
    )
    return dg.Output(
        frame,
        metadata={
            "model_version": popularity_model.version,
            "champion": popularity_model.kind,
            "horizon_windows": popularity_model.horizon_windows,
            "window_start": window,
            "songs_forecast": len(forecast),
            "songs_without_popularity": len(frame) - len(forecast),
            "songs_rising": len(rising),
            "new_songs_rising": int(rising["new_song"].fillna(False).sum()),
            "top_rising": preview_table(
                rising[["name", "artist_id", "popularity", "predicted_popularity", "expected_change", "new_song"]],
                10,
                context.assets_def.metadata_by_key[context.asset_key]["dagster/column_schema"],
            ),
        },
    )
