"""The six normalized tables, built together from one pass over a window's raw snapshots."""

import time

import dagster as dg

from spotify_assets.defs.ingestion import raw_playlist_snapshots
from spotify_assets.defs.io_managers import column_schema
from spotify_assets.defs.partitions import snapshot_windows
from spotify_assets.defs.resources import RawSnapshotStore, warehouse_kind
from spotify_assets.lib.normalize import Normalizer
from spotify_assets.lib.tables import PARTITION_COLUMN, TABLES

_STORAGE = warehouse_kind()


@dg.multi_asset(
    outs={
        name: dg.AssetOut(
            io_manager_key="warehouse_io_manager",
            description=f"{spec.description} Key per window: ({', '.join(spec.key)}).",
            metadata={
                "partition_expr": PARTITION_COLUMN,
                "dagster/column_schema": column_schema(name, _STORAGE),
            },
            kinds={"pandas", _STORAGE},
            tags={"layer": "table"},
        )
        for name, spec in TABLES.items()
    },
    deps=[raw_playlist_snapshots],
    partitions_def=snapshot_windows,
    group_name="warehouse",
    can_subset=False,
    name="normalized_tables",
)
def normalized_tables(context: dg.AssetExecutionContext, raw_store: RawSnapshotStore):
    """Normalize one window's raw snapshots into songs, artists, albums, song_artists,
    playlists and playlist_tracks, and replace that window in each table.

    Documents are read one at a time and decoded only as far as the tables need. A document
    that cannot be decoded is reported (its playlist gets status `unreadable`) and the rest
    of the window is still loaded.
    """
    partition_key = context.partition_key
    store = raw_store.store()
    manifest = store.read_manifest(partition_key)
    if manifest is None:
        raise dg.Failure(
            description=(
                f"Window {partition_key} has no raw snapshots in {store.uri(store.manifest_key(partition_key))}: "
                "materialize raw_playlist_snapshots for it first."
            )
        )
    started = time.perf_counter()
    normalizer = Normalizer(context.partition_time_window.start)
    for i, (playlist_id, data) in enumerate(store.read_window_bytes(partition_key), start=1):
        normalizer.add(data, playlist_id=playlist_id)
        if i % 100 == 0:
            context.log.info(f"normalized {i} of {len(manifest.documents)} documents")
    window = normalizer.finish()
    counts = window.row_counts()
    context.log.info(
        f"Window {partition_key}: {len(manifest.documents)} documents (version {manifest.version}) -> "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + f" in {time.perf_counter() - started:.2f} s"
    )
    for problem in window.problems:
        where = f"playlist {problem['playlist_id']}: " if problem["playlist_id"] else ""
        context.log.warning(f"{where}{problem['message']}")
    for name in TABLES:
        yield dg.Output(
            window.frames[name],
            output_name=name,
            metadata={
                "raw_version": manifest.version,
                "problems": len(window.problems),
            },
        )
