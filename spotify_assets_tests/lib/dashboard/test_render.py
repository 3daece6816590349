"""The HTML dashboard: sections, charts, escaping, no external references, determinism; what it
covers, whether it is synthetic, and legends in words."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from spotify_assets.lib.dashboard.render import chart_count, data_coverage, render_dashboard, sample_export_sha256s, section_html
from spotify_assets.lib.model.popularity import FEATURES
from spotify_assets.lib.samples.catalogue import sample_playlist_ids

GENERATED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
EVIL = "<script>alert(1)</script>"
MONTHS = [date(2025, m, 1) for m in range(1, 7)]
WINDOWS = pd.date_range("2026-01-01", periods=5, freq="8h", tz="UTC")


def _frames() -> dict[str, pd.DataFrame]:
    return {**_view_frames(), "rising_songs": _rising()}


def _view_frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    listeners = ["alice", "bob"]
    hours = pd.DataFrame(
        [
            {"listener": who, "hour_of_day": h, "streams": int(40 if 18 <= h <= 21 else 5 + h % 4),
             "minutes_played": 3.1 * h, "share_of_streams": 0.04}
            for who in listeners
            for h in range(24)
        ]
    )
    return {
        "top_artists": pd.DataFrame(
            {"artist_rank": [1, 2, 3], "artist_id": ["a1", "a2", "a3"], "artist_name": [EVIL, "Ke$ha $ign", "Björk"],
             "song_count": [7, 5, 2], "avg_popularity": [60.0, None, 40.0]}
        ),
        "popularity_trends": pd.DataFrame(
            [
                {"window_start": w, "release_group": g, "song_count": 4, "avg_popularity": 50 + i + (10 if g == "recent" else 0)}
                for i, w in enumerate(WINDOWS)
                for g in ("recent", "older", "unknown")
            ]
        ),
        "popularity_history": pd.DataFrame(
            [
                {"song_id": f"s{s}", "window_start": w, "name": f"song {s}", "popularity": int(rng.integers(0, 100))}
                for w in WINDOWS
                for s in range(6)
            ]
        ),
        "current_top_songs": pd.DataFrame(
            {"song_rank": range(1, 13), "rank_basis": "popularity", "song_id": [f"s{i}" for i in range(12)],
             "name": [EVIL] + [f"song {i}" for i in range(1, 12)], "artist_name": "someone",
             "popularity": [90 - i for i in range(12)], "playlist_appearances": 1}
        ),
        "genres": pd.DataFrame(
            {"genre": ["pop", EVIL, "música mexicana", "jazz"], "artist_count": [3, 1, 1, 1], "song_count": [9, 4, 2, 0],
             "playlist_rows": [12, 4, 2, 0], "plays": [10, 3, 0, 2], "minutes_played": [30.5, 9.0, 0.0, 6.0]}
        ),
        "listening_activity": pd.DataFrame(
            [
                {"listener": who, "period": period, "period_start": m, "streams": 100, "minutes_played": 300.0 + 10 * i}
                for who in listeners
                for i, m in enumerate(MONTHS)
                for period in ("day", "week", "month")
            ]
        ),
        "listening_by_hour": hours,
        "listening_by_weekday": pd.DataFrame(
            [
                {"listener": who, "iso_weekday": d, "weekday_name": n, "streams": 10 * d, "minutes_played": 30.0}
                for who in listeners
                for d, n in enumerate(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"], 1)
            ]
        ),
        "listening_by_country": pd.DataFrame(
            {"conn_country": ["SE", "DE", None], "streams": [100, 20, 3], "minutes_played": [1.0, 2.0, 3.0],
             "listeners": [2, 1, 1], "share_of_streams": [0.81, 0.16, 0.03]}
        ),
        "listening_skip_rate": pd.DataFrame(
            [
                {"listener": who, "month_start": m, "plays": 50, "skip_rate": 0.1 + 0.01 * i if who == "alice" else None,
                 "short_play_rate": 0.2}
                for who in listeners
                for i, m in enumerate(MONTHS)
            ]
        ),
        "listening_top_artists": pd.DataFrame(
            {"listener": ["alice", "alice", "bob"], "artist_rank": [1, 2, 1], "artist_name": [EVIL, "Björk", "Björk"],
             "minutes_played": [120.5, 80.25, 60.0], "plays": [30, 20, 10], "tracks": [3, 2, 1]}
        ),
        "listening_top_tracks": pd.DataFrame(
            {"listener": ["alice", "bob"], "track_rank": [1, 1], "track_name": ["Jóga", "Army of Me"],
             "artist_name": ["Björk", None], "minutes_played": [40.0, 30.0], "plays": [10, 8]}
        ),
        "listening_active_days": pd.DataFrame(
            [
                {"listener": who, "month_start": m, "active_days": 10 + i, "days_in_month": 30}
                for who in listeners
                for i, m in enumerate(MONTHS)
            ]
        ),
        "listening_artist_churn": pd.DataFrame(
            [
                {"listener": who, "month_start": m, "artists": 10, "new_artists": 3 + i, "retained_artists": 7,
                 "lost_artists": 2, "retention_rate": 0.7}
                for who in listeners
                for i, m in enumerate(MONTHS)
            ]
        ),
    }


def _model() -> SimpleNamespace:
    table = pd.DataFrame(
        {"model": ["persistence", "global_mean", "artist_mean", "ridge", "random_forest", "hist_gradient_boosting"],
         "role": ["baseline"] * 3 + ["candidate"] * 3,
         "mae": [3.0, 20.0, 15.0, 2.9, 2.25, 2.5], "rmse": [4.0, 25.0, 19.0, 3.9, 3.0, 3.2],
         "r2": [0.9, 0.0, 0.3, 0.9, 0.95, 0.94], "mae_fold_sd": [0.5] * 6,
         "mae_history": [2.5, 19.0, 14.0, 2.4, 2.0, 2.2], "mae_new": [6.0, 25.0, 20.0, 5.5, 4.0, 4.5]}
    )
    importances = pd.Series({f"feature_{i}": 1 / (i + 1) for i in range(15)}, name="importance")
    evaluation = SimpleNamespace(table=table, held_out_history=900, held_out_new=100)
    return SimpleNamespace(evaluation=evaluation, importances=importances, version="abc123def456", kind="random_forest",
                           horizon_windows=3, trained_pairs=5000, trained_songs=300, trained_artists=60,
                           trained_at=GENERATED, data_through=None)


def _rising() -> pd.DataFrame:
    return pd.DataFrame(
        {"rising_rank": range(1, 13), "name": [f"riser {i}" for i in range(12)],
         "artist_name": [f"artist {i}" for i in range(12)], "expected_change": [12.0 - i for i in range(12)],
         "new_song": [i % 3 == 0 for i in range(12)], "horizon_windows": 3}
    )


@pytest.fixture(scope="module")
def document() -> str:
    return render_dashboard(_frames(), _model(), generated_at=GENERATED)


def _panel(document: str, panel_id: str) -> str:
    match = re.search(rf'<div class="panel" id="{panel_id}">.*?</div>(?=<div class="panel"|</div></section>)', document, re.DOTALL)
    assert match, panel_id
    return match.group(0)


PANELS = {
    "playlist-analytics": {"top-artists": 1, "popularity-trends": 1, "popularity-history": 1, "current-top-songs": 0,
                           "genres": 2},  # songs per genre, minutes per genre
    "model-quality": {"model-mae": 1, "model-rising": 1, "model-importances": 1},
    "listening-kpis": {
        "minutes-per-month": 1, "plays-by-hour": 1, "plays-by-weekday": 1, "plays-by-country": 1, "skip-rate": 1,
        "top-listened-artists": 1, "top-listened-tracks": 1, "active-days": 1, "artist-churn": 1,
    },
}


@pytest.mark.slow
def test_every_section_and_chart_is_there(document: str) -> None:
    assert document.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in document
    assert "Generated at 2026-03-01 12:00 UTC" in document
    for heading in ("Playlist analytics", "Model quality", "Listening KPIs"):
        assert f"<h2>{heading}</h2>" in document
    for section, panels in PANELS.items():
        assert chart_count(document, section) == sum(panels.values()), section
        for panel_id, charts in panels.items():
            panel = _panel(document, panel_id)
            assert panel.count("<svg") == charts, panel_id
            assert "<h3>" in panel and 'class="explain"' in panel
            assert "no data yet" not in panel and "not shown" not in panel and "could not draw" not in panel, panel_id
    assert chart_count(document) == 17
    # genres: songs and minutes, each only the genres that have some, most first
    genres = _panel(document, "genres")
    assert genres.index("pop") < genres.index("música mexicana") and genres.count("jazz") == 1
    # the top songs table: ten rows, ranked, with the basis
    table = _panel(document, "current-top-songs")
    assert table.count("<tr>") == 11 and "song 9" in table and "song 10" not in table and "popularity" in table
    # the model: version, labels, importances capped at ten
    assert "abc123def456" in document and "random forest" in document and "baseline: global mean" in document
    assert "baseline: persistence" in document and "champion: random forest" in document
    assert "900 pairs of songs with history, 100 of songs new" in document
    importances = _panel(document, "model-importances")
    assert "feature 9" in importances and "feature 10" not in importances
    # the rising songs: the ten first, new ones marked
    rising = _panel(document, "model-rising")
    assert "riser 9" in rising and "riser 10" not in rising and "riser 0 · artist 0 (new)" in rising
    assert "+12.0" in rising and "3 window(s) of 8 h" in rising
    # the evening peak is called out
    assert "18–21 h:" in _panel(document, "plays-by-hour")


def test_nothing_external(document: str) -> None:
    lowered = document.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", lowered)
    assert "<script" not in lowered.replace("&lt;script", "")
    assert "@import" not in lowered
    assert not re.search(r"url\(\s*[\"']?\s*(?:https?:)?//", lowered)
    assert "<link" not in lowered and "<img" not in lowered and "<iframe" not in lowered


def test_data_text_is_escaped(document: str) -> None:
    assert EVIL not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "Ke$ha $ign" in document  # drawn as text, not parsed as mathtext
    assert "Björk" in document  # UTF-8 kept as text


def test_the_same_input_gives_the_same_document(document: str) -> None:
    assert render_dashboard(_frames(), _model(), generated_at=GENERATED) == document
    assert len(document.encode("utf-8")) < 1_000_000


def test_missing_and_empty_frames_give_a_note() -> None:
    frames = _frames()
    frames["popularity_trends"] = frames["popularity_trends"].iloc[0:0]
    for name in ("top_artists", "listening_by_hour", "listening_artist_churn", "current_top_songs"):
        del frames[name]
    frames["listening_active_days"] = frames["listening_active_days"].drop(columns="active_days")
    page = render_dashboard(frames, None, generated_at=GENERATED, title="my <title>")
    for panel_id in ("top-artists", "popularity-trends", "plays-by-hour", "artist-churn", "current-top-songs"):
        panel = _panel(page, panel_id)
        assert "no data yet" in panel and "<svg" not in panel, panel_id
    assert "no column(s) active_days" in _panel(page, "active-days")
    assert "no model trained yet" in section_html(page, "model-quality")
    assert chart_count(page, "model-quality") == 0
    assert "<title>my &lt;title&gt;</title>" in page
    assert chart_count(page) == 17 - 3 - 4 - 1  # the model, four charted views, active days
    # a model, but no rising songs yet: a note, not a failure
    without = render_dashboard({k: v for k, v in _frames().items() if k != "rising_songs"}, _model(), generated_at=GENERATED)
    assert "no data yet" in _panel(without, "model-rising") and chart_count(without, "model-quality") == 2

    empty = render_dashboard({}, None, generated_at=GENERATED)
    assert chart_count(empty) == 0
    assert empty.count("no data yet") == 5 + 9


@pytest.mark.slow
def test_views_without_popularity_say_so() -> None:
    frames = _frames()
    frames["popularity_trends"] = frames["popularity_trends"].assign(avg_popularity=None)
    frames["popularity_history"] = frames["popularity_history"].assign(popularity=None)
    page = render_dashboard(frames, None, generated_at=GENERATED)
    for panel_id in ("popularity-trends", "popularity-history"):
        assert "no popularity values" in _panel(page, panel_id)


def test_a_real_trained_model() -> None:
    from spotify_assets.lib.model import popularity as ml
    from spotify_assets_tests.support.panel import make_panel

    features = make_panel(150, 8, seed=1, planted=1.0)
    trained = ml.train(features, ml.TrainingParams(n_estimators=5, max_depth=4, boosting_iterations=20, cv_folds=3))
    rising = trained.forecast(features)
    rising = rising[rising["expected_change"] > 0].assign(rising_rank=lambda f: range(1, len(f) + 1))
    page = render_dashboard({"rising_songs": rising}, trained, generated_at=GENERATED)
    assert chart_count(page, "model-quality") == 3
    assert trained.version in page and ml.MODEL_LABELS[trained.kind] in page
    assert "could not draw" not in page


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_renders_headless_without_network(document: str, tmp_path: Path) -> None:
    page = tmp_path / "dashboard.html"
    page.write_text(document, encoding="utf-8")
    png = tmp_path / "dashboard.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000", f"--screenshot={png}", page.as_uri(),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"chromium could not run here: {error}")
    assert png.exists() and png.stat().st_size > 10_000


# -- what the page says it shows ---------------------------------------------------------------


def _coverage_frames(*, synthetic_playlists: bool, synthetic_listening: bool) -> dict[str, pd.DataFrame]:
    if synthetic_playlists:
        ids = sample_playlist_ids()
        names = [f"Synthetic · Playlist {i}" for i in range(len(ids))]
    else:
        ids = [f"real{i:018d}" for i in range(4)]
        names = [f"Road trip {i}" for i in range(4)]
    playlists = pd.DataFrame(
        [{"window_start": w, "playlist_id": p, "name": n} for w in WINDOWS for p, n in zip(ids, names)]
    )
    hashes = sorted(sample_export_sha256s()) if synthetic_listening else [f"{i:064x}" for i in range(8)]
    sources = pd.DataFrame(
        [
            {"listener": who, "source_sha256": hashes[i], "plays": 100,
             "first_play": pd.Timestamp("2025-06-01 09:00", tz="UTC") + pd.Timedelta(days=i),
             "last_play": pd.Timestamp("2026-10-31 22:00", tz="UTC") - pd.Timedelta(days=i), "synthetic_show_plays": 0}
            for i, who in enumerate(["alice", "bob", "alice"])
        ]
    )
    return {**_frames(), "playlists": playlists, "listening_sources": sources}


def _header(page: str) -> str:
    return page[page.index("<header>") : page.index("</header>")]


@pytest.mark.slow
def test_sample_data_is_labelled_synthetic() -> None:
    page = render_dashboard(_coverage_frames(synthetic_playlists=True, synthetic_listening=True), _model(),
                            generated_at=GENERATED)
    banner = re.search(r'<div class="synthetic" id="synthetic-banner".*?</div>', page, re.DOTALL)
    assert banner, "no synthetic banner"
    text = banner.group(0)
    assert "Synthetic data:" in text and "every playlist" in text and "alice, bob" in text
    assert "Not real Spotify data" in text
    # and every section says so where a reader scrolled past the banner
    for section in ("playlist-analytics", "model-quality", "listening-kpis"):
        assert 'class="badge"' in section_html(page, section), section


@pytest.mark.slow
def test_real_data_has_no_synthetic_banner() -> None:
    page = render_dashboard(_coverage_frames(synthetic_playlists=False, synthetic_listening=False), _model(),
                            generated_at=GENERATED)
    assert "synthetic-banner" not in page and 'class="badge"' not in page
    assert "ynthetic" not in _header(page)


@pytest.mark.slow
def test_partly_synthetic_data_says_which_part() -> None:
    page = render_dashboard(_coverage_frames(synthetic_playlists=False, synthetic_listening=True), _model(),
                            generated_at=GENERATED)
    banner = re.search(r'<div class="synthetic" id="synthetic-banner".*?</div>', page, re.DOTALL)
    assert banner and "Partly synthetic data:" in banner.group(0) and "playlist" not in banner.group(0)
    assert 'class="badge"' in section_html(page, "listening-kpis")
    assert 'class="badge"' not in section_html(page, "playlist-analytics")


def test_a_listener_is_synthetic_only_when_every_play_is_from_the_sample() -> None:
    frames = _coverage_frames(synthetic_playlists=True, synthetic_listening=True)
    sources = frames["listening_sources"].copy()
    sources.loc[2, "source_sha256"] = "f" * 64  # alice also dropped a file of her own
    coverage = data_coverage({**frames, "listening_sources": sources})
    assert coverage.listeners == ("alice", "bob") and coverage.synthetic_listeners == ("bob",)
    assert coverage.listening_synthetic == "some" and coverage.playlists_synthetic == "all"
    # an older sample's listener (other bytes) is still known by the sample's invented podcasts
    older = pd.DataFrame([{"listener": "ana", "source_sha256": "e" * 64, "plays": 10, "synthetic_show_plays": 2},
                          {"listener": "alice", "source_sha256": "d" * 64, "plays": 10, "synthetic_show_plays": 2}])
    assert data_coverage({"listening_sources": older}).synthetic_listeners == ("ana",)


@pytest.mark.slow
def test_the_coverage_line_names_the_windows_and_listeners() -> None:
    page = render_dashboard(_coverage_frames(synthetic_playlists=False, synthetic_listening=False), _model(),
                            generated_at=GENERATED)
    line = re.search(r'<p class="coverage" id="coverage">(.*?)</p>', page, re.DOTALL)
    assert line, "no coverage line"
    text = line.group(1)
    assert "4 playlists in 5 windows" in text
    assert "the first starting 2026-01-01 00:00 and the last 2026-01-02 08:00 UTC" in text
    assert "Listeners: 2 (alice, bob)" in text and "plays from 2025-06-01 to 2026-10-31" in text

    empty = render_dashboard({}, None, generated_at=GENERATED)
    assert "Playlists: no snapshot window loaded yet." in empty
    assert "Listeners: none (no listening export ingested yet)." in empty
    assert "synthetic-banner" not in empty


def _legend_and_axis_text(page: str) -> list[str]:
    """Every text drawn in the charts (legends, axes, labels) and every table cell."""
    texts = re.findall(r"<text[^>]*>(.*?)</text>", page, re.DOTALL)
    texts += re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", page, re.DOTALL)
    return [t.strip() for t in texts]


@pytest.mark.slow
def test_legends_and_labels_are_words_not_code_values() -> None:
    frames = _frames()
    frames["popularity_trends"] = pd.DataFrame(
        [
            {"window_start": w, "release_group": g, "song_count": 4, "avg_popularity": 40 + 5 * i}
            for w in WINDOWS
            for i, g in enumerate(("recent", "older", "straddles_cut", "unknown"))
        ]
    )
    frames["current_top_songs"] = frames["current_top_songs"].assign(rank_basis="playlist_appearances", popularity=None)
    frames["listening_by_country"] = pd.DataFrame({"conn_country": ["ES", "US", None], "streams": [10, 5, 2]})
    model = _model()
    model.importances = pd.Series({name: 1 / (i + 1) for i, name in enumerate(FEATURES)})
    page = render_dashboard(frames, model, generated_at=GENERATED, recent_release_days=365)

    shown = _legend_and_axis_text(page)
    codes = {"straddles_cut", "recent", "older", "unknown", "playlist_appearances", "mae", "rmse", "r2",
             "ES", "US", "None", "nan", *(f for f in FEATURES if f != "popularity")}  # a feature, and a word
    assert not [t for t in shown if t in codes], [t for t in shown if t in codes]
    assert not [t for t in shown if "_" in t and " " not in t], "a snake_case code value is shown"
    trends = _panel(page, "popularity-trends")
    for words in ("released in the last 365 days", "released earlier", "near the cut (year/month date only)",
                  "release date unknown"):
        assert words in trends, words
    assert "playlist rows" in _panel(page, "current-top-songs")
    country = _panel(page, "plays-by-country")
    assert "Spain (ES)" in country and "United States (US)" in country and "country not given" in country
    assert "song length" in _panel(page, "model-importances")


def test_genres_show_no_data_without_genres_and_no_minutes_without_history() -> None:
    frames = _frames()
    frames["genres"] = frames["genres"].iloc[0:0]
    panel = _panel(render_dashboard(frames, None, generated_at=GENERATED), "genres")
    assert "no data yet" in panel and "Extended Quota" in panel and "<svg" not in panel
    frames["genres"] = _frames()["genres"].assign(plays=None, minutes_played=None)  # no listening history
    panel = _panel(render_dashboard(frames, None, generated_at=GENERATED), "genres")
    assert panel.count("<svg") == 1 and "minutes played" not in panel and "songs in the current playlists" in panel
