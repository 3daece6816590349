"""The warehouse contract (`lib/warehouse/base.py`), the same assertions on every target:
DuckDB always, Snowflake through fakesnow's server (only the staging step is the tests' own,
see `support/snowflake.py`). A new target is a builder in TARGETS."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from spotify_assets.lib.tables.schema import SONG_ARTISTS
from spotify_assets.lib.warehouse.base import WarehouseClient, dialect
from spotify_assets.lib.window import Window

W1 = Window(datetime(2026, 11, 20, 8, tzinfo=timezone.utc), datetime(2026, 11, 20, 16, tzinfo=timezone.utc))
W2 = Window(W1.end, W1.end + timedelta(hours=8))


def _duckdb(tmp_path: Path, request: pytest.FixtureRequest) -> WarehouseClient:
    from spotify_assets.lib.warehouse.duckdb import DuckDBClient, DuckDBDatabase

    return DuckDBClient(DuckDBDatabase(tmp_path / "warehouse.duckdb"), "analytics")


def _snowflake(tmp_path: Path, request: pytest.FixtureRequest) -> WarehouseClient:
    import snowflake.connector

    from spotify_assets.lib.warehouse.snowflake import SnowflakeClient
    from spotify_assets_tests.support.snowflake import connection_args, insert_rows

    server = request.getfixturevalue("fakesnow_server")
    database = f"TARGET_{uuid.uuid4().hex[:10].upper()}"
    with snowflake.connector.connect(**server) as conn:
        conn.cursor().execute(f"CREATE DATABASE {database}")
    return SnowflakeClient(
        lambda: snowflake.connector.connect(**connection_args(server, database)), database, "ANALYTICS", insert_rows
    )


def _iceberg(tmp_path: Path, request: pytest.FixtureRequest) -> WarehouseClient:
    from spotify_assets.lib.warehouse.iceberg import local_client

    return local_client(tmp_path / "lake")


TARGETS: dict[str, Callable[[Path, pytest.FixtureRequest], WarehouseClient]] = {
    "duckdb": _duckdb,
    "iceberg": _iceberg,
    "snowflake": _snowflake,
}


@pytest.fixture(params=sorted(TARGETS))
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseClient]:
    yield TARGETS[request.param](tmp_path, request)


def _rows(window: Window, ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "window_start": pd.Series([window.start] * len(ids), dtype="datetime64[us, UTC]"),
            "id": pd.Series(ids, dtype="int64"),
            "label": [f"row {i}" for i in ids],
        }
    )


def _ids(client: WarehouseClient, table: str) -> dict[datetime, list[int]]:
    found = client.query(f"SELECT window_start, id FROM {client.qualified(table)} ORDER BY id")
    by_window: dict[datetime, list[int]] = {}
    for start, row_id in zip(pd.to_datetime(found["window_start"], utc=True), found["id"]):
        by_window.setdefault(start.to_pydatetime(), []).append(int(row_id))
    return by_window


def test_the_dialect_is_the_targets_own(client: WarehouseClient) -> None:
    assert dialect(client.dialect.name) is client.dialect


def test_replacing_a_window_leaves_the_other_windows(client: WarehouseClient) -> None:
    client.replace("contract_rows", _rows(W1, [1, 2]), W1)
    client.replace("contract_rows", _rows(W2, [3]), W2)
    result = client.replace("contract_rows", _rows(W1, [4]), W1)
    assert (result.rows_replaced, result.table_rows) == (2, 2)
    assert _ids(client, "contract_rows") == {W1.start: [4], W2.start: [3]}


def test_replacing_a_window_of_several_tables_leaves_their_other_windows(client: WarehouseClient) -> None:
    client.replace_window({"rows_a": _rows(W1, [1]), "rows_b": _rows(W1, [2])}, W1)
    client.replace_window({"rows_a": _rows(W2, [3]), "rows_b": _rows(W2, [4])}, W2)
    results = client.replace_window({"rows_a": _rows(W1, [5]), "rows_b": _rows(W1, [6, 7])}, W1)
    assert {t: (r.rows_replaced, r.table_rows) for t, r in results.items()} == {"rows_a": (1, 2), "rows_b": (1, 3)}
    assert _ids(client, "rows_a") == {W1.start: [5], W2.start: [3]}
    assert _ids(client, "rows_b") == {W1.start: [6, 7], W2.start: [4]}


def _credits(pairs: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "window_start": [W1.start] * len(pairs),
            "song_id": [s for s, _ in pairs],
            "artist_position": [p for _, p in pairs],
            "artist_id": [f"artist {s}{p}" for s, p in pairs],
        }
    )


def test_appending_adds_only_the_rows_whose_key_is_new(client: WarehouseClient) -> None:
    first = client.append_new({"song_artists": _credits([("a", 0), ("a", 1)])})["song_artists"]
    again = client.append_new({"song_artists": _credits([("a", 1), ("b", 0), ("a", 0)])})["song_artists"]
    assert (first.rows_added, first.table_rows) == (2, 2)
    assert (again.rows_added, again.table_rows) == (1, 3)
    stored = client.query(f"SELECT song_id, artist_position FROM {client.qualified('song_artists')} ORDER BY 1, 2")
    assert list(stored.itertuples(index=False, name=None)) == [("a", 0), ("a", 1), ("b", 0)]


def test_rewriting_a_table_replaces_every_row(client: WarehouseClient) -> None:
    client.append_new({"song_artists": _credits([("a", 0), ("b", 0)])})
    assert client.rewrite_table("song_artists", _credits([("c", 0)])) == 1
    stored = client.query(f"SELECT song_id FROM {client.qualified('song_artists')}")
    assert list(stored["song_id"]) == ["c"]
    assert "song_artists" in client.tables()
    described = client.columns("song_artists")
    assert [str(c).lower() for c in described["column_name"]] == SONG_ARTISTS.column_names


def test_sql_written_once_renders_with_the_targets_schema(client: WarehouseClient) -> None:
    sql = "CREATE OR REPLACE VIEW {schema}.recent AS SELECT {days} AS days"
    client.execute([client.render(sql, days=30)])
    assert list(client.query(f"SELECT days FROM {client.qualified('recent')}")["days"]) == [30]


def test_reads_name_columns_in_lower_case(client: WarehouseClient) -> None:
    with client.reader() as read:
        assert list(read("SELECT 1 AS MixedCase, 2 AS UPPER_CASE")) == ["mixedcase", "upper_case"]
    client.execute([f"CREATE OR REPLACE VIEW {client.qualified('contract_view')} AS SELECT 1 AS Answer"])
    assert list(client.query(f"SELECT * FROM {client.qualified('contract_view')}")) == ["answer"]


def test_a_timestamp_literal_reads_back_as_the_same_instant(client: WarehouseClient) -> None:
    start, end = W2.literals()
    found = client.query(f"SELECT {client.dialect.timestamp(start)} AS s, {client.dialect.timestamp(end)} AS e")
    assert [pd.Timestamp(found[c].iloc[0]).tz_convert("UTC") for c in ("s", "e")] == [W2.start, W2.end]
