"""The views and the model's features on MySQL (a real MariaDB server, support/mariadb.py):
rendered from the same SQL files as on DuckDB, they give the same answers for the view
fixtures of defs/analytics/test_views.py (both scenarios) and the genre fixtures of
test_genre_view.py. MySQL has no boolean type (BOOLEAN is TINYINT(1)): true and false
compare as 1 and 0."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from spotify_assets.defs.analytics.views import view_names, view_sql
from spotify_assets.defs.model.assets import FEATURES_SQL
from spotify_assets.lib.warehouse import mysql as mysql_target
from spotify_assets.lib.warehouse.base import render
from spotify_assets.lib.window import Window
from spotify_assets_tests.defs.analytics import test_genre_view as genre_fixtures
from spotify_assets_tests.defs.analytics.test_listening_views import streams_frame
from spotify_assets_tests.defs.analytics.test_views import RECENT_DAYS, _canonical, predictions_frame, _create_order, _duck, _load_duckdb, _windows
from spotify_assets_tests.support.mariadb import MySQLServer

pytestmark = pytest.mark.slow


def _load_mysql(server: MySQLServer, windows, streams: pd.DataFrame) -> mysql_target.MySQLClient:
    client = mysql_target.client_for(server.url, server.new_database("views"))
    for start, frames in windows.items():
        client.replace_window(frames, Window(start, start + timedelta(hours=8)))
    client.replace("streams", streams, None)
    if windows:
        client.replace("song_popularity_predictions", predictions_frame(windows), None)
    for name in _create_order(view_names()):
        client.execute([client.render(view_sql(name), recent_release_days=RECENT_DAYS)])
    return client


def _same(frame: pd.DataFrame) -> pd.DataFrame:
    """`_canonical`, with true/false as 1.0/0.0 (MySQL's booleans are numbers)."""
    frame = _canonical(frame)
    return frame.apply(lambda s: s.map(lambda v: float(v) if isinstance(v, bool) else v))


def _my(client: mysql_target.MySQLClient, view: str) -> pd.DataFrame:
    return _same(client.query(f"SELECT * FROM {client.qualified(view)}"))


@pytest.fixture(scope="module", params=["partial", "no_popularity"])
def loaded(request: pytest.FixtureRequest, mysql_server: MySQLServer):  # type: ignore[no-untyped-def]
    windows = _windows(request.param)
    duck = _load_duckdb(windows)
    yield duck, _load_mysql(mysql_server, windows, streams_frame())
    duck.close()


@pytest.mark.parametrize("view", view_names())
def test_every_view_gives_the_same_answer_on_mysql_and_duckdb(loaded, view: str) -> None:  # type: ignore[no-untyped-def]
    duck, my = loaded
    expected = _same(_duck(duck, view))
    assert len(expected) > 0
    pd.testing.assert_frame_equal(_my(my, view), expected, check_dtype=False)


def test_the_models_features_are_the_same_on_mysql_and_duckdb(loaded) -> None:  # type: ignore[no-untyped-def]
    duck, my = loaded
    sql = FEATURES_SQL.read_text(encoding="utf-8")
    expected = _same(duck.execute(render(sql, "analytics", history_windows=90)).fetchdf())
    assert len(expected) > 0
    pd.testing.assert_frame_equal(_same(my.query(my.render(sql, history_windows=90))), expected, check_dtype=False)


@pytest.mark.parametrize("scenario", list(genre_fixtures.SCENARIOS))
def test_the_genre_view_gives_the_hand_worked_figures_on_mysql(mysql_server: MySQLServer, scenario: str) -> None:
    genres, history = genre_fixtures.SCENARIOS[scenario]
    frames, streams = genre_fixtures._frames(genres), genre_fixtures._streams(history)
    my = _load_mysql(mysql_server, frames, streams)
    found = my.query(f"SELECT * FROM {my.qualified('genres')} ORDER BY genre")
    expected = genre_fixtures._expected(genres, history)
    assert _records(found) == _records(pd.DataFrame(expected, columns=list(found.columns)))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = frame.astype(object).where(frame.notna(), None)
    return [{k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in r.items()} for r in frame.to_dict("records")]
