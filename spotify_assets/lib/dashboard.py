"""A self-contained HTML dashboard of the warehouse's views and the popularity model. Plain
Python, no Dagster.

`render_dashboard` takes the views as pandas frames (keyed by view name, columns as in
`sql/views/`) and the trained `PopularityModel` (or None) and returns one HTML document: inline
CSS, every chart an inline SVG drawn by matplotlib (`Figure` objects, never pyplot), nothing
fetched from anywhere, so it renders with the network cut off. A missing or empty view gives a
short "no data yet" note; a view lacking the columns a chart needs skips that chart with a note
naming them. Text from the data is escaped. The same input gives the same bytes (fixed SVG hash
salt, no date metadata).
"""

from __future__ import annotations

import html
import io
import re
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from spotify_assets.lib.model import MODEL_LABELS

GREEN = "#1db954"
GREY = "#9aa5ad"
BLUE = "#4c82a8"
RED = "#d9534f"
PALETTE = ["#1db954", "#4c82a8", "#e0a030", "#b05cc0", "#d9534f", "#5f6b73", "#38b2ac", "#8c6d46"]
NO_DATA = "no data yet"
MAX_LABEL = 38  # characters of a data label shown on an axis

_RC = {
    "svg.fonttype": "none",  # text stays text: smaller, searchable, escaped by the SVG writer
    "svg.hashsalt": "spotify-assets",  # deterministic element ids
    "text.parse_math": False,  # an artist called "Ke$ha $ign" is not mathtext
    "font.size": 8,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9,
    "path.simplify": True,
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1rem 1.5rem;color:#1f2328;background:#fafafa}
h1{margin:.2rem 0}h2{border-bottom:2px solid #1db954;padding-bottom:.2rem;margin-top:2rem}
h3{margin:.2rem 0 .1rem}.generated{color:#5f6b73;font-size:.9rem}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:1rem}
.panel{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:.6rem .8rem}
.explain{color:#5f6b73;font-size:.88rem;margin:.1rem 0 .4rem}
.note{color:#8a6d3b;background:#fcf8e3;border-radius:4px;padding:.3rem .5rem;font-size:.88rem}
figure.chart{margin:0}figure.chart svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{border-bottom:1px solid #e1e4e8;padding:.2rem .4rem;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
"""


# -- small helpers -----------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _label(value: Any) -> str:
    text = "(unknown)" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _usable(frames: dict[str, pd.DataFrame], name: str, columns: Iterable[str]) -> pd.DataFrame | str:
    """The frame, or the note to show instead: missing or empty, or lacking columns."""
    frame = frames.get(name)
    if frame is None or len(frame) == 0:
        return f"{NO_DATA} ({name} is empty or not built)."
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        return f"not shown: {name} has no column(s) {', '.join(missing)}."
    return frame


def _times(values: pd.Series) -> pd.Series:
    """Timestamps, dates or strings as naive UTC datetimes (matplotlib's date axis)."""
    return pd.to_datetime(values, utc=True, errors="coerce").dt.tz_localize(None)


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _svg(draw: Callable[[Any], None], size: tuple[float, float]) -> str:
    """Draw on a fresh Figure and return it as an inline `<svg>` element (no XML prolog, no
    metadata), inside a `<figure>`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        # a date axis spanning a few hours (one or two windows) makes matplotlib's locator
        # warn that it fell back to a default interval; the chart is right all the same
        warnings.filterwarnings("ignore", message="AutoDateLocator was unable", category=UserWarning)
        fig = Figure(figsize=size, layout="constrained")
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue().decode("utf-8")
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return f'<figure class="chart">{text.strip()}</figure>'


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _barh(labels: list[str], values: list[float], *, xlabel: str, color: str = GREEN, fmt: str = "%g") -> str:
    def draw(fig: Any) -> None:
        ax = fig.subplots()
        bars = ax.barh(range(len(labels)), values, color=color)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.bar_label(bars, fmt=fmt, padding=2, fontsize=7)
        ax.set_xlabel(xlabel)
        ax.margins(x=0.12)

    return _svg(draw, (5.6, 0.8 + 0.24 * max(len(labels), 3)))


def _lines(series: dict[str, tuple[pd.Series, pd.Series]], *, ylabel: str, ylim: tuple[float, float] | None = None) -> str:
    """One line per key: (x datetimes, y numbers)."""

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        for i, (key, (x, y)) in enumerate(series.items()):
            ax.plot(x.to_numpy(), y.to_numpy(), marker="o", markersize=3, linewidth=1.5,
                    color=PALETTE[i % len(PALETTE)], label=_label(key))
        _date_axis(ax)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        if len(series) > 1:
            ax.legend(fontsize=7, frameon=False)
        ax.grid(axis="y", alpha=0.3)

    return _svg(draw, (5.6, 2.8))


def _per_key(frame: pd.DataFrame, key: str, x: str, y: str, limit: int = 8) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Lines per value of `key` (the `limit` keys with the most rows), x sorted."""
    data = pd.DataFrame({"key": frame[key].astype(object).where(frame[key].notna(), "(unknown)").astype(str),
                         "x": _times(frame[x]), "y": _numbers(frame[y])}).dropna(subset=["x"])
    counts = data.groupby("key")["y"].count()
    keys = sorted(counts[counts > 0].sort_values(ascending=False, kind="stable").index[:limit])
    out = {}
    for k in keys:
        part = data[data["key"] == k].sort_values("x", kind="stable")
        out[k] = (part["x"], part["y"])
    return out


def _table(rows: list[list[Any]], headers: list[str], numeric: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="num"' if i in numeric else ""
        shown = "—" if value is None or (not isinstance(value, str) and pd.isna(value)) else value
        return f"<{tag}{cls}>{_e(shown)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _panel(panel_id: str, heading: str, explanation: str, body: Callable[[], str]) -> str:
    try:
        content = body()
    except Exception as error:  # one bad view must not take the whole dashboard down
        content = _note(f"could not draw this chart: {type(error).__name__}: {error}")
    return (
        f'<div class="panel" id="{_e(panel_id)}"><h3>{_e(heading)}</h3>'
        f'<p class="explain">{_e(explanation)}</p>{content}</div>'
    )


def _section(section_id: str, heading: str, explanation: str, panels: list[str]) -> str:
    return (
        f'<section id="{_e(section_id)}"><h2>{_e(heading)}</h2><p class="explain">{_e(explanation)}</p>'
        f'<div class="panels">{"".join(panels)}</div></section>'
    )


# -- 1. playlist analytics ---------------------------------------------------------------------


def _top_artists(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "top_artists", ["artist_name", "song_count"])
    if isinstance(frame, str):
        return _note(frame)
    if "artist_rank" in frame.columns:
        frame = frame.sort_values("artist_rank", kind="stable")
    else:
        frame = frame.sort_values("song_count", ascending=False, kind="stable")
    frame = frame.head(10)
    return _barh([_label(n) for n in frame["artist_name"]], _numbers(frame["song_count"]).fillna(0).tolist(),
                 xlabel="songs in the current playlists")


def _popularity_trends(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "popularity_trends", ["window_start", "release_group", "avg_popularity"])
    if isinstance(frame, str):
        return _note(frame)
    series = _per_key(frame, "release_group", "window_start", "avg_popularity")
    if not series:
        return _note("no popularity values: the API returned none (Development Mode app).")
    return _lines(series, ylabel="average popularity", ylim=(0, 100))


def _popularity_history(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "popularity_history", ["window_start", "popularity"])
    if isinstance(frame, str):
        return _note(frame)
    data = pd.DataFrame({"x": _times(frame["window_start"]), "y": _numbers(frame["popularity"])}).dropna()
    if data.empty:
        return _note("no popularity values: the API returned none (Development Mode app).")
    grouped = data.groupby("x")["y"]
    mean, low, high = grouped.mean(), grouped.quantile(0.25), grouped.quantile(0.75)

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        x = mean.index.to_numpy()
        ax.fill_between(x, low.to_numpy(), high.to_numpy(), color=GREEN, alpha=0.2, label="middle half of songs")
        ax.plot(x, mean.to_numpy(), marker="o", markersize=3, color=GREEN, label="average")
        _date_axis(ax)
        ax.set_ylim(0, 100)
        ax.set_ylabel("popularity")
        ax.legend(fontsize=7, frameon=False)
        ax.grid(axis="y", alpha=0.3)

    return _svg(draw, (5.6, 2.8))


def _current_top_songs(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "current_top_songs", ["song_rank", "name"])
    if isinstance(frame, str):
        return _note(frame)
    frame = frame.sort_values("song_rank", kind="stable").head(10)
    columns = [c for c in ("song_rank", "name", "artist_name", "popularity", "playlist_appearances", "rank_basis")
               if c in frame.columns]
    headers = {"song_rank": "rank", "name": "song", "artist_name": "artist", "popularity": "popularity",
               "playlist_appearances": "playlist rows", "rank_basis": "ranked by"}
    numeric = {i for i, c in enumerate(columns) if c in ("song_rank", "popularity", "playlist_appearances")}
    rows = []
    for record in frame[columns].itertuples(index=False):
        rows.append([v if pd.isna(v) or not isinstance(v, float) or not v.is_integer() else int(v) for v in record])
    return _table(rows, [headers[c] for c in columns], numeric)


# -- 2. model quality --------------------------------------------------------------------------


def _model_panels(model: object | None) -> list[str]:
    if model is None:
        return [_panel("model-none", "Popularity model", "The model trained on the songs' popularity.",
                       lambda: _note("no model trained yet (the popularity_model asset has not stored one: it "
                                     "needs songs with a popularity, which Development Mode apps no longer get)."))]
    evaluation = getattr(model, "evaluation", None)
    table = getattr(evaluation, "table", None)
    version = getattr(model, "version", "?")
    facts = [f"version {version}"]
    for attr, words in (("trained_songs", "songs"), ("trained_artists", "artists")):
        if getattr(model, attr, None) is not None:
            facts.append(f"{getattr(model, attr)} {words}")
    for attr, words in (("data_through", "data through"), ("trained_at", "trained at")):
        value = getattr(model, attr, None)
        if isinstance(value, datetime):
            facts.append(f"{words} {value.isoformat(timespec='minutes')}")

    def mae() -> str:
        if table is None or len(table) == 0 or not {"model", "mae"} <= set(table.columns):
            return _note(f"{NO_DATA} (the model has no evaluation table).")
        labels = [MODEL_LABELS.get(str(m), str(m)) for m in table["model"]]
        colors = [GREEN if m == "random_forest" else BLUE if m == "linear" else GREY for m in table["model"]]

        def draw(fig: Any) -> None:
            ax = fig.subplots()
            bars = ax.barh(range(len(labels)), _numbers(table["mae"]).to_numpy(), color=colors)
            ax.set_yticks(range(len(labels)), [_label(x) for x in labels])
            ax.invert_yaxis()
            ax.bar_label(bars, fmt="%.2f", padding=2, fontsize=7)
            ax.set_xlabel("held-out MAE (popularity points, lower is better)")
            ax.margins(x=0.15)

        chart = _svg(draw, (5.6, 2.0))
        metric_columns = [c for c in ("mae", "rmse", "r2") if c in table.columns]
        rows = [[label, *(f"{float(v):.3f}" if pd.notna(v) else None for v in values)]
                for label, values in zip(labels, table[metric_columns].itertuples(index=False))]
        return chart + _table(rows, ["model", *metric_columns], set(range(1, len(metric_columns) + 1)))

    def importances() -> str:
        series = getattr(model, "importances", None)
        if series is None or len(series) == 0:
            return _note(f"{NO_DATA} (the model has no importances).")
        top = pd.Series(series).sort_values(ascending=False, kind="stable").head(10)
        return _barh([_label(i) for i in top.index], [float(v) for v in top.to_numpy()],
                     xlabel="impurity-based importance", fmt="%.3f")

    facts_line = " · ".join(facts)
    return [
        _panel("model-mae", "Model against baselines",
               f"Held-out error on folds grouped by artist ({facts_line}).", mae),
        _panel("model-importances", "Feature importances",
               "The random forest's ten most used features (impurity-based, summed per input column).", importances),
    ]


# -- 3. listening KPIs -------------------------------------------------------------------------


def _minutes_per_month(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_activity", ["listener", "period", "period_start", "minutes_played"])
    if isinstance(frame, str):
        return _note(frame)
    monthly = frame[frame["period"] == "month"]
    if monthly.empty:
        return _note(f"{NO_DATA} (no monthly rows in listening_activity).")
    return _lines(_per_key(monthly, "listener", "period_start", "minutes_played"), ylabel="minutes played")


def _by_hour(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_by_hour", ["hour_of_day", "streams"])
    if isinstance(frame, str):
        return _note(frame)
    hours = _numbers(frame["hour_of_day"])
    totals = _numbers(frame["streams"]).groupby(hours).sum().reindex(range(24), fill_value=0.0)
    evening = float(totals.loc[18:21].sum())
    share = evening / float(totals.sum()) if totals.sum() else 0.0

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        colors = [GREEN if 18 <= h <= 21 else GREY for h in range(24)]
        ax.bar(range(24), totals.to_numpy(), color=colors)
        ax.axvspan(17.5, 21.5, color=GREEN, alpha=0.08)
        ax.set_xticks(range(0, 24, 3))
        ax.set_xlim(-0.7, 23.7)
        ax.set_xlabel("hour of day (UTC, playback end)")
        ax.set_ylabel("streams")
        ax.set_title(f"18–21 h: {share:.0%} of streams", loc="left")

    return _svg(draw, (5.6, 2.6))


def _by_weekday(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_by_weekday", ["iso_weekday", "streams"])
    if isinstance(frame, str):
        return _note(frame)
    days = _numbers(frame["iso_weekday"])
    totals = _numbers(frame["streams"]).groupby(days).sum().reindex(range(1, 8), fill_value=0.0)
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        ax.bar(names, totals.to_numpy(), color=[BLUE] * 5 + [GREEN] * 2)
        ax.set_ylabel("streams")

    return _svg(draw, (5.6, 2.4))


def _by_country(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_by_country", ["conn_country", "streams"])
    if isinstance(frame, str):
        return _note(frame)
    data = pd.DataFrame({"country": frame["conn_country"].astype(object).where(frame["conn_country"].notna(), "unknown"),
                         "streams": _numbers(frame["streams"]).fillna(0)})
    totals = data.groupby("country")["streams"].sum().sort_values(ascending=False, kind="stable").head(12)
    return _barh([_label(c) for c in totals.index], totals.tolist(), xlabel="streams", color=BLUE)


def _skip_rate(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_skip_rate", ["listener", "month_start"])
    if isinstance(frame, str):
        return _note(frame)
    series: dict[str, tuple[pd.Series, pd.Series]] = {}
    for column, words in (("skip_rate", "skipped"), ("short_play_rate", "under 30 s")):
        if column in frame.columns:
            for listener, line in _per_key(frame, "listener", "month_start", column, limit=4).items():
                series[f"{listener}: {words}"] = (line[0], line[1] * 100)
    if not series:
        return _note("not shown: listening_skip_rate has neither skip_rate nor short_play_rate values.")
    return _lines(series, ylabel="% of plays", ylim=(0, 100))


def _top_by_minutes(frames: dict[str, pd.DataFrame], view: str, label: Callable[[pd.DataFrame], pd.Series]) -> str:
    needed = ["artist_name", "minutes_played"] if view == "listening_top_artists" else ["track_name", "minutes_played"]
    frame = _usable(frames, view, needed)
    if isinstance(frame, str):
        return _note(frame)
    data = pd.DataFrame({"label": label(frame), "minutes": _numbers(frame["minutes_played"]).fillna(0)})
    totals = data.groupby("label")["minutes"].sum().sort_values(ascending=False, kind="stable").head(10)
    return _barh([_label(x) for x in totals.index], totals.round(1).tolist(), xlabel="minutes played (all listeners)")


def _artist_label(frame: pd.DataFrame) -> pd.Series:
    return frame["artist_name"].astype(object).where(frame["artist_name"].notna(), "(unknown)").astype(str)


def _track_label(frame: pd.DataFrame) -> pd.Series:
    track = frame["track_name"].astype(object).where(frame["track_name"].notna(), "(unknown)").astype(str)
    if "artist_name" not in frame.columns:
        return track
    artist = frame["artist_name"].astype(object).where(frame["artist_name"].notna(), "?").astype(str)
    return track + " — " + artist


def _active_days(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_active_days", ["listener", "month_start", "active_days"])
    if isinstance(frame, str):
        return _note(frame)
    return _lines(_per_key(frame, "listener", "month_start", "active_days"), ylabel="active days", ylim=(0, 31))


def _churn(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "listening_artist_churn", ["month_start", "new_artists", "lost_artists"])
    if isinstance(frame, str):
        return _note(frame)
    data = pd.DataFrame({"x": _times(frame["month_start"]), "new": _numbers(frame["new_artists"]).fillna(0),
                         "lost": _numbers(frame["lost_artists"]).fillna(0)}).dropna(subset=["x"])
    totals = data.groupby("x")[["new", "lost"]].sum().sort_index()

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        x = totals.index.to_numpy()
        ax.bar(x, totals["new"].to_numpy(), width=np.timedelta64(20, "D"), color=GREEN, label="gained (new this month)")
        ax.bar(x, -totals["lost"].to_numpy(), width=np.timedelta64(20, "D"), color=RED, label="lost (heard last month only)")
        ax.axhline(0, color="#5f6b73", linewidth=0.8)
        _date_axis(ax)
        ax.set_ylabel("artists")
        ax.legend(fontsize=7, frameon=False)

    return _svg(draw, (5.6, 2.6))


# -- the document ------------------------------------------------------------------------------


def render_dashboard(
    frames: dict[str, pd.DataFrame],
    model: object | None,
    *,
    generated_at: datetime,
    title: str = "spotify-assets",
) -> str:
    """One self-contained HTML document (inline CSS and SVG charts, nothing external)."""
    playlist = _section(
        "playlist-analytics",
        "Playlist analytics",
        "What the configured playlists hold now, and how their songs' popularity moved across snapshot windows.",
        [
            _panel("top-artists", "Top artists", "The artists with the most songs in the current playlists.",
                   lambda: _top_artists(frames)),
            _panel("popularity-trends", "Popularity: recent against older releases",
                   "Average popularity per snapshot window, by release group.", lambda: _popularity_trends(frames)),
            _panel("popularity-history", "Popularity across windows",
                   "Average popularity of the listed songs per window, with the middle half shaded.",
                   lambda: _popularity_history(frames)),
            _panel("current-top-songs", "Current top songs",
                   "The ten best-ranked current songs; 'ranked by' says whether popularity or playlist rows decided.",
                   lambda: _current_top_songs(frames)),
        ],
    )
    model_section = _section(
        "model-quality",
        "Model quality",
        "The song popularity model judged on held-out artists, next to its baselines.",
        _model_panels(model),
    )
    listening = _section(
        "listening-kpis",
        "Listening KPIs",
        "From the listening history exports (UTC calendar; every play counts unless said otherwise).",
        [
            _panel("minutes-per-month", "Minutes per month", "Minutes played per listener and month.",
                   lambda: _minutes_per_month(frames)),
            _panel("plays-by-hour", "Plays by hour of day",
                   "Streams by the hour playback ended, all listeners; the evening hours 18–21 are highlighted.",
                   lambda: _by_hour(frames)),
            _panel("plays-by-weekday", "Plays by weekday", "Streams per day of the week, all listeners.",
                   lambda: _by_weekday(frames)),
            _panel("plays-by-country", "Plays by country", "Streams per connection country, all listeners.",
                   lambda: _by_country(frames)),
            _panel("skip-rate", "Skip rate per month",
                   "Share of plays skipped (where the export says) and of plays under 30 seconds, per listener.",
                   lambda: _skip_rate(frames)),
            _panel("top-listened-artists", "Top artists by minutes", "Music only, summed over listeners.",
                   lambda: _top_by_minutes(frames, "listening_top_artists", _artist_label)),
            _panel("top-listened-tracks", "Top tracks by minutes", "Music only, summed over listeners.",
                   lambda: _top_by_minutes(frames, "listening_top_tracks", _track_label)),
            _panel("active-days", "Active days per month", "Days with any play, per listener and month.",
                   lambda: _active_days(frames)),
            _panel("artist-churn", "Artists gained and lost",
                   "Per month, artists not heard the month before (up) and heard then but not now (down).",
                   lambda: _churn(frames)),
        ],
    )
    stamp = generated_at.isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><p class="generated">Generated at {_e(stamp)}</p></header>'
        f"{playlist}{model_section}{listening}</body></html>\n"
    )


def chart_count(document: str, section_id: str | None = None) -> int:
    """How many inline SVG charts the document (or its `<section id=...>`) holds."""
    if section_id is not None:
        document = section_html(document, section_id)
    return document.count("<svg")


def section_html(document: str, section_id: str) -> str:
    """The HTML of one `<section id=...>` ('' when absent)."""
    match = re.search(rf'<section id="{re.escape(section_id)}">.*?</section>', document, flags=re.DOTALL)
    return match.group(0) if match else ""
