"""The warehouse IO managers: a window is replaced exactly, atomically, and only that window.

Several tests run against dagster-duckdb-pandas' own manager too, marked xfail(strict=True):
they document the upstream bug each fix is for, and prove the test can fail for that reason.
"""


import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb_pandas import DuckDBPandasIOManager

from spotify_assets.defs.io_managers import WarehouseDuckDBIOManager
from spotify_assets.lib.tables.schema import TABLES
from spotify_assets.lib.warehouse.duckdb import DuckDBDatabase, WarehouseLockTimeout, duckdb_replace
from spotify_assets.lib.window import Window

WINDOWS = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 */8 * * *", start="2026-11-01-00:00", fmt="%Y-%m-%d-%H:%M", timezone="UTC"
)
W1, W2, W3 = "2026-11-20-08:00", "2026-11-20-16:00", "2026-11-21-00:00"

# what the test asset returns for a window: set by each test
FRAMES: dict[str, Callable[[datetime], pd.DataFrame]] = {}


def _asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, partitions_def=WINDOWS, metadata={"partition_expr": "window_start"})
    def _a(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return FRAMES[name](context.partition_time_window.start)

    return _a


def ours_and_upstream(reason: str) -> pytest.MarkDecorator:
    """Run with our manager (kind "ours"), and with upstream's, which must fail for `reason`."""
    upstream = pytest.param("upstream", marks=pytest.mark.xfail(strict=True, reason=reason))
    return pytest.mark.parametrize("kind", ["ours", upstream])


def _io(kind: str, path: Path) -> dg.ConfigurableIOManagerFactory:
    if kind == "ours":
        return WarehouseDuckDBIOManager(database=str(path), schema="analytics")
    return DuckDBPandasIOManager(database=str(path), schema="analytics")


def _materialize(name: str, key: str, io: dg.ConfigurableIOManagerFactory, *, raise_on_error: bool = True) -> bool:
    result = dg.materialize([_asset(name)], partition_key=key, resources={"io_manager": io}, raise_on_error=raise_on_error)
    return result.success


def _events(n: int, value: int = 1) -> Callable[[datetime], pd.DataFrame]:
    def build(start: datetime) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "window_start": pd.Series([start] * n, dtype="datetime64[us, UTC]"),
                "event": [f"e{i}" for i in range(n)],
                "n": pd.array([value] * n, dtype="Int32"),
            }
        )

    return build


def _rows(path: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(
            f"SELECT strftime(window_start, '%Y-%m-%d %H:%M'), count(*) FROM analytics.{table} GROUP BY 1 ORDER BY 1"
        ).fetchall()


@pytest.mark.slow
def test_rematerializing_a_window_three_times_gives_the_same_rows(tmp_path):
    db = tmp_path / "w.duckdb"
    io = _io("ours", db)
    FRAMES["events"] = _events(5)
    _materialize("events", W1, io)
    _materialize("events", W2, io)
    once = _rows(db, "events")
    for _ in range(3):
        _materialize("events", W2, io)
    assert _rows(db, "events") == once == [("2026-11-20 08:00", 5), ("2026-11-20 16:00", 5)]


@ours_and_upstream("dagster#14091")
def test_a_failed_write_leaves_the_window_as_it_was(tmp_path, kind):
    db = tmp_path / "w.duckdb"
    io = _io(kind, db)
    FRAMES["events"] = _events(4)
    _materialize("events", W1, io)
    # 2**40 does not fit the INTEGER column: the insert fails after the delete has run
    FRAMES["events"] = lambda start: _events(4)(start).assign(n=pd.array([2**40] * 4, dtype="Int64"))
    assert not _materialize("events", W1, io, raise_on_error=False)
    assert _rows(db, "events") == [("2026-11-20 08:00", 4)]


@ours_and_upstream("dagster#24172")
def test_an_empty_window_leaves_a_typed_table_and_replaces_old_rows(tmp_path, kind):
    db = tmp_path / "w.duckdb"
    io = _io(kind, db)
    empty = TABLES["songs"].empty_frame
    FRAMES["songs"] = lambda start: empty()
    _materialize("songs", W1, io)
    with duckdb.connect(str(db), read_only=True) as conn:
        columns = [r[0] for r in conn.execute("DESCRIBE analytics.songs").fetchall()]
    assert columns == TABLES["songs"].column_names
    FRAMES["songs"] = lambda start: empty().reindex(range(2)).assign(
        window_start=pd.Series([start] * 2, dtype="datetime64[us, UTC]"), song_id=["s0", "s1"]
    )
    _materialize("songs", W2, io)
    assert _rows(db, "songs") == [("2026-11-20 16:00", 2)]
    FRAMES["songs"] = lambda start: empty()
    _materialize("songs", W2, io)
    assert _rows(db, "songs") == []


@pytest.mark.slow
@ours_and_upstream("session time zone")
def test_a_rewrite_touches_no_other_window_whatever_the_local_time_zone(tmp_path, kind, monkeypatch):
    db = tmp_path / "w.duckdb"
    io = _io(kind, db)
    FRAMES["events"] = _events(3)
    for key in (W1, W2, W3):
        _materialize("events", key, io)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        FRAMES["events"] = _events(7)
        _materialize("events", W2, io)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert _rows(db, "events") == [("2026-11-20 08:00", 3), ("2026-11-20 16:00", 7), ("2026-11-21 00:00", 3)]


def _storage(path: Path, table: str) -> tuple[list[tuple], int]:
    """(row group, column, segment, block, offset) of every data segment, and the file's used blocks."""
    with duckdb.connect(str(path), read_only=True) as conn:
        segments = conn.execute(
            "SELECT row_group_id, column_id, segment_id, block_id, block_offset, count "
            f"FROM pragma_storage_info('analytics.{table}') WHERE segment_type <> 'VALIDITY' ORDER BY ALL"
        ).fetchall()
        used = conn.execute("SELECT used_blocks FROM pragma_database_size()").fetchone()[0]
    return segments, used


@pytest.mark.slow
@ours_and_upstream("checkpoint merges row groups")
def test_a_new_window_rewrites_no_stored_window_and_a_replace_leaves_no_garbage(tmp_path, kind):
    # The cost of a window must grow with its own rows, not with history: DuckDB's default
    # checkpoint merges partly filled row groups, rewriting windows already stored.
    db = tmp_path / "w.duckdb"
    io = _io(kind, db)
    FRAMES["events"] = _events(2_000)
    _materialize("events", W1, io)
    first, _ = _storage(db, "events")
    _materialize("events", W2, io)
    _materialize("events", W3, io)
    stored, used = _storage(db, "events")
    assert stored[: len(first)] == first  # window 1's segments: same blocks, same offsets
    assert len({s[0] for s in stored}) == 3
    for _ in range(3):
        _materialize("events", W2, io)
    replaced, used_after = _storage(db, "events")
    assert len({s[0] for s in replaced}) == 3  # the replaced row group was dropped, not kept half-deleted
    assert used_after == used
    assert _rows(db, "events") == [("2026-11-20 08:00", 2000), ("2026-11-20 16:00", 2000), ("2026-11-21 00:00", 2000)]


def test_timestamps_round_trip_exactly_through_the_io_manager(tmp_path):
    db = tmp_path / "w.duckdb"
    stamps = pd.Series(
        pd.to_datetime(["2026-11-20T09:15:30.123456Z", "1999-12-31T23:59:59Z", None], utc=True, format="ISO8601")
    ).astype("datetime64[us, UTC]")

    def build(start: datetime) -> pd.DataFrame:
        frame = TABLES["playlist_tracks"].empty_frame().reindex(range(3))
        frame["window_start"] = pd.Series([start] * 3, dtype="datetime64[us, UTC]")
        frame["playlist_id"], frame["position"], frame["song_id"] = "p", pd.array([0, 1, 2], dtype="Int32"), "s"
        frame["added_at"] = stamps
        return frame

    FRAMES["playlist_tracks"] = build
    _materialize("playlist_tracks", W1, _io("ours", db))

    @dg.asset(partitions_def=WINDOWS, ins={"playlist_tracks": dg.AssetIn()})
    def reader(playlist_tracks: pd.DataFrame) -> None:
        pd.testing.assert_series_equal(playlist_tracks["added_at"], stamps, check_names=False)
        assert str(playlist_tracks["added_at"].dtype) == "datetime64[us, UTC]"

    result = dg.materialize(
        [_asset("playlist_tracks").to_source_asset(), reader],
        partition_key=W1,
        resources={"io_manager": _io("ours", db)},
        selection=[reader],
    )
    assert result.success


def _write_windows(path: str, windows: list[str], rows: int) -> None:
    db = DuckDBDatabase(path, lock_timeout_s=60)
    for key in windows:
        start = datetime.strptime(key, "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)
        with db.connect(write=True) as conn:
            duckdb_replace(conn, "analytics", "events", _events(rows)(start), Window(start, start + timedelta(hours=8)))
            time.sleep(0.05)  # hold the file a little, as a real step does


@pytest.mark.slow
def test_parallel_writers_in_separate_processes_queue_instead_of_failing(tmp_path):
    path = str(tmp_path / "w.duckdb")
    keys = [k for k in WINDOWS.get_partition_keys(datetime(2026, 11, 5, tzinfo=timezone.utc))][:12]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_windows, args=(path, keys[i::3], 10)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    rows = _rows(Path(path), "events")
    assert len(rows) == 12 and all(n == 10 for _, n in rows)


@pytest.mark.slow
def test_a_foreign_holder_of_the_file_is_waited_for_then_named(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time,sys; c=duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(float(sys.argv[1]))", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLockTimeout, match=str(path)):
            with DuckDBDatabase(path, lock_timeout_s=0.3).connect(write=True):
                pass
        started = time.monotonic()
        with DuckDBDatabase(path, lock_timeout_s=30).connect(write=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert time.monotonic() - started < 30
    finally:
        holder.kill()
        holder.wait()


def test_production_stages_rows_with_write_pandas_as_parquet_with_logical_types(monkeypatch):
    """The one step the fakesnow tests replace: what it asks of the Snowflake connector."""
    import snowflake.connector.pandas_tools as pandas_tools

    from spotify_assets.lib.warehouse.snowflake import stage_with_write_pandas

    calls = []

    def fake_write_pandas(**kwargs):
        calls.append(kwargs)
        return True, 1, len(kwargs["df"]), []

    monkeypatch.setattr(pandas_tools, "write_pandas", fake_write_pandas)
    frame = pd.DataFrame({"A": [1, 2]})
    stage_with_write_pandas("conn", frame, "SONGS__LOAD_1")
    [kw] = calls
    assert kw["table_name"] == "SONGS__LOAD_1" and kw["df"] is frame
    # the table exists (created LIKE the target); timestamps keep their zone as Parquet logical types
    assert kw["auto_create_table"] is False and kw["overwrite"] is False and kw["use_logical_type"] is True
    monkeypatch.setattr(pandas_tools, "write_pandas", lambda **kw: (True, 1, 1, []))
    with pytest.raises(RuntimeError, match="loaded 1 of 2 rows"):
        stage_with_write_pandas("conn", frame, "SONGS__LOAD_1")


def _odd_values(start: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "window_start": pd.Series([start] * 3, dtype="datetime64[us, UTC]"),
            "event": ["e0", None, "e | 2 with a long text " + "x" * 200],
            "n": pd.array([1, None, 3], dtype="Int32"),
            "share": [0.123456789, float("nan"), 2.080013187820181],
            "flag": [True, False, True],
            "seen_at": pd.Series([start, pd.NaT, start], dtype="datetime64[us, UTC]"),
        }
    )


def test_a_window_shows_its_rows_the_table_s_rows_its_schema_and_a_preview_of_every_column(tmp_path):
    FRAMES["odd"] = _odd_values
    io = WarehouseDuckDBIOManager(database=str(tmp_path / "w.duckdb"), schema="analytics")
    assert _materialize("odd", W1, io)
    result = dg.materialize([_asset("odd")], partition_key=W2, resources={"io_manager": io})
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/partition_row_count"].value == 3  # the window
    assert meta["dagster/row_count"].value == 6  # the whole table: the UI's "Row count"
    assert "table_rows" not in meta
    columns = list(_odd_values(datetime(2026, 1, 1)).columns)
    assert [c.name for c in meta["dagster/column_schema"].value.columns] == columns
    preview = meta["preview"]
    assert isinstance(preview, dg.TableMetadataValue)
    assert [c.name for c in preview.schema.columns] == columns
    first, second, third = (r.data for r in preview.records)
    assert set(first) == set(columns)
    for record in (first, second, third):
        assert all(v is None or type(v) in (str, int, float, bool) for v in record.values()), record
    assert first["share"] == 0.123 and third["share"] == 2.08 and second["share"] is None  # rounded; NaN is None
    assert second["n"] is None and second["seen_at"] is None and second["event"] is None
    assert first["n"] == 1 and first["flag"] is True
    assert first["window_start"] == "2026-11-20 16:00:00 UTC" and first["seen_at"] == first["window_start"]
    assert third["event"].endswith("x" * 200)  # not cut


def test_cells_are_values_a_table_record_holds():
    from decimal import Decimal

    import numpy as np

    from spotify_assets.defs.io_managers import cell, round_float

    assert cell(np.int64(7)) == 7 and type(cell(np.int64(7))) is int
    assert cell(np.float32(0.5)) == 0.5 and type(cell(np.float64(1.0))) is float
    assert cell(np.bool_(True)) is True
    assert cell(float("nan")) is None and cell(pd.NA) is None and cell(pd.NaT) is None and cell(None) is None
    assert cell(np.datetime64("NaT")) is None
    assert cell(pd.Timestamp("2026-11-20 08:00", tz="UTC")) == "2026-11-20 08:00:00 UTC"
    assert cell(pd.Timestamp("2026-11-20 08:00:01.5")) == "2026-11-20 08:00:01.5"
    assert cell(np.datetime64("2026-11-20T08:00")) == "2026-11-20 08:00:00"
    assert cell(datetime(2026, 1, 2).date()) == "2026-01-02"
    assert cell(["a", 1]) == '["a", 1]' and cell(np.array([1, 2])) == "[1, 2]" and cell({"k": 1}) == '{"k": 1}'
    assert cell(Decimal("1.23456")) == 1.235
    assert round_float(0.000423456) == 0.000423 and round_float(12345.6789) == 12345.679 and round_float(0.0) == 0.0


def test_the_declared_tables_show_their_declared_schema_and_every_column_in_the_preview():
    from spotify_assets.defs.io_managers import table_metadata
    from spotify_assets.lib.tables.normalize import normalize_documents
    from spotify_assets.lib.warehouse.base import WriteResult
    from spotify_assets_tests.support.fixtures import document, playlist

    start = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)
    meta, rows = playlist("P", 4)
    frames = normalize_documents(start, [document(meta, rows)]).frames
    for name, frame in frames.items():
        shown = table_metadata(name, frame, WriteResult(rows_replaced=0, table_rows=len(frame) + 10), "duckdb", partitioned=True)
        assert [c.name for c in shown["dagster/column_schema"].columns] == TABLES[name].column_names, name
        preview = shown["preview"]
        assert isinstance(preview, dg.TableMetadataValue)
        assert [c.name for c in preview.schema.columns] == TABLES[name].column_names, name
        assert len(preview.records) == min(5, len(frame)) > 0
        assert all(set(r.data) == set(TABLES[name].column_names) for r in preview.records), name
        assert shown["dagster/row_count"] == len(frame) + 10 and shown["dagster/partition_row_count"] == len(frame)
