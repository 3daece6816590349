"""The lake target's guarantees (`lib/warehouse/iceberg.py`) on pyiceberg's SQL catalog (SQLite)
and local files: a window replaced in one commit, re-runs, empty windows, other windows'
files untouched, partition pruning, declared types, and a commit that fails."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.types import BooleanType, DateType, DoubleType, IntegerType, LongType, StringType, TimestamptzType

from spotify_assets.lib.tables.schema import ALBUMS, SONGS, TABLES, TYPES
from spotify_assets.lib.warehouse.iceberg import IcebergClient, local_client, window_filter
from spotify_assets.lib.window import Window

W1 = Window(datetime(2026, 11, 20, 8, tzinfo=timezone.utc), datetime(2026, 11, 20, 16, tzinfo=timezone.utc))
W2 = Window(W1.end, W1.end + timedelta(hours=8))
W3 = Window(W2.end, W2.end + timedelta(hours=8))


@pytest.fixture
def lake(tmp_path: Path) -> IcebergClient:
    return local_client(tmp_path / "lake")


def _songs(window: Window, ids: list[str], popularity: int = 50) -> pd.DataFrame:
    frame = SONGS.empty_frame().reindex(range(len(ids)))
    frame["window_start"] = pd.Series([window.start] * len(ids), dtype="datetime64[us, UTC]")
    frame["song_id"] = ids
    frame["name"] = [f"song {i}" for i in ids]
    frame["duration_ms"] = pd.Series([200_000] * len(ids), dtype="Int32")
    frame["popularity"] = pd.Series([popularity] * len(ids), dtype="Int32")
    frame["playlist_appearances"] = pd.Series([1] * len(ids), dtype="Int32")
    frame["explicit"] = pd.Series([False] * len(ids), dtype="boolean")
    return SONGS.conform(frame)


def _ids(lake: IcebergClient, table: str = "songs", window: Window | None = None, snapshot_id: int | None = None) -> dict[str, list[str]]:
    scan = lake.load(table).scan(row_filter=window_filter(window) if window else "True", snapshot_id=snapshot_id)
    found = scan.to_pandas()
    by_window: dict[str, list[str]] = {}
    for start, song in sorted(zip(found["window_start"].astype(str), found["song_id"])):
        by_window.setdefault(start[:16], []).append(song)
    return by_window


def _files(lake: IcebergClient, window: Window | None, table: str = "songs") -> set[str]:
    scan = lake.load(table).scan(row_filter=window_filter(window) if window else "True")
    return {task.file.file_path for task in scan.plan_files()}


def test_a_window_is_replaced_in_one_commit_and_readers_see_old_or_new(lake: IcebergClient) -> None:
    lake.replace("songs", _songs(W1, ["a", "b"]), W1)
    lake.replace("songs", _songs(W2, ["c"]), W2)
    before = lake.load("songs")
    commits_before = len(before.metadata.metadata_log)
    result = lake.replace("songs", _songs(W1, ["d"]), W1)
    after = lake.load("songs")
    assert (result.rows_replaced, result.table_rows) == (2, 2)
    # one metadata file more: one catalog commit, with one snapshot, swapped the window
    assert len(after.metadata.metadata_log) == commits_before + 1
    assert len(after.snapshots()) == len(before.snapshots()) + 1
    assert after.current_snapshot().summary.operation.value == "overwrite"
    # every snapshot that was ever the table's current one holds W1 whole: old or new, never
    # empty nor both
    seen = [_ids(lake, snapshot_id=entry.snapshot_id).get("2026-11-20 08:00", []) for entry in after.history()]
    assert seen[-1] == ["d"] and set(map(tuple, seen)) <= {("a", "b"), ("d",)}
    assert _ids(lake) == {"2026-11-20 08:00": ["d"], "2026-11-20 16:00": ["c"]}


def test_three_runs_of_a_window_equal_one(lake: IcebergClient) -> None:
    lake.replace("songs", _songs(W2, ["x"]), W2)
    lake.replace("songs", _songs(W1, ["a", "b", "c"]), W1)
    once = (_ids(lake), len(_files(lake, W1)), lake.load("songs").current_snapshot().summary["total-records"])
    for _ in range(2):
        result = lake.replace("songs", _songs(W1, ["a", "b", "c"]), W1)
        assert (result.rows_replaced, result.table_rows) == (3, 4)
    assert (_ids(lake), len(_files(lake, W1)), lake.load("songs").current_snapshot().summary["total-records"]) == once


def test_an_empty_window_is_an_empty_window_of_a_typed_table(lake: IcebergClient) -> None:
    lake.replace("albums", ALBUMS.empty_frame(), W1)  # a first write with no rows still makes the table
    assert [f.name for f in lake.load("albums").schema().fields] == ALBUMS.column_names
    lake.replace("songs", _songs(W1, ["a"]), W1)
    lake.replace("songs", _songs(W2, ["b"]), W2)
    result = lake.replace("songs", SONGS.empty_frame(), W1)
    assert (result.rows_replaced, result.table_rows) == (1, 1)
    assert _ids(lake) == {"2026-11-20 16:00": ["b"]}
    assert _files(lake, W1) == set()


def test_replacing_a_window_leaves_the_other_windows_files_as_they_were(lake: IcebergClient) -> None:
    lake.replace("songs", _songs(W1, ["a"]), W1)
    lake.replace("songs", _songs(W2, ["b"]), W2)
    lake.replace("songs", _songs(W3, ["c"]), W3)
    others = _files(lake, W2) | _files(lake, W3)
    lake.replace("songs", _songs(W1, ["d", "e"]), W1)
    assert _files(lake, W2) | _files(lake, W3) == others  # the same data files, not rewritten
    assert _ids(lake) == {"2026-11-20 08:00": ["d", "e"], "2026-11-20 16:00": ["b"], "2026-11-21 00:00": ["c"]}


def test_a_one_window_query_plans_that_windows_files_only(lake: IcebergClient) -> None:
    for window, ids in ((W1, ["a", "b"]), (W2, ["c"]), (W3, ["d"])):
        lake.replace("songs", _songs(window, ids), window)
    spec = lake.load("songs").spec()
    assert [(f.name, str(f.transform)) for f in spec.fields] == [("window_start", "identity")]
    one, every = _files(lake, W2), _files(lake, None)
    assert len(one) == 1 and len(every) == 3 and one < every
    assert all("window_start=2026-11-20T16" in path for path in one)
    assert set(lake.scan("songs", W2).column("song_id").to_pylist()) == {"c"}


_ICEBERG_TYPES = {
    "string": StringType(), "int": IntegerType(), "bigint": LongType(), "bool": BooleanType(),
    "double": DoubleType(), "date": DateType(), "timestamp": TimestamptzType(),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_declared_column_types_hold_in_the_lake_and_back(lake: IcebergClient, table: str) -> None:
    spec = TABLES[table]
    lake.replace(table, spec.empty_frame(), W1)
    fields = lake.load(table).schema().fields
    assert [(f.name, f.field_type, f.required) for f in fields] == [
        (c.name, _ICEBERG_TYPES[c.type], not c.nullable) for c in spec.columns
    ]
    if table == "songs":
        lake.replace("songs", _songs(W1, ["a"]), W1)
        loaded = lake.query("SELECT * FROM analytics.songs")
        from spotify_assets.lib.warehouse.base import conform_loaded

        assert {n: str(t) for n, t in conform_loaded("songs", loaded).dtypes.items()} == {
            c.name: TYPES[c.type] for c in spec.columns
        }


def test_a_frame_that_breaks_the_declaration_is_refused_before_any_file(lake: IcebergClient) -> None:
    lake.replace("songs", _songs(W1, ["a"]), W1)
    bad = _songs(W1, ["b"]).assign(popularity=["not a number"])
    with pytest.raises((ValueError, TypeError, pa.ArrowInvalid)):
        lake.replace("songs", bad, W1)
    assert _ids(lake) == {"2026-11-20 08:00": ["a"]}


def _fail_commits(monkeypatch: pytest.MonkeyPatch, table: str) -> list[str]:
    """Every commit of `table` raises (as a process dying between its data files and the
    catalog's commit would leave it); returns the tables whose commit was attempted."""
    attempted: list[str] = []
    original = SqlCatalog.commit_table

    def commit_table(self, tbl, requirements, updates):  # type: ignore[no-untyped-def]
        name = tbl.name()[-1]
        attempted.append(name)
        if name == table:
            raise CommitFailedException(f"the commit of {name} failed (test)")
        return original(self, tbl, requirements, updates)

    monkeypatch.setattr(SqlCatalog, "commit_table", commit_table)
    return attempted


def _state(lake: IcebergClient, table: str) -> tuple[dict[str, list[str]], int, int | None, str]:
    loaded = lake.load(table)
    snapshot = loaded.current_snapshot()
    return _ids(lake, table), len(loaded.snapshots()), snapshot.snapshot_id if snapshot else None, loaded.metadata_location


def test_a_run_that_dies_before_the_commit_leaves_the_table_as_it_was(lake: IcebergClient, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.replace("songs", _songs(W1, ["a", "b"]), W1)
    lake.replace("songs", _songs(W2, ["c"]), W2)
    before = _state(lake, "songs")
    data_dir = Path(lake.load("songs").location().removeprefix("file://")) / "data"
    files_before = set(data_dir.rglob("*.parquet"))
    _fail_commits(monkeypatch, "songs")
    with pytest.raises(CommitFailedException):
        lake.replace("songs", _songs(W1, ["d", "e", "f"]), W1)
    assert set(data_dir.rglob("*.parquet")) > files_before  # the new data files were written ...
    assert _state(lake, "songs") == before  # ... and nothing refers to them: rows, snapshots, metadata


def test_a_window_of_several_tables_whose_third_commit_fails_is_rolled_back(
    lake: IcebergClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = {"songs": _songs(W1, ["a"]), "albums": ALBUMS.empty_frame(), "artists": TABLES["artists"].empty_frame()}
    lake.replace_window(frames, W1)
    before = {t: _ids(lake, t) if t == "songs" else lake.load(t).scan().to_arrow().num_rows for t in frames}
    attempted = _fail_commits(monkeypatch, "artists")
    with pytest.raises(CommitFailedException):
        lake.replace_window({**frames, "songs": _songs(W1, ["b", "c"])}, W1)
    assert attempted[:3] == ["songs", "albums", "artists"]  # songs and albums had committed ...
    after = {t: _ids(lake, t) if t == "songs" else lake.load(t).scan().to_arrow().num_rows for t in frames}
    assert after == before  # ... and were put back


def test_appending_and_rewriting_keep_their_contract(lake: IcebergClient) -> None:
    from spotify_assets.lib.tables.schema import STREAMS

    lake.rewrite_table("song_artists", TABLES["song_artists"].empty_frame())
    frame = pd.DataFrame(
        {"window_start": [W1.start] * 2, "song_id": ["a", "a"], "artist_position": [0, 1], "artist_id": ["x", "y"]}
    )
    first = lake.append_new({"song_artists": frame})["song_artists"]
    again = lake.append_new({"song_artists": frame})["song_artists"]
    assert (first.rows_added, first.table_rows, again.rows_added, again.table_rows) == (2, 2, 0, 2)
    assert lake.rewrite_table("song_artists", frame.iloc[:1]) == 1
    assert "streams" not in lake.tables() and STREAMS.name == "streams"


def test_parallel_runs_of_two_windows_both_land(lake: IcebergClient, tmp_path: Path) -> None:
    """A backfill's runs write their windows at once: both prepared on the same version, the
    second commit is retried on the first's result (its conflict check is its own window)."""
    other = local_client(tmp_path / "lake")  # another process's client on the same lake
    lake.replace("songs", _songs(W1, ["a"]), W1)
    lake.replace("songs", _songs(W2, ["b"]), W2)
    first = lake._stage("songs", _songs(W1, ["c"]), W1, None)
    second = other._stage("songs", _songs(W2, ["d"]), W2, None)
    lake._commit([first])
    assert other._commit([second])["songs"].table_rows == 2
    assert _ids(lake) == {"2026-11-20 08:00": ["c"], "2026-11-20 16:00": ["d"]}


def test_parallel_runs_of_the_same_window_do_not_both_land(lake: IcebergClient, tmp_path: Path) -> None:
    other = local_client(tmp_path / "lake")
    lake.replace("songs", _songs(W1, ["a"]), W1)
    first = lake._stage("songs", _songs(W1, ["c"]), W1, None)
    second = other._stage("songs", _songs(W1, ["d"]), W1, None)
    lake._commit([first])
    from pyiceberg.exceptions import ValidationException

    with pytest.raises(ValidationException, match="Added data files were found matching the filter"):
        other._commit([second])  # the first run added files to this window meanwhile
    assert _ids(lake) == {"2026-11-20 08:00": ["c"]}  # one run's window, whole; never both
