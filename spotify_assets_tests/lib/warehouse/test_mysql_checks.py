"""The table quality checks on MySQL (a real MariaDB server): written once in the common
dialect and rendered for MySQL by the client, they pass on good data and catch the faults
lib/quality/test_rules.py makes, as on DuckDB and Snowflake."""

from __future__ import annotations

import re

import pytest

from spotify_assets.lib.warehouse import mysql as mysql_target
from spotify_assets.lib.window import Window
from spotify_assets_tests.lib.quality.test_rules import CORRUPTIONS, HOURS8, W1, W2, _failing, _frames
from spotify_assets_tests.support.mariadb import MySQLServer

pytestmark = pytest.mark.slow


class My:
    """What test_rules' helpers need of a warehouse, on MySQL."""

    dialect = mysql_target.DIALECT

    def __init__(self, server: MySQLServer) -> None:
        self.client = mysql_target.client_for(server.url, server.new_database("quality"))
        self.schema = self.client.database
        for start, frames in _frames().items():
            self.client.replace_window(frames, Window(start, start + HOURS8))
        self._reading = self.client.reader()  # one connection for every check, as the asset check has
        self.query = self._reading.__enter__()

    def close(self) -> None:
        self._reading.__exit__(None, None, None)

    def execute(self, sql: str) -> None:
        # MySQL refuses a subquery on the table being updated (error 1093): its value first
        for subquery in re.findall(r"\(SELECT MIN\(\w+\) FROM [^()]*\)", sql):
            value = self.client.query(subquery[1:-1]).iloc[0, 0]
            sql = sql.replace(subquery, f"'{value}'")
        with self.client.cursor() as cur:
            cur.execute(mysql_target.to_mysql(sql, self.schema))


def _naive(ts) -> str:  # type: ignore[no-untyped-def]
    return ts.strftime("%Y-%m-%d %H:%M:%S")  # a DATETIME literal: the UTC wall clock


@pytest.fixture
def wh(mysql_server: MySQLServer):  # type: ignore[no-untyped-def]
    warehouse = My(mysql_server)
    yield warehouse
    warehouse.close()


def test_every_table_check_passes_on_good_data_in_mysql(wh: My) -> None:
    assert _failing(wh, W1) == {}
    assert _failing(wh, W2) == {}


@pytest.mark.parametrize(
    "corruption",
    # one per kind of SQL the checks use: keys, references, dates (TRY_CAST, LAST_DAY), intervals,
    # joins on counts, the previous window's instant
    ["duplicate_songs", "song_album_missing", "release_1970", "month_as_year", "added_tomorrow", "track_row_lost",
     "popularity_dropped"],
)
def test_table_checks_catch_the_same_faults_in_mysql(wh: My, corruption: str) -> None:
    statements, expected = CORRUPTIONS[corruption]
    for sql in statements:
        wh.execute(sql.format(s=wh.schema, w1=_naive(W1), w2=_naive(W2)))
    assert set(_failing(wh)) == set(expected.split("+"))
