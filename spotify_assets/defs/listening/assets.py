"""Listening history: the personal data exports people drop into the listening folder.

The Web API has no listening data; every Spotify user can download theirs (Account privacy ->
Download your data). Drop the files, or the whole zip, into `listening/<listener>/` under the
data directory (locally) or under the bucket's prefix (production).

Plays are unique by play, not by file: Spotify's export always holds the whole history, so a
new export repeats the old plays. Every play has a natural key, `play_id`
(`lib/listening.play_ids`), and each file's plays are appended in ONE transaction with its row
in the `listening_files` registry, inserting only plays whose `play_id` is not in `streams`:
any re-export (cumulative, overlapping, the same file twice, under any name) adds only its new
plays. A file is read again when its storage tag changes (overwritten in place), and the
`listening_files_sensor` watches names and tags, and launches a run only for a file not yet
seen or ingested. A file over SPOTIFY_ASSETS_LISTENING_MAX_FILE_MB
(a zip member by its own size) is refused by name and the others load; files are read one at
a time, so memory holds one file's plays at most. A malformed file is reported by name and
skipped; the others are ingested. A `streams` table from before `play_id` is upgraded in place
on the next run, each distinct play kept once.
"""

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from spotify_assets.defs.io_managers import PREVIEW_ROWS, column_schema, preview_table, records_table
from spotify_assets.defs.resources import (
    DuckDBWarehouse,
    RawSnapshotStore,
    Warehouse,
)
from spotify_assets.lib.listening import exports as listening
from spotify_assets.lib.settings import Settings
from spotify_assets.lib.listening.files import LISTENING_PREFIX, Problem, export_files
from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import LISTENING_FILES, STREAMS

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")



# --- the warehouse side ----------------------------------------------------------------------


# The registry row records how many plays its own transaction added.
_FILL = {"listening_files": ("rows_added", "streams")}


def _columns(warehouse: Warehouse, table: str) -> set[str]:
    return {str(c).lower() for c in warehouse.columns(table)["column_name"]}


def upgrade_streams(warehouse: Warehouse, log) -> tuple[int, int] | None:  # type: ignore[no-untyped-def]
    """A `streams` table from before `play_id`: give every row its play's id, keep each play
    once (the first ingested), in one transaction. (rows before, rows after), or None."""
    columns = _columns(warehouse, "streams")
    if not columns or "play_id" in columns:
        return None
    old = warehouse.query(f"SELECT * FROM {warehouse.qualified('streams')}")
    old = STREAMS.conform(old.drop(columns=[c for c in old.columns if c not in STREAMS.column_names]), partial=True)
    old["play_id"] = listening.play_ids(old)
    kept = old.sort_values(["ingested_at", "source_sha256", "source_row"], kind="stable").drop_duplicates("play_id")
    after = warehouse.rewrite_table("streams", kept.sort_index()[STREAMS.column_names])
    log.info(f"streams upgraded to one row per play: {len(old)} rows -> {after} plays ({len(old) - after} duplicates removed)")
    return len(old), after


@dg.asset(
    group_name="listening",
    kinds={"python"},  # with the warehouse's kind and column types, added at load (definitions.bind)
    tags={"layer": "table"},
    description=STREAMS.description,
    check_specs=[
        dg.AssetCheckSpec(
            "exports_readable",
            asset="streams",
            description="WARN. Every export file in the listening folder could be read; a malformed one, or one over the size limit, is named with what is wrong.",
        )
    ],
)
def streams(
    context: dg.AssetExecutionContext, raw_store: RawSnapshotStore, warehouse: Warehouse, settings: dg.ResourceParam[Settings]
):
    backend = raw_store.backend()
    limit = settings.listening.max_file_mb * 2**20
    upgraded = upgrade_streams(warehouse, context.log) if "streams" in warehouse.tables() else None
    known: set[tuple[str, str]] = set()
    if "listening_files" in warehouse.tables():
        registry = warehouse.query(f"SELECT source_file, tag FROM {warehouse.qualified('listening_files')}")
        known = set(zip(registry["source_file"], registry["tag"]))
    key = settings.listening.ip_hash_key.encode() if settings.listening.ip_hash_key else None
    new: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    already = skipped = refused = rows_read = rows_added = 0
    table_rows: int | None = None
    started = time.perf_counter()
    for item in export_files(backend, limit):
        if isinstance(item, Problem):
            if item.error is None:
                skipped += 1
                context.log.info(f"listening export {item.source_file} not ingested: {listening.skip_reason(item.source_file)}")
            else:
                failed.append({"file": item.source_file, "error": item.error})
                context.log.error(f"listening export {item.source_file} skipped: {item.error}")
            continue
        export, body = item
        if (export.source_file, export.tag) in known:
            already += 1
            continue
        data = body if isinstance(body, Problem) else body.read()
        if isinstance(data, Problem):
            refused += data.refused
            failed.append({"file": data.source_file, "error": data.error})
            context.log.error(f"listening export {data.source_file} {'refused' if data.refused else 'skipped'}: {data.error}")
            continue
        ingested_at = datetime.now(timezone.utc)
        try:
            frame = listening.parse_export(
                data, fmt=export.fmt, listener=export.listener, source_file=export.source_file,
                ingested_at=ingested_at, ip_hash_key=key,
            )
        except listening.ExportError as err:
            failed.append({"file": export.source_file, "error": str(err)})
            context.log.error(f"listening export {export.source_file} skipped: {err}")
            continue
        sha = hashlib.sha256(data).hexdigest()
        del data
        # The file's new plays and its registry row in ONE transaction: a crash leaves the file
        # wholly recorded or not at all, and the next run reads it again.
        registry_row = pd.DataFrame([{
            "source_file": export.source_file, "tag": export.tag, "sha256": sha, "size_bytes": export.size,
            "rows_read": len(frame), "rows_added": 0, "ingested_at": ingested_at,
        }])
        added = warehouse.append_new({"streams": frame, "listening_files": registry_row}, _FILL)["streams"]
        table_rows = added.table_rows
        known.add((export.source_file, export.tag))
        rows_read += len(frame)
        rows_added += added.rows_added
        new.append({"file": export.source_file, "listener": export.listener, "format": export.fmt,
                    "plays": len(frame), "new plays": added.rows_added})
        context.log.info(
            f"listening export {export.source_file}: {len(frame)} plays, {added.rows_added} new "
            f"({export.fmt}, listener {export.listener})"
        )
    if table_rows is None:  # nothing read: make sure both tables exist (typed), count the plays
        table_rows = warehouse.append_new({"streams": STREAMS.empty_frame(), "listening_files": LISTENING_FILES.empty_frame()}, _FILL)["streams"].table_rows
    context.log.info(
        f"streams: {len(new)} export file(s) read with {rows_read} plays, {rows_added} new and "
        f"{rows_read - rows_added} already in the table; {already} file(s) unchanged since read, "
        f"{refused} refused as too large, {len(failed) - refused} unreadable, in "
        f"{time.perf_counter() - started:.1f} s; the table has {table_rows} plays"
    )
    metadata: dict[str, object] = {
        "dagster/row_count": table_rows,
        "dagster/table_name": warehouse.qualified("streams"),
        "plays_added": rows_added,
        "rows_read": rows_read,
        "duplicates_skipped": rows_read - rows_added,
        "files_read": len(new),
        "files_ingested": records_table(new, ["file", "listener", "format", "plays", "new plays"]),
        "files_already_ingested": already,
        "files_unreadable": len(failed) - refused,
        "files_refused": refused,
        "files_not_ingested": skipped,
        "max_file_mb": limit // 2**20,
        "folder": backend.uri(LISTENING_PREFIX),
        "preview": preview_table(
            warehouse.query(f"SELECT * FROM {warehouse.qualified('streams')} ORDER BY played_at DESC, play_id LIMIT {PREVIEW_ROWS}"),
            schema=column_schema("streams", warehouse.dialect),
        ),
    }
    if upgraded is not None:
        metadata["upgraded_rows_before"], metadata["upgraded_rows_after"] = upgraded
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="exports_readable",
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(failed)} export file(s) could not be read: " + "; ".join(f"{f['file']}: {f['error']}" for f in failed)[:900]
            if failed
            else "every export file could be read"
        ),
        metadata={"unreadable": len(failed), "files": records_table(failed, ["file", "error"])},
    )


listening_job = dg.define_asset_job(
    name="listening_job",
    # `genres` reads streams too, but also the playlist tables, which a listening-only warehouse
    # lacks: the 8-hour job builds it, and as a view it reads the newest plays when queried
    selection=dg.AssetSelection.assets(streams).downstream() - dg.AssetSelection.assets("genres"),
    description="Ingest new listening-history exports, then rebuild the listening views.",
)


# The sensor's cursor: the identities (key and storage tag, hashed) of the export files present at
# its last tick. Files that left the folder leave the cursor, so it grows with the folder only;
# past the cap the rest count as new at every tick, and their run key repeats, so Dagster
# launches no second run for them.
CURSOR_VERSION = 2
MAX_SEEN = 5000  # about 100 kB of cursor
SENSOR_LOCK_WAIT_S = 5.0  # a run holding the DuckDB file: skip this tick rather than wait long


def _identity(key: str, tag: str) -> str:
    return hashlib.sha256(f"{key}\t{tag}".encode()).hexdigest()[:16]


def _is_export(key: str) -> bool:
    """Files a run would read: exports and zips (video history and other files are not)."""
    name = key.rsplit("/", 1)[-1]
    return name.lower().endswith(".zip") or listening.detect_format(name) is not None


def _seen_from_cursor(cursor: str | None) -> set[str] | None:
    """The identities in a cursor this sensor wrote; None without one, or for one it cannot
    read (an older format, or edited by hand): the warehouse is asked instead."""
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
        if state.get("version") == CURSOR_VERSION and isinstance(state.get("seen"), list):
            return {str(i) for i in state["seen"]}
    except (ValueError, AttributeError):
        pass
    return None


def _ingested(warehouse: Warehouse) -> set[tuple[str, str]]:
    """(source_file, tag) of every file in the `listening_files` registry, read only: a missing
    DuckDB file is not created, and a run holding it is waited for SENSOR_LOCK_WAIT_S at most."""
    if isinstance(warehouse, DuckDBWarehouse):
        if not Path(warehouse.database).exists():
            return set()
        warehouse = DuckDBWarehouse(
            database=warehouse.database, schema_name=warehouse.schema_name, lock_timeout_seconds=SENSOR_LOCK_WAIT_S
        )
    listing, schema = warehouse.catalog
    with warehouse.reader() as read:
        names = read(f"SELECT table_name FROM {listing} WHERE table_schema = '{schema}'")["table_name"]
        if "listening_files" not in {str(n).lower() for n in names}:
            return set()
        registry = read(f"SELECT source_file, tag FROM {warehouse.qualified('listening_files')}")
    return set(zip(registry["source_file"].astype(str), registry["tag"].astype(str)))


def _already_ingested(relative: str, tag: str, ingested: set[tuple[str, str]]) -> bool:
    if not relative.lower().endswith(".zip"):
        return (relative, tag) in ingested
    # a zip's members are registered as `<zip>!<member>` with the tag `<zip tag>|<crc>|<size>`
    return any(f.startswith(f"{relative}!") and t.startswith(f"{tag}|") for f, t in ingested)


@dg.sensor(job=listening_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def listening_files_sensor(context: dg.SensorEvaluationContext, raw_store: RawSnapshotStore, warehouse: Warehouse):
    """Runs listening_job when an export file in the listening folder is new: a new name, or
    new content (the storage's tag changes when a file is overwritten in place). Without a
    cursor (the first tick on a new instance) the warehouse's `listening_files` registry says
    which files are already ingested, so an up-to-date instance launches no run."""
    present = {
        _identity(i.key, i.tag): (i.key[len(LISTENING_PREFIX):], i.tag)
        for i in raw_store.backend().list_info(LISTENING_PREFIX)
        if _is_export(i.key)
    }
    seen = _seen_from_cursor(context.cursor)
    if seen is None:
        try:
            ingested = _ingested(warehouse)
        except Exception as err:  # the cursor stays unset: the next tick asks again
            return dg.SkipReason(
                f"could not read which export files are already ingested from the warehouse "
                f"({type(err).__name__}: {str(err)[:300]}); asking again at the next tick"
            )
        seen = {ident for ident, (relative, tag) in present.items() if _already_ingested(relative, tag, ingested)}
    new = sorted(present[i][0] for i in present if i not in seen)
    context.update_cursor(json.dumps({"version": CURSOR_VERSION, "seen": sorted(present)[:MAX_SEEN]}))
    if not new:
        return dg.SkipReason(f"no new export file in {LISTENING_PREFIX}: {len(present)} file(s), all seen or ingested")
    context.log.info(f"{len(new)} new or changed export file(s): {', '.join(new[:20])}")
    digest = hashlib.sha256("\n".join(sorted(i for i in present if i not in seen)).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=f"listening-{digest}")
