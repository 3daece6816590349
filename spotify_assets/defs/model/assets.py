"""The popularity model: its features table, the model, and its predictions table.

`popularity_features` is SQL over the tables (`sql/model/popularity_features.sql`), stored like
the tables. `popularity_model` trains only when the data has popularity, is judged on
artist-grouped held-out folds against two baselines and a linear model, and is stored (by
`model_io_manager`: files locally, S3 in production) only when it beats the global-mean
baseline and fits the size bound; otherwise the previous model and predictions stay in use.
`song_popularity_predictions` scores every song with the stored model.
"""

import pickle
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import dagster as dg
from pydantic import Field

from spotify_assets.defs.io_managers import column_schema, preview_table, records_table
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
BEATS_BASELINE = "beats_global_mean"
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


@dg.asset(
    deps=[dg.AssetKey("songs"), dg.AssetKey("albums"), dg.AssetKey("playlist_tracks")],
    **_model_table("popularity_features", "sql"),
)
def popularity_features(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.Output:  # of a DataFrame
    sql = warehouse.render(FEATURES_SQL.read_text(encoding="utf-8"))
    started = time.perf_counter()
    frame = POPULARITY_FEATURES.conform(warehouse.query(sql))
    labelled = int(frame["popularity"].notna().sum())
    context.log.info(
        f"popularity_features: {len(frame)} songs, {labelled} with a popularity (the target), "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return dg.Output(
        frame,
        metadata={
            "songs": len(frame),
            "songs_with_popularity": labelled,
            "songs_with_history": int(frame["previous_popularity"].notna().sum()),
            "artists": int(frame["artist_id"].nunique()),
            "newest_snapshot": str(frame["window_start"].max()) if len(frame) else "none",
        },
    )


class PopularityModelConfig(dg.Config):
    """Hyperparameters and bounds of the popularity model (set them in the launchpad)."""

    n_estimators: int = Field(default=50, ge=1, le=1000, description="trees in the forest")
    max_depth: Optional[int] = Field(default=12, ge=1, le=40, description="deepest a tree may grow (null: no limit, and no size guarantee)")
    min_samples_leaf: int = Field(default=5, ge=1, description="fewest training songs in a leaf")
    random_state: int = Field(default=0, description="seed of the forest and of the fold assignment")
    cv_folds: int = Field(default=5, ge=2, le=20, description="held-out folds (grouped by artist)")
    min_training_songs: int = Field(default=50, ge=10, description="fewest songs with a popularity to train on")
    max_model_mb: float = Field(default=50.0, gt=0, le=50, description="largest stored model, in MB (at most 50)")
    force: bool = Field(
        default=False, description="retrain even when the training data and parameters are those of the model in use"
    )

    def params(self) -> ml.TrainingParams:
        return ml.TrainingParams(**self.model_dump(exclude={"force"}))


def _previous_version(context: dg.AssetExecutionContext) -> str:
    event = context.instance.get_latest_materialization_event(_MODEL_KEY)
    if event is None or event.asset_materialization is None:
        return "none"
    entry = event.asset_materialization.metadata.get("model_version")
    return str(entry.value) if entry is not None else "unknown"


def _evaluation_table(evaluation: ml.Evaluation) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "model": ml.MODEL_LABELS[r.model],
                    "mae": round(float(r.mae), ERROR_DIGITS),
                    "rmse": round(float(r.rmse), ERROR_DIGITS),
                    "r2": round(float(r.r2), R2_DIGITS),
                    "mae_fold_sd": round(float(r.mae_fold_sd), ERROR_DIGITS),
                }
            )
            for r in evaluation.table.itertuples()
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("model", "string"),
                dg.TableColumn("mae", "float", description="mean absolute error, held out"),
                dg.TableColumn("rmse", "float", description="root mean squared error, held out"),
                dg.TableColumn("r2", "float", description="R², held out"),
                dg.TableColumn("mae_fold_sd", "float", description="spread of the MAE across folds"),
            ]
        ),
    )


def _error(value: float) -> float:
    return round(float(value), ERROR_DIGITS)


def _model_metadata(model: ml.PopularityModel, size_bytes: int, features: "pd.DataFrame") -> dict[str, object]:
    ev = model.evaluation
    figure = ml.plot(model)
    return {
        "mae": _error(model.metrics["mae"]),
        "rmse": _error(model.metrics["rmse"]),
        "r2": round(float(model.metrics["r2"]), R2_DIGITS),
        "global_mean_mae": _error(ev.score("global_mean", "mae")),
        "artist_mean_mae": _error(ev.score("artist_mean", "mae")),
        "linear_mae": _error(ev.score("linear", "mae")),
        "evaluation": _evaluation_table(ev),
        "plot": dg.MetadataValue.md(
            ml.evaluation_markdown(ev) + f"\n\n![evaluation and feature importances](data:image/png;base64,{ml.png_base64(figure)})"
        ),
        "feature_importances": records_table(
            [{"feature": name, "importance": round(float(weight), 3)} for name, weight in model.importances.items()],
            dg.TableSchema(
                columns=[
                    dg.TableColumn("feature", "string"),
                    dg.TableColumn("importance", "float", description="impurity-based, summing to 1"),
                ]
            ),
        ),
        "trained_songs": model.trained_songs,
        "trained_artists": model.trained_artists,
        "songs_without_popularity": int(features["popularity"].isna().sum()),
        "folds": ev.folds,
        "model_version": model.version,
        "model_size_mb": round(size_bytes / 1e6, 3),
        "data_through": str(model.data_through),
        "params": dg.MetadataValue.json({k: v for k, v in vars(model.params).items()}),
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
                "RandomForest predicting a song's popularity (0-100) from popularity_features. Judged on "
                "held-out folds grouped by artist against the global-mean and artist-mean baselines and a "
                "linear model. Stored only when it beats the global mean and fits the size bound; not "
                "retrained when the data has no popularity (Development Mode), and the asset's events say why."
            ),
        )
    },
    check_specs=[
        dg.AssetCheckSpec(
            BEATS_BASELINE,
            asset=_MODEL_KEY,
            blocking=True,
            description=(
                "ERROR, blocking. The newly trained model's held-out MAE is below the global-mean baseline's. "
                "When it is not, the new model is not stored: the previous model and predictions stay in use."
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
            f"the songs with a popularity, their features and the parameters are those model {in_use} was "
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
                    "songs": len(popularity_features),
                    "songs_with_popularity": int(popularity_features["popularity"].notna().sum()),
                    "model_in_use": in_use,
                },
            )
        )
        return
    started = time.perf_counter()
    evaluation = ml.evaluate(popularity_features, params)
    model = ml.train(popularity_features, params, evaluation)
    size = len(pickle.dumps(model, pickle.HIGHEST_PROTOCOL))
    context.log.info(
        f"popularity_model {model.version}: trained on {model.trained_songs} songs in "
        f"{time.perf_counter() - started:.1f} s; held-out MAE {model.metrics['mae']:.2f} against "
        f"{evaluation.score('global_mean', 'mae'):.2f} (global mean), {evaluation.score('artist_mean', 'mae'):.2f} "
        f"(artist mean), {evaluation.score('linear', 'mae'):.2f} (linear); {size / 1e6:.1f} MB"
    )
    metadata = _model_metadata(model, size, popularity_features)
    mae, baseline, bound = model.metrics["mae"], evaluation.score("global_mean", "mae"), params.max_model_mb
    fits = size <= bound * 1e6
    # (check, passed, what it found, its metadata): the checks' results and the reasons not to store
    verdicts = [
        (
            BEATS_BASELINE,
            evaluation.beats_global_mean,
            f"held-out MAE {mae:.2f} against {baseline:.2f} for the global mean"
            + ("" if evaluation.beats_global_mean else ": it does not beat the global-mean baseline"),
            {"mae": _error(mae), "global_mean_mae": _error(baseline), "evaluation": metadata["evaluation"]},
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
    predicted = popularity_model.predict(popularity_features)
    actual = popularity_features["popularity"]
    frame = pd.DataFrame(
        {
            "song_id": popularity_features["song_id"],
            "window_start": popularity_features["window_start"],
            "name": popularity_features["name"],
            "artist_id": popularity_features["artist_id"],
            "predicted_popularity": predicted.round(2),
            "popularity": actual,
            "error": (pd.Series(predicted, index=actual.index) - actual.astype("Float64")).astype("float64").round(2),
            "trained_on": actual.notna(),
            "model_version": popularity_model.version,
            "predicted_at": datetime.now(timezone.utc),
        }
    )
    frame = MODEL_TABLES["song_popularity_predictions"].conform(frame)
    unseen = frame[~frame["trained_on"]]
    context.log.info(
        f"song_popularity_predictions: {len(frame)} songs scored by model {popularity_model.version}, "
        f"{len(unseen)} of them without a popularity from the API"
    )
    top = frame.sort_values("predicted_popularity", ascending=False)
    return dg.Output(
        frame,
        metadata={
            "model_version": popularity_model.version,
            "songs_without_popularity": len(unseen),
            "top_predicted": preview_table(
                top[["name", "artist_id", "predicted_popularity", "popularity"]],
                10,
                context.assets_def.metadata_by_key[context.asset_key]["dagster/column_schema"],
            ),
        },
    )
