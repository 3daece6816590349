"""A self-contained HTML dashboard of the warehouse's views and the popularity model. Plain
Python, no Dagster.

`render_dashboard` takes the views as pandas frames (keyed by view name, columns as in
`sql/views/`) and the trained `PopularityModel` (or None) and returns one HTML document: inline
CSS, every chart an inline SVG drawn by matplotlib (`Figure` objects, never pyplot), nothing
fetched from anywhere, so it renders with the network cut off. A missing or empty view gives a
short "no data yet" note; a view lacking the columns a chart needs skips that chart with a note
naming them. Text from the data is escaped. The same input gives the same bytes (fixed SVG hash
salt, no date metadata).

The page says what it shows (`data_coverage`): from the frames "playlists" (window_start,
playlist_id, name) and "listening_sources" (listener, source_sha256, plays, first_play,
last_play, synthetic_show_plays) it names the snapshot windows and the listeners covered, and a
banner says which parts are the bundled synthetic sample. That is judged from the data itself,
not from settings: a playlist is synthetic when it is one of the sample's or its name carries
the sample's "Synthetic · " label; a listener when every play came from a byte-identical sample
export file, or (an older sample's files) when one of the sample's listeners played its invented
"Synthetic · " podcasts. Code values from the views
(release groups, rank bases, country codes, feature names) are shown in words.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.model.popularity import CANDIDATES, MODEL_LABELS
from spotify_assets.lib.samples.catalogue import sample_playlist_ids
from spotify_assets.lib.samples.listening import SAMPLE_LISTENERS, sample_export_files

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    pd = lazy("pandas")
    np = lazy("numpy")

GREEN = "#1db954"
GREY = "#9aa5ad"
BLUE = "#4c82a8"
RED = "#d9534f"
PALETTE = ["#1db954", "#4c82a8", "#e0a030", "#b05cc0", "#d9534f", "#5f6b73", "#38b2ac", "#8c6d46"]
NO_DATA = "no data yet"
MAX_LABEL = 38  # characters of a data label shown on an axis

SYNTHETIC_LABEL = "Synthetic · "  # how the sample names its playlists and podcasts

# Code values the views hold, in words for legends, axes and tables.
RANK_BASIS_WORDS = {"popularity": "popularity", "playlist_appearances": "playlist rows"}
METRIC_WORDS = {"mae": "MAE (points)", "rmse": "RMSE (points)", "r2": "R²",
                "mae_history": "MAE, songs with history", "mae_new": "MAE, new songs"}
FEATURE_WORDS = {
    "duration_ms": "song length",
    "explicit": "explicit lyrics",
    "track_number": "track number",
    "disc_number": "disc number",
    "album_total_tracks": "tracks on the album",
    "release_age_days": "age of the release",
    "artist_count": "artists credited",
    "artist_other_songs": "artist's other songs",
    "playlist_appearances": "playlist rows listing it",
    "playlist_count": "playlists listing it",
    "mean_position": "position in playlists",
    "days_since_added": "days since added",
    "popularity": "popularity now",
    "previous_popularity": "earlier popularity",
    "popularity_change": "change since the earlier popularity",
    "popularity_change_horizon": "change over the last horizon",
    "popularity_windows_before": "earlier windows with popularity",
    "windows_listed_before": "earlier windows listing it",
    "artist_other_mean_popularity": "artist's other songs' popularity",
    "album_type": "album type",
    "release_date_precision": "release date precision",
}
COUNTRY_NAMES = {
    "AR": "Argentina", "AT": "Austria", "AU": "Australia", "BE": "Belgium", "BR": "Brazil", "CA": "Canada",
    "CH": "Switzerland", "CL": "Chile", "CN": "China", "CO": "Colombia", "CZ": "Czechia", "DE": "Germany",
    "DK": "Denmark", "EG": "Egypt", "ES": "Spain", "FI": "Finland", "FR": "France", "GB": "United Kingdom",
    "GR": "Greece", "HK": "Hong Kong", "HU": "Hungary", "ID": "Indonesia", "IE": "Ireland", "IL": "Israel",
    "IN": "India", "IS": "Iceland", "IT": "Italy", "JP": "Japan", "KR": "South Korea", "MA": "Morocco",
    "MX": "Mexico", "MY": "Malaysia", "NG": "Nigeria", "NL": "Netherlands", "NO": "Norway", "NZ": "New Zealand",
    "PE": "Peru", "PH": "Philippines", "PL": "Poland", "PT": "Portugal", "RO": "Romania", "SE": "Sweden",
    "SG": "Singapore", "TH": "Thailand", "TR": "Türkiye", "TW": "Taiwan", "UA": "Ukraine", "US": "United States",
    "VN": "Vietnam", "ZA": "South Africa",
}


def release_group_words(recent_release_days: int | None) -> dict[str, str]:
    """popularity_trends.release_group in words (the cut is SPOTIFY_ASSETS_RECENT_RELEASE_DAYS)."""
    recent = f"released in the last {recent_release_days} days" if recent_release_days else "recent releases"
    return {
        "recent": recent,
        "older": "released earlier",
        "straddles_cut": "near the cut (year/month date only)",
        "unknown": "release date unknown",
    }


def country_words(code: Any) -> str:
    if code is None or (isinstance(code, float) and pd.isna(code)) or str(code).strip() == "":
        return "country not given"
    code = str(code).strip().upper()
    return f"{COUNTRY_NAMES[code]} ({code})" if code in COUNTRY_NAMES else code


_RC = {
    "svg.fonttype": "none",  # text stays text: smaller, searchable, escaped by the SVG writer
    "svg.hashsalt": "spotify-assets",  # deterministic element ids
    "text.parse_math": False,  # an artist called "Ke$ha $ign" is not mathtext
    "font.size": 9,  # charts are drawn at about their size on the page: 9 pt reads, 7 pt did not
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
.synthetic{background:#fff4d6;border:2px solid #e0a030;border-radius:6px;padding:.6rem .8rem;margin:.6rem 0;
font-size:1rem}
.coverage{color:#1f2328;font-size:.92rem;margin:.3rem 0}
.badge{display:inline-block;vertical-align:middle;margin-left:.6rem;padding:.05rem .45rem;border-radius:4px;
background:#fff4d6;border:1px solid #e0a030;color:#7a5200;font-size:.75rem;font-weight:600}
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


def _date_axis(ax: Any, windows: Iterable[Any] = ()) -> None:
    """A date axis; a few snapshot windows get one tick each, at the window's start."""
    import matplotlib.dates as mdates

    starts = sorted(set(pd.to_datetime(list(windows))))
    if 0 < len(starts) <= 6:
        ax.set_xticks(starts, [f"{t:%b %d}\n{t:%H:%M}" for t in starts])
        ax.set_xlabel("snapshot window start (UTC)")
        return
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _barh(labels: list[str], values: list[float], *, xlabel: str, color: str = GREEN, fmt: str = "%g") -> str:
    def draw(fig: Any) -> None:
        ax = fig.subplots()
        bars = ax.barh(range(len(labels)), values, color=color)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.bar_label(bars, fmt=fmt, padding=2, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.margins(x=0.12)

    return _svg(draw, (5.6, 0.8 + 0.24 * max(len(labels), 3)))


def _lines(series: dict[str, tuple[pd.Series, pd.Series]], *, ylabel: str, ylim: tuple[float, float] | None = None,
           windows: bool = False) -> str:
    """One line per key: (x datetimes, y numbers); `windows`: x are snapshot windows."""

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        for i, (key, (x, y)) in enumerate(series.items()):
            ax.plot(x.to_numpy(), y.to_numpy(), marker="o", markersize=3, linewidth=1.5,
                    color=PALETTE[i % len(PALETTE)], label=_label(key))
        _date_axis(ax, [v for x, _ in series.values() for v in x] if windows else ())
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        if len(series) > 1:
            ax.legend(fontsize=8, frameon=False)
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


def _section(section_id: str, heading: str, explanation: str, panels: list[str], badge: str = "") -> str:
    return (
        f'<section id="{_e(section_id)}"><h2>{_e(heading)}{badge}</h2><p class="explain">{_e(explanation)}</p>'
        f'<div class="panels">{"".join(panels)}</div></section>'
    )


# -- what the page covers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """What the data shown covers, and which of it is the bundled synthetic sample."""

    windows: tuple[pd.Timestamp, ...] = ()  # snapshot window starts (UTC), sorted
    playlists: int = 0
    synthetic_playlists: int = 0
    listeners: tuple[str, ...] = ()
    synthetic_listeners: tuple[str, ...] = ()
    first_play: pd.Timestamp | None = None
    last_play: pd.Timestamp | None = None

    @property
    def playlists_synthetic(self) -> str:
        """'all', 'some' or 'none' of the playlists."""
        return _share(self.synthetic_playlists, self.playlists)

    @property
    def listening_synthetic(self) -> str:
        return _share(len(self.synthetic_listeners), len(self.listeners))


def _share(part: int, whole: int) -> str:
    return "none" if part == 0 else "all" if part == whole else "some"


@lru_cache(maxsize=1)
def sample_export_sha256s() -> frozenset[str]:
    """SHA-256 of every bundled synthetic export file (byte-identical whenever generated)."""
    return frozenset(hashlib.sha256(data).hexdigest() for data in sample_export_files().values())


def _utc(value: Any) -> pd.Timestamp | None:
    stamp = pd.to_datetime(value, utc=True, errors="coerce")
    return None if pd.isna(stamp) else stamp


def data_coverage(frames: dict[str, pd.DataFrame]) -> Coverage:
    """The windows and listeners the frames cover and which are synthetic (see the module doc)."""
    windows: tuple[pd.Timestamp, ...] = ()
    playlists = synthetic_playlists = 0
    frame = frames.get("playlists")
    if frame is not None and len(frame) and {"window_start", "playlist_id"} <= set(frame.columns):
        windows = tuple(sorted(pd.to_datetime(frame["window_start"], utc=True, errors="coerce").dropna().unique()))
        names = frame["name"] if "name" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        sample_ids = set(sample_playlist_ids())
        marked = frame["playlist_id"].isin(sample_ids) | names.astype(str).str.startswith(SYNTHETIC_LABEL)
        ids = frame["playlist_id"].astype(str)
        playlists = ids.nunique()
        # a playlist counts as synthetic when every one of its rows carries the sample's marks
        synthetic_playlists = int(marked.groupby(ids).all().sum())
    listeners: tuple[str, ...] = ()
    synthetic_listeners: tuple[str, ...] = ()
    first = last = None
    frame = frames.get("listening_sources")
    if frame is not None and len(frame) and {"listener", "plays"} <= set(frame.columns):
        data = frame.assign(listener=frame["listener"].astype(str), plays=_numbers(frame["plays"]).fillna(0))
        listeners = tuple(sorted(data["listener"].unique()))
        from_sample = data["source_sha256"].isin(sample_export_sha256s()) if "source_sha256" in data.columns else False
        # an older sample's files have other bytes: one of its listeners playing its invented podcasts
        shows = ((_numbers(data["synthetic_show_plays"]).fillna(0) > 0) & data["listener"].isin(SAMPLE_LISTENERS)
                 if "synthetic_show_plays" in data.columns else False)
        data = data.assign(sample_file=from_sample, sample_show=shows)
        per = data.groupby("listener").agg(all_files=("sample_file", "all"), any_show=("sample_show", "any"))
        synthetic_listeners = tuple(sorted(per.index[per["all_files"] | per["any_show"]]))
        if "first_play" in data.columns:
            first = _utc(pd.to_datetime(data["first_play"], utc=True, errors="coerce").min())
        if "last_play" in data.columns:
            last = _utc(pd.to_datetime(data["last_play"], utc=True, errors="coerce").max())
    return Coverage(windows, playlists, synthetic_playlists, listeners, synthetic_listeners, first, last)


def _when(value: datetime) -> str:
    """A moment for a reader: '2026-03-01 12:00 UTC' (naive values are taken as UTC)."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return f"{stamp:%Y-%m-%d %H:%M} UTC"


def _stamp(value: pd.Timestamp) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _names(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _coverage_lines(cov: Coverage) -> str:
    if cov.windows:
        span = (f"the window starting {_stamp(cov.windows[0])} UTC" if len(cov.windows) == 1 else
                f"{len(cov.windows)} windows, the first starting {_stamp(cov.windows[0])} and the last "
                f"{_stamp(cov.windows[-1])} UTC")
        playlists = (f"Playlists: {cov.playlists} playlist{'s' if cov.playlists != 1 else ''} in {span} "
                     "(8-hour snapshot windows; “current” means each playlist's newest readable snapshot).")
    else:
        playlists = "Playlists: no snapshot window loaded yet."
    if cov.listeners:
        n = len(cov.listeners)
        dates = ""
        if cov.first_play is not None and cov.last_play is not None:
            dates = f", plays from {cov.first_play:%Y-%m-%d} to {cov.last_play:%Y-%m-%d} (UTC)"
        listening = f"Listeners: {n} ({_names(cov.listeners)}){dates}."
    else:
        listening = "Listeners: none (no listening export ingested yet)."
    return f'<p class="coverage" id="coverage">{_e(playlists)}<br>{_e(listening)}</p>'


def _synthetic_banner(cov: Coverage) -> str:
    parts = []
    if cov.playlists_synthetic == "all":
        parts.append("every playlist is the bundled synthetic sample (invented songs, artists and popularity)")
    elif cov.playlists_synthetic == "some":
        parts.append(f"{cov.synthetic_playlists} of {cov.playlists} playlists are the bundled synthetic sample")
    if cov.listening_synthetic == "all":
        parts.append("every listener's history is the bundled synthetic export "
                     f"({_names(cov.synthetic_listeners)}: invented people and plays)")
    elif cov.listening_synthetic == "some":
        parts.append(f"the listening history of {_names(cov.synthetic_listeners)} is the bundled synthetic export")
    if not parts:
        return ""
    present = [share for share, n in ((cov.playlists_synthetic, cov.playlists), (cov.listening_synthetic,
                                                                             len(cov.listeners))) if n]
    lead = "Synthetic data" if all(share == "all" for share in present) else "Partly synthetic data"
    return (f'<div class="synthetic" id="synthetic-banner" role="note"><strong>{lead}:</strong> '
            f'{_e("; ".join(parts))}. Not real Spotify data: it shows how the pipeline works, not what '
            f"anyone listens to.</div>")


def _badge(share: str, words: str = "synthetic sample") -> str:
    if share == "none":
        return ""
    return f'<span class="badge">{"partly " if share == "some" else ""}{_e(words)}</span>'


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


def _genres(frames: dict[str, pd.DataFrame]) -> str:
    """Songs per genre (the ten with most), and minutes played per genre when a listening
    history gave any."""
    frame = _usable(frames, "genres", ["genre", "song_count"])
    if isinstance(frame, str):
        return _note(frame + " Genres come from the batch endpoints, which only Extended Quota apps may call.")
    songs = frame.assign(songs=_numbers(frame["song_count"]).fillna(0))
    songs = songs[songs["songs"] > 0].sort_values(["songs", "genre"], ascending=[False, True], kind="stable").head(10)
    parts = []
    if len(songs):
        parts.append(_barh([_label(g) for g in songs["genre"]], songs["songs"].tolist(), xlabel="songs in the current playlists"))
    if "minutes_played" in frame.columns:
        played = frame.assign(minutes=_numbers(frame["minutes_played"]))
        played = played[played["minutes"] > 0].sort_values(["minutes", "genre"], ascending=[False, True], kind="stable").head(10)
        if len(played):
            parts.append(_barh([_label(g) for g in played["genre"]], played["minutes"].round(1).tolist(),
                               xlabel="minutes played (all listeners)", color=PALETTE[1]))
    return "".join(parts) or _note(f"{NO_DATA} (no current song has a genre).")


def _popularity_trends(frames: dict[str, pd.DataFrame], recent_release_days: int | None) -> str:
    frame = _usable(frames, "popularity_trends", ["window_start", "release_group", "avg_popularity"])
    if isinstance(frame, str):
        return _note(frame)
    words = release_group_words(recent_release_days)
    series = _per_key(frame, "release_group", "window_start", "avg_popularity")
    if not series:
        return _note("no popularity values: the API returned none (Development Mode app).")
    order = list(words)  # recent, older, around the cut, unknown; then anything new as it is
    keys = sorted(series, key=lambda k: (order.index(k) if k in order else len(order), k))
    return _lines({words.get(k, k): series[k] for k in keys}, ylabel="average popularity", ylim=(0, 100),
                  windows=True)


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
        _date_axis(ax, mean.index)
        ax.set_ylim(0, 100)
        ax.set_ylabel("popularity")
        ax.legend(fontsize=8, frameon=False)
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
        row = [v if pd.isna(v) or not isinstance(v, float) or not v.is_integer() else int(v) for v in record]
        if "rank_basis" in columns:
            i = columns.index("rank_basis")
            row[i] = RANK_BASIS_WORDS.get(str(row[i]), row[i])
        rows.append(row)
    return _table(rows, [headers[c] for c in columns], numeric)


# -- 2. model quality --------------------------------------------------------------------------


def _rising_songs(frames: dict[str, pd.DataFrame]) -> str:
    frame = _usable(frames, "rising_songs", ["rising_rank", "name", "expected_change"])
    if isinstance(frame, str):
        return _note(frame + " (the forecast has not been stored yet, or no song is expected to rise).")
    frame = frame.sort_values("rising_rank", kind="stable").head(10)
    new = frame["new_song"].fillna(False).astype(bool) if "new_song" in frame.columns else pd.Series(False, index=frame.index)
    artists = frame["artist_name"] if "artist_name" in frame.columns else pd.Series("", index=frame.index)
    labels = [_label(f"{name} · {artist}" if isinstance(artist, str) and artist else str(name)) + (" (new)" if is_new else "")
              for name, artist, is_new in zip(frame["name"], artists, new)]
    change = _numbers(frame["expected_change"]).to_numpy()
    colors = [GREEN if is_new else BLUE for is_new in new]

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        bars = ax.barh(range(len(labels)), change, color=colors)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.bar_label(bars, fmt="+%.1f", padding=2, fontsize=8)
        ax.set_xlabel("expected change in popularity (points)")
        ax.margins(x=0.15)

    horizon = frame["horizon_windows"].iloc[0] if "horizon_windows" in frame.columns and len(frame) else None
    ahead = f"{int(horizon)} window(s) of 8 h" if horizon is not None and pd.notna(horizon) else "a horizon"
    return _svg(draw, (5.6, 0.5 + 0.28 * len(labels))) + _note(
        f"Forecast {ahead} ahead of the newest window; green: songs new in that window (no history)."
    )


def _model_panels(model: object | None, frames: dict[str, pd.DataFrame] | None = None) -> list[str]:
    frames = frames or {}
    if model is None:
        return [_panel("model-none", "Popularity forecast", "The model trained on the songs' popularity.",
                       lambda: _note("no model trained yet (the popularity_model asset has not stored one: it "
                                     "needs songs with a popularity, which Development Mode apps no longer get, "
                                     "over enough windows to hold later ones out)."))]
    evaluation = getattr(model, "evaluation", None)
    table = getattr(evaluation, "table", None)
    version = getattr(model, "version", "?")
    champion = getattr(model, "kind", None)
    facts = [f"version {version}"]
    if champion:
        facts.append(f"champion: {MODEL_LABELS.get(champion, champion)}")
    horizon = getattr(model, "horizon_windows", None)
    if horizon:
        facts.append(f"{horizon} window(s) ahead")
    for attr, words in (("trained_pairs", "training pairs"), ("trained_songs", "songs"), ("trained_artists", "artists")):
        if getattr(model, attr, None) is not None:
            facts.append(f"{getattr(model, attr)} {words}")
    for attr, words in (("data_through", "data through"), ("trained_at", "trained at")):
        value = getattr(model, attr, None)
        if isinstance(value, datetime):
            facts.append(f"{words} {_when(value)}")

    def mae() -> str:
        if table is None or len(table) == 0 or not {"model", "mae"} <= set(table.columns):
            return _note(f"{NO_DATA} (the model has no evaluation table).")
        labels = [MODEL_LABELS.get(str(m), str(m)) for m in table["model"]]
        colors = [GREEN if m == champion else BLUE if m in CANDIDATES else GREY for m in table["model"]]

        def draw(fig: Any) -> None:
            ax = fig.subplots()
            bars = ax.barh(range(len(labels)), _numbers(table["mae"]).to_numpy(), color=colors)
            ax.set_yticks(range(len(labels)), [_label(x) for x in labels])
            ax.invert_yaxis()
            ax.bar_label(bars, fmt="%.2f", padding=2, fontsize=8)
            ax.set_xlabel("held-out MAE (popularity points, lower is better)")
            ax.margins(x=0.15)

        chart = _svg(draw, (5.6, 0.6 + 0.3 * len(labels)))
        metric_columns = [c for c in ("mae", "rmse", "r2", "mae_history", "mae_new") if c in table.columns]
        rows = [[label, *(f"{float(v):.3f}" if pd.notna(v) else None for v in values)]
                for label, values in zip(labels, table[metric_columns].itertuples(index=False))]
        headers = ["model", *(METRIC_WORDS.get(c, c) for c in metric_columns)]
        counts = ""
        if evaluation is not None and hasattr(evaluation, "held_out_new"):
            counts = _note(f"Held out: {evaluation.held_out_history} pairs of songs with history, "
                           f"{evaluation.held_out_new} of songs new in their window.")
        return chart + _table(rows, headers, set(range(1, len(metric_columns) + 1))) + counts

    def importances() -> str:
        series = getattr(model, "importances", None)
        if series is None or len(series) == 0:
            return _note(f"{NO_DATA} (the model has no importances).")
        top = pd.Series(series).sort_values(ascending=False, kind="stable").head(10)
        return _barh([_label(FEATURE_WORDS.get(str(i), str(i).replace("_", " "))) for i in top.index],
                     [float(v) for v in top.to_numpy()],
                     xlabel="permutation importance (MAE increase)", fmt="%.3f")

    facts_line = " · ".join(facts)
    return [
        _panel("model-mae", "Forecast against baselines",
               f"Held-out error on folds split by time and by artist ({facts_line}).", mae),
        _panel("model-rising", "Songs expected to rise",
               "The ten songs the stored forecast expects to gain the most popularity (the rising_songs view).",
               lambda: _rising_songs(frames)),
        _panel("model-importances", "Feature importances",
               "The champion's ten most telling features (permutation importance).", importances),
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
    data = pd.DataFrame({"country": [country_words(c) for c in frame["conn_country"]],
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
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{abs(v):g}")  # lost artists count down, not negative
        _date_axis(ax)
        ax.set_ylabel("artists")
        ax.legend(fontsize=8, frameon=False)

    return _svg(draw, (5.6, 2.6))


# -- the document ------------------------------------------------------------------------------


def render_dashboard(
    frames: dict[str, pd.DataFrame],
    model: object | None,
    *,
    generated_at: datetime,
    title: str = "spotify-assets",
    recent_release_days: int | None = None,
) -> str:
    """One self-contained HTML document (inline CSS and SVG charts, nothing external).
    `recent_release_days` is the warehouse's cut for "recent" releases, named in a legend."""
    cov = data_coverage(frames)
    playlist = _section(
        "playlist-analytics",
        "Playlist analytics",
        "What the configured playlists hold now, and how their songs' popularity moved across snapshot windows.",
        [
            _panel("top-artists", "Top artists", "The artists with the most songs in the current playlists.",
                   lambda: _top_artists(frames)),
            _panel("popularity-trends", "Popularity: recent against older releases",
                   "Average popularity (0–100) per snapshot window, of songs released recently against older ones; "
                   "a release known only by year or month can fall near the cut.",
                   lambda: _popularity_trends(frames, recent_release_days)),
            _panel("popularity-history", "Popularity across windows",
                   "Average popularity of the listed songs per window, with the middle half shaded.",
                   lambda: _popularity_history(frames)),
            _panel("current-top-songs", "Current top songs",
                   "The ten best-ranked current songs; 'ranked by' says whether popularity or playlist rows decided.",
                   lambda: _current_top_songs(frames)),
            _panel("genres", "Genres",
                   "The genres with the most current songs (a song has the genres of its artists) and, when a "
                   "listening history exists, the genres listened to most.",
                   lambda: _genres(frames)),
        ],
        _badge(cov.playlists_synthetic),
    )
    model_section = _section(
        "model-quality",
        "Model quality",
        "The song popularity forecast judged on later windows and held-out artists, next to its baselines, "
        "and the songs it expects to rise.",
        _model_panels(model, frames),
        _badge(cov.playlists_synthetic, "trained on the synthetic sample"),
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
                   "Per month, summed over listeners: artists not heard the month before (up) and heard then "
                   "but not now (down).",
                   lambda: _churn(frames)),
        ],
        _badge(cov.listening_synthetic),
    )
    stamp = _when(generated_at)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1>{_synthetic_banner(cov)}{_coverage_lines(cov)}'
        f'<p class="generated">Generated at {_e(stamp)}</p></header>'
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
