"""The MySQL target against a real MariaDB server (support/mariadb.py): the warehouse contract
(every test of test_targets.py, run here on MySQL), and MySQL's own guarantees: a window
replaced in one InnoDB transaction, re-runs that change nothing, empty windows, UTC instants,
utf8mb4 names, indexes for the one-window delete and the joins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets.lib.tables.schema import DECLARED_TABLES, TABLES
from spotify_assets.lib.warehouse import mysql as mysql_target
from spotify_assets.lib.warehouse.base import WarehouseClient
from spotify_assets.lib.window import Window
from spotify_assets_tests.lib.warehouse.test_targets import (  # noqa: F401  (collected here, on MySQL)
    W1,
    W2,
    _ids,
    _rows,
    test_a_timestamp_literal_reads_back_as_the_same_instant,
    test_appending_adds_only_the_rows_whose_key_is_new,
    test_reads_name_columns_in_lower_case,
    test_replacing_a_window_leaves_the_other_windows,
    test_replacing_a_window_of_several_tables_leaves_their_other_windows,
    test_rewriting_a_table_replaces_every_row,
    test_sql_written_once_renders_with_the_targets_schema,
    test_the_dialect_is_the_targets_own,
)
from spotify_assets_tests.support.fixtures import document, playlist, row, track
from spotify_assets_tests.support.mariadb import MySQLServer

pytestmark = pytest.mark.slow  # a server is started for the session

NAMES = ["محمد عبده", "Кино", "周杰伦", "宇多田ヒカル", "BLACKPINK 블랙핑크", "Beyoncé", "🎵 emoji"]
# what LOAD DATA's format escapes, and a name that spells its NULL marker
AWKWARD = ["tab\there", "line\nbreak\r", "back\\slash", 'quote"s, commas', "\\N", "NULL", ""]


@pytest.fixture
def client(mysql_server: MySQLServer) -> WarehouseClient:
    """The contract's client (test_targets.py's tests above ask for it): a fresh database."""
    return mysql_target.client_for(mysql_server.url, mysql_server.new_database())


@pytest.fixture
def my(client: WarehouseClient) -> mysql_target.MySQLClient:
    assert isinstance(client, mysql_target.MySQLClient)
    return client


def _window_frames(window: Window, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """One window of the six tables from two fixture playlists; `names` become artist and
    song names."""
    a_meta, a_rows = playlist("A", max(5, len(names or [])))
    b_meta, _ = playlist("B", 0)
    b_rows = a_rows[:2] + [row(track("duet", artists=2, popularity=90))]
    for i, name in enumerate(names or []):
        item = a_rows[i % len(a_rows)]["item"]
        item["name"] = name
        item["artists"][0]["name"] = name
    return normalize_documents(window.start, [document(a_meta, a_rows), document(b_meta, b_rows)]).frames


def _counts(client: WarehouseClient) -> dict[str, dict[datetime, int]]:
    out: dict[str, dict[datetime, int]] = {}
    for table in TABLES:
        found = client.query(f"SELECT window_start, COUNT(*) AS n FROM {client.qualified(table)} GROUP BY window_start")
        out[table] = {pd.Timestamp(s).to_pydatetime(): int(n) for s, n in zip(found["window_start"], found["n"])}
    return out


def _table(client: WarehouseClient, table: str) -> pd.DataFrame:
    frame = client.query(f"SELECT * FROM {client.qualified(table)}")
    frame = DECLARED_TABLES[table].conform(frame)
    return frame.sort_values(list(DECLARED_TABLES[table].key) + ["window_start"]).reset_index(drop=True)


def test_three_runs_of_a_window_equal_one(my: mysql_target.MySQLClient) -> None:
    frames = _window_frames(W1)
    first = my.replace_window(frames, W1)
    once = {t: _table(my, t) for t in TABLES}
    for _ in range(2):
        again = my.replace_window(_window_frames(W1), W1)
    for table in TABLES:
        pd.testing.assert_frame_equal(_table(my, table), once[table])
        assert again[table].rows_replaced == again[table].table_rows == first[table].table_rows == len(frames[table])


def test_a_failure_half_way_through_a_windows_write_leaves_every_table_as_it_was(
    my: mysql_target.MySQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    my.replace_window(_window_frames(W1), W1)
    my.replace_window(_window_frames(W2), W2)
    before = _counts(my)
    stored = {t: _table(my, t) for t in TABLES}
    loaded: list[str] = []

    def fail_on_the_fourth_table(cur: Any, qualified: str, frame: pd.DataFrame) -> None:
        if len(loaded) == 3:
            raise RuntimeError("injected: the connection dropped half-way through the window")
        mysql_target.load_rows(cur, qualified, frame)
        loaded.append(qualified)

    monkeypatch.setattr(my, "load", fail_on_the_fourth_table)
    new = {t: f.iloc[:1] for t, f in _window_frames(W1).items()}
    with pytest.raises(RuntimeError, match="injected"):
        my.replace_window(new, W1)
    assert len(loaded) == 3  # three tables had their window deleted and their new rows loaded
    assert _counts(my) == before
    for table in TABLES:
        pd.testing.assert_frame_equal(_table(my, table), stored[table])


def test_a_row_the_server_rejects_half_way_through_a_load_leaves_the_table_as_it_was(my: mysql_target.MySQLClient) -> None:
    frames = _window_frames(W1)
    my.replace_window(frames, W1)
    songs = frames["songs"]
    bad = pd.concat([songs, songs.iloc[[0]].assign(song_id="x" * 300)], ignore_index=True)  # over VARCHAR(255)
    with pytest.raises(Exception, match="(?i)too long|loaded"):
        my.replace_window({"songs": bad.iloc[::-1].reset_index(drop=True)}, W1)
    assert _counts(my)["songs"] == {W1.start: len(songs)}


def test_an_empty_window_is_an_empty_window_and_other_windows_stay(my: mysql_target.MySQLClient) -> None:
    my.replace_window(_window_frames(W1), W1)
    full = _window_frames(W2)
    my.replace_window(full, W2)
    w1_tables = {t: _table(my, t).query("window_start == @W1.start") for t in TABLES}
    empty = {t: DECLARED_TABLES[t].empty_frame() for t in TABLES}
    results = my.replace_window(empty, W2)
    for table in TABLES:
        assert results[table].rows_replaced == len(full[table])
        assert _counts(my)[table] == {W1.start: len(w1_tables[table])}
        pd.testing.assert_frame_equal(_table(my, table), w1_tables[table].reset_index(drop=True))
    fresh = my.replace_window({"songs": DECLARED_TABLES["songs"].empty_frame()}, Window(W2.end, W2.end + timedelta(hours=8)))
    assert fresh["songs"].rows_replaced == 0


def test_instants_come_back_as_the_same_utc_instants_whatever_the_server_zone(
    my: mysql_target.MySQLClient, mysql_server: MySQLServer
) -> None:
    frames = _window_frames(W1)
    at = pd.Series(
        [pd.Timestamp("2026-03-29 01:30:00.123456", tz="Europe/Berlin"), pd.Timestamp("2026-11-20 07:59:59", tz="America/New_York")]
        + [pd.Timestamp("2026-11-20 10:00", tz="UTC")] * (len(frames["playlist_tracks"]) - 2)
    )
    frames["playlist_tracks"] = frames["playlist_tracks"].assign(added_at=at.values)
    my.replace_window(frames, W1)
    with my.cursor() as cur:  # another session's zone changes nothing: the client sets UTC itself
        cur.execute("SET GLOBAL time_zone = '+05:30'")
    try:
        back = _table(my, "playlist_tracks")
    finally:
        with my.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = 'SYSTEM'")
    expected = frames["playlist_tracks"].sort_values(["playlist_id", "position"]).reset_index(drop=True)
    assert str(back["added_at"].dtype) == "datetime64[us, UTC]"
    assert list(back["added_at"]) == list(pd.to_datetime(expected["added_at"], utc=True))
    assert set(back["window_start"]) == {pd.Timestamp(W1.start)}


def test_names_in_every_script_survive(my: mysql_target.MySQLClient) -> None:
    my.replace_window(_window_frames(W1, NAMES + AWKWARD), W1)
    songs = set(_table(my, "songs")["name"])
    artists = set(_table(my, "artists")["name"])
    assert set(NAMES + AWKWARD) <= songs and set(NAMES + AWKWARD) <= artists
    assert _table(my, "songs")["name"].notna().all()  # '\\N' and 'NULL' are names, not nulls
    # and they compare by code point, as in DuckDB: 'Кино' is not 'КИНО'
    found = my.query(f"SELECT COUNT(*) AS n FROM {my.qualified('artists')} WHERE name = 'КИНО'")
    assert int(found["n"].iloc[0]) == 0


def test_tables_have_the_indexes_of_the_window_delete_and_the_joins(my: mysql_target.MySQLClient) -> None:
    my.replace_window(_window_frames(W1), W1)
    indexed = my.query(
        "SELECT table_name, column_name, seq_in_index FROM information_schema.statistics "
        f"WHERE table_schema = '{my.database}' ORDER BY table_name, index_name, seq_in_index"
    )
    columns = {t: list(g["column_name"].str.lower()) for t, g in indexed.groupby("table_name")}
    for table in TABLES:
        assert columns[table] == ["window_start", *DECLARED_TABLES[table].key]
    with my.cursor() as cur:
        start, end = W1.literals()
        cur.execute(
            f"EXPLAIN DELETE FROM {my.qualified('playlist_tracks')} WHERE window_start >= "
            f"{my.dialect.timestamp(start)} AND window_start < {my.dialect.timestamp(end)}"
        )
        plan = dict(zip([d[0].lower() for d in cur.description], cur.fetchone()))
    # usable (the optimizer picks it once the table holds more than a few windows)
    assert "playlist_tracks_window_key" in str(plan["possible_keys"]).split(",")
    engines = my.query(f"SELECT table_name, engine, table_collation FROM information_schema.tables WHERE table_schema = '{my.database}'")
    assert set(engines["engine"]) == {"InnoDB"} and set(engines["table_collation"]) == {"utf8mb4_bin"}


def test_an_undeclared_table_written_whole_takes_the_new_frames_columns(my: mysql_target.MySQLClient) -> None:
    first = my.replace("scratch", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), None)
    second = my.replace("scratch", pd.DataFrame({"c": [0.5]}), None)
    assert (first.rows_replaced, first.table_rows, second.rows_replaced, second.table_rows) == (0, 2, 2, 1)
    assert my.query(f"SELECT * FROM {my.qualified('scratch')}").to_dict("list") == {"c": [0.5]}
    assert {t for t in my.tables() if t.startswith("scratch")} == {"scratch"}  # no __new/__old left


def test_the_insert_path_writes_what_load_data_writes(my: mysql_target.MySQLClient, mysql_server: MySQLServer) -> None:
    frames = _window_frames(W1, NAMES + AWKWARD)
    my.replace_window(frames, W1)
    other = mysql_target.client_for(mysql_server.url, mysql_server.new_database(), load=mysql_target.insert_rows)
    other.replace_window(frames, W1)
    for table in TABLES:
        pd.testing.assert_frame_equal(_table(other, table), _table(my, table))


def test_the_common_dialects_date_arithmetic_keeps_its_meaning(my: mysql_target.MySQLClient) -> None:
    my.replace_window(_window_frames(W1), W1)
    sql = (
        "SELECT CAST(window_start AS DATE) + 1 AS next_day, CAST(window_start AS DATE) - DATE '2026-01-01' AS days, "
        "CAST(DATE_TRUNC('month', CAST(window_start AS DATE)) AS DATE) AS month_start, 7 / 2 AS half, "
        "SPLIT_PART('a\",\"b\",\"c', '\",\"', 2) AS second "
        "FROM {schema}.songs LIMIT 1"
    )
    found = my.query(my.render(sql)).iloc[0]
    assert pd.Timestamp(found["next_day"]) == pd.Timestamp("2026-11-21")
    assert int(found["days"]) == (W1.start.date() - datetime(2026, 1, 1).date()).days
    assert pd.Timestamp(found["month_start"]) == pd.Timestamp("2026-11-01")
    assert float(found["half"]) == 3.5
    assert found["second"] == "b"


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("spotify_assets_tests.support.mariadb._find", lambda *names: None)
    yield


def test_without_a_server_the_tests_fail_saying_how_to_get_one(no_server: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from spotify_assets_tests.support import mariadb

    with pytest.raises(pytest.fail.Exception, match="apt-get install -y mariadb-server.*SPOTIFY_ASSETS_TEST_MYSQL_URL"):
        mariadb.start_server(tmp_path)


def test_loading_the_code_location_with_mysql_selected_imports_no_driver(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The daemon loads the code location in every step process: PyMySQL, sqlglot and pandas
    are imported when a step needs them, not then (SQLAlchemy is Dagster's own)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\nfrom spotify_assets.definitions import defs\ndefs().get_repository_def()\n"
        "print(sorted(m for m in ('pymysql', 'sqlglot', 'pandas') if m in sys.modules))"
    )
    env = {**os.environ, "SPOTIFY_ASSETS_DATA_DIR": str(tmp_path), "SPOTIFY_ASSETS_WAREHOUSE": "mysql",
           "SPOTIFY_ASSETS_MYSQL_HOST": "db.example", "SPOTIFY_ASSETS_MYSQL_USER": "pipeline"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
