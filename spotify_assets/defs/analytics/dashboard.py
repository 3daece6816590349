"""The dashboard: one self-contained HTML report of the playlist analytics, the model's quality
and the listening KPIs, for people who would rather look than query (no BI tool needed).

Written to `<data dir>/dashboard/index.html` locally and `s3://<bucket>/<prefix>/dashboard/index.html`
in production; the materialization says where. The model shown is the one stored when the
report is written. Every chart is inline SVG: the file opens with
the network cut off. A view that does not exist yet (no listening exports dropped, say) shows
as "no data yet" instead of failing the report.

The page also says what it covers: the `playlists` and `streams` tables are read for the
snapshot windows, the listeners and the marks of the bundled synthetic sample, so the banner
reflects the data shown whatever the settings say now (a warehouse filled by the demo stays
labelled synthetic after real credentials are configured).
"""

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import dagster as dg

from spotify_assets.defs.analytics.views import view_names
from spotify_assets.lib.dashboard.render import (
    SYNTHETIC_LABEL,
    chart_count,
    data_coverage,
    render_dashboard,
)
from spotify_assets.lib.lazy import lazy

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")

DASHBOARD_KEY = "dashboard/index.html"
_PLAYLIST_VIEWS = ("top_artists", "popularity_trends", "current_top_songs", "genres")
_TOP_SONGS_WITH_HISTORY = 200


def _views_shown() -> list[str]:
    return [*_PLAYLIST_VIEWS, "popularity_history", *(n for n in view_names() if n.startswith("listening_") and n != "listening_plays")]


def _read_frames(warehouse, log) -> "dict[str, pd.DataFrame]":  # type: ignore[no-untyped-def]
    frames: dict[str, pd.DataFrame] = {}
    queries = {name: f"SELECT * FROM {warehouse.qualified(name)}" for name in _views_shown()}
    # popularity history of the current top songs only: the whole view grows with every window
    queries["popularity_history"] = (
        f"SELECT h.window_start, h.song_id, h.popularity FROM {warehouse.qualified('popularity_history')} AS h "
        f"JOIN {warehouse.qualified('current_top_songs')} AS t ON t.song_id = h.song_id "
        f"WHERE t.song_rank <= {_TOP_SONGS_WITH_HISTORY}"
    )
    # the forecast's rising songs: read, not a dependency (a run that stores no new model skips the
    # forecast's assets, and the report must not be skipped with them)
    queries["rising_songs"] = f"SELECT * FROM {warehouse.qualified('rising_songs')} WHERE rising_rank <= 10"
    # what the page covers and which of it is synthetic (lib/dashboard.data_coverage)
    queries["playlists"] = f"SELECT DISTINCT window_start, playlist_id, name FROM {warehouse.qualified('playlists')}"
    queries["listening_sources"] = (
        "SELECT listener, source_sha256, COUNT(*) AS plays, MIN(played_at) AS first_play, "
        f"MAX(played_at) AS last_play, COUNT(CASE WHEN show_name LIKE '{SYNTHETIC_LABEL}%' THEN 1 END) "
        f"AS synthetic_show_plays FROM {warehouse.qualified('streams')} GROUP BY listener, source_sha256"
    )
    with warehouse.reader() as read:
        for name, sql in queries.items():
            try:
                frames[name] = read(sql)
            except Exception as err:  # a view not created yet: its panels say "no data yet"
                log(f"dashboard: {name} not shown: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    return frames


def _synthetic_words(coverage) -> str:  # type: ignore[no-untyped-def]
    parts = {"playlists": coverage.playlists_synthetic, "listening": coverage.listening_synthetic}
    shown = [f"{share} of the {part}" for part, share in parts.items() if share != "none"]
    return "; ".join(shown) if shown else "no"


def _stored_model(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
    """The model the model IO manager stored, read through it (files locally, S3 in production).
    The input context carries this run's log manager: `dg.build_input_context`, a test helper,
    logged the IO manager's "Loading file from ..." to a console of its own at DEBUG level,
    which the demo printed among its results."""
    load = dg.InputContext(asset_key=dg.AssetKey("popularity_model"), log_manager=context.log,
                           instance=context.instance)
    try:
        return context.resources.model_io_manager.load_input(load)
    except FileNotFoundError:
        return None


@dg.asset(
    # The stored model is read, not taken as a dependency: a run that does not retrain it (no
    # popularity, unchanged data) would otherwise skip the report along with the model.
    deps=[dg.AssetKey(n) for n in _views_shown()],
    required_resource_keys={"warehouse", "raw_store", "model_io_manager"},
    group_name="analytics",
    kinds={"html"},
    tags={"layer": "report"},
)
def dashboard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One self-contained HTML report: top artists, recent against older releases, popularity
    history, current top songs, genres, the popularity model's held-out quality, and the listening
    KPIs, as charts. Opens with the network cut off; the materialization links to it."""
    warehouse = context.resources.warehouse
    frames = _read_frames(warehouse, context.log.info)
    model = _stored_model(context)
    page = render_dashboard(
        frames, model, generated_at=datetime.now(timezone.utc),
        recent_release_days=getattr(warehouse, "recent_release_days", None),
    ).encode("utf-8")
    coverage = data_coverage(frames)
    backend = context.resources.raw_store.backend()
    backend.put(DASHBOARD_KEY, page, content_type="text/html; charset=utf-8")
    location = backend.uri(DASHBOARD_KEY)
    charts = chart_count(page.decode("utf-8"))
    context.log.info(
        f"dashboard: {charts} charts, {len(page) / 1e3:.0f} kB, {len(coverage.windows)} window(s), "
        f"{len(coverage.listeners)} listener(s), synthetic: {_synthetic_words(coverage)}; written to {location}"
    )
    link = dg.MetadataValue.url(f"file://{location}") if location.startswith("/") else dg.MetadataValue.text(location)
    return dg.MaterializeResult(
        metadata={
            "open": link,
            "location": dg.MetadataValue.path(location) if location.startswith("/") else location,
            "charts": charts,
            "size_kb": round(len(page) / 1e3, 1),
            "views_shown": len([n for n in _views_shown() if n in frames and len(frames[n])]),
            "windows": len(coverage.windows),
            "first_window": coverage.windows[0].isoformat() if coverage.windows else "none",
            "last_window": coverage.windows[-1].isoformat() if coverage.windows else "none",
            "listeners": ", ".join(coverage.listeners) or "none",
            "synthetic": _synthetic_words(coverage),
            "model_version": getattr(model, "version", "none"),
        }
    )
