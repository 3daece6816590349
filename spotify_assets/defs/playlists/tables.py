"""The six normalized tables, built together from one pass over a window's raw snapshots."""

import time

import dagster as dg

from spotify_assets.defs.playlists.raw import RAW_KEY
from spotify_assets.defs.io_managers import table_metadata
from spotify_assets.defs.resources import RawSnapshotStore, Warehouse
from spotify_assets.lib.tables.normalize import normalize_window
from spotify_assets.lib.raw.store import ManifestError
from spotify_assets.lib.tables.schema import PARTITION_COLUMN, TABLES
from spotify_assets.lib.window import Window


def tables_asset(windows: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """`normalized_tables`: the six tables, one partition per window of `windows`."""
    return dg.multi_asset(
        specs=[
            dg.AssetSpec(
                name,
                description=f"{spec.description} Key per window: ({', '.join(spec.key)}).",
                # the warehouse's kind and column types are added at load (definitions.bind)
                metadata={"partition_expr": PARTITION_COLUMN},
                kinds={"pandas"},
                tags={"layer": "table"},
                deps=[RAW_KEY],
                group_name="warehouse",
            ).with_io_manager_key("warehouse_io_manager")  # how the tables load (a notebook, an asset's input)
            for name, spec in TABLES.items()
        ],
        partitions_def=windows,
        can_subset=False,
        name="normalized_tables",
    )(normalized_tables)


def normalized_tables(context: dg.AssetExecutionContext, raw_store: RawSnapshotStore, warehouse: Warehouse):
    """Normalize one window's raw snapshots into songs, artists, albums, song_artists,
    playlists and playlist_tracks, and replace that window in all six tables in ONE
    transaction: a reader, a check or a crash sees the six tables all at the old window or
    all at the new one, never songs of one and albums of the other.

    Documents are read one at a time, each checked against the size and sha256 its manifest
    recorded, and decoded only as far as the tables need. A document that cannot be used is
    reported with its file and the reason (its playlist gets status `unreadable`) and the rest
    of the window is still loaded.
    """
    partition_key = context.partition_key
    store = raw_store.store()
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0:
            context.log.info(f"normalized {done} of {total} documents")

    try:
        window, manifest = normalize_window(store, partition_key, context.partition_time_window.start, progress)
    except ManifestError as err:
        raise dg.Failure(description=f"Window {partition_key}: {err}") from None
    if manifest is None:
        raise dg.Failure(
            description=(
                f"Window {partition_key} has no raw snapshots in {store.uri(store.manifest_key(partition_key))}: "
                "materialize raw_playlist_snapshots for it first."
            )
        )
    counts = window.row_counts()
    context.log.info(
        f"Window {partition_key}: {len(manifest.documents)} documents (version {manifest.version}) -> "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
        + f" in {time.perf_counter() - started:.1f} s"
    )
    for problem in window.problems:
        where = f"playlist {problem['playlist_id']}: " if problem["playlist_id"] else ""
        context.log.warning(f"{where}{problem['message']}")
    tw = context.partition_time_window
    started = time.perf_counter()
    results = warehouse.replace_window(window.frames, Window(tw.start, tw.end))
    context.log.info(
        f"Window {partition_key}: the six tables replaced in one transaction in {time.perf_counter() - started:.1f} s ("
        + ", ".join(f"{name} {results[name].rows_replaced} -> {len(window.frames[name])}" for name in TABLES)
        + " rows)"
    )
    for name in TABLES:
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                **table_metadata(name, window.frames[name], results[name], warehouse.dialect, partitioned=True),
                "dagster/table_name": warehouse.qualified(name),
                "raw_version": manifest.version,
                "playlists_kept": len(manifest.kept),  # read from an earlier version (never worse)
                "problems": len(window.problems),
            },
        )
