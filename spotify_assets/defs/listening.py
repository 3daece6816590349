"""Listening history: the personal data exports people drop into the listening folder.

The Web API has no listening data; every Spotify user can download theirs (Account privacy ->
Download your data). Drop the files, or the whole zip, into `listening/<listener>/` under the
data directory (locally) or under the bucket's prefix (production). `streams` ingests every
export file it has not ingested before (a file is known by the SHA-256 of its bytes, so
dropping the same file again, under any name, changes nothing) and appends its plays to the
`streams` table in one transaction. A malformed file is reported by name and skipped; the
others are ingested. The `listening_files_sensor` starts `listening_job` when files appear.
"""

import hashlib
import io
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from spotify_assets.defs.io_managers import column_schema, records_markdown
from spotify_assets.defs.resources import RawSnapshotStore, Warehouse, warehouse_kind
from spotify_assets.lib import listening
from spotify_assets.lib.tables import STREAMS

LISTENING_PREFIX = "listening/"
IP_HASH_KEY_ENV = "SPOTIFY_ASSETS_IP_HASH_KEY"
_STORAGE = warehouse_kind()


@dataclass(frozen=True)
class ExportFile:
    source_file: str  # relative to the listening folder; a zip member is `<zip>!<member>`
    listener: str
    fmt: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _listener(relative: str) -> str:
    """The folder a file was dropped in names the listener (`default` at the top level)."""
    parts = relative.split("/")
    return parts[0] if len(parts) > 1 else "default"


def export_files(backend, keys: list[str]) -> Iterator[ExportFile | tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """The export files among `keys` (zips opened); (source_file, error) for an unreadable zip, and
    (source_file, None) for an export file that is not ingested (video history)."""
    for key in keys:
        relative = key[len(LISTENING_PREFIX):]
        name = relative.rsplit("/", 1)[-1]
        if name.lower().endswith(".zip"):
            data = backend.get(key) or b""
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for member in sorted(archive.namelist()):
                        fmt = listening.detect_format(member.rsplit("/", 1)[-1])
                        if fmt is not None:
                            yield ExportFile(f"{relative}!{member}", _listener(relative), fmt, archive.read(member))
            except (zipfile.BadZipFile, OSError) as err:
                yield (relative, f"not a readable zip archive: {err}")
            continue
        fmt = listening.detect_format(name)
        if fmt is not None:
            yield ExportFile(relative, _listener(relative), fmt, backend.get(key) or b"")
        elif listening.skip_reason(name):
            yield (relative, None)  # an export file we know and do not ingest (video history)


@dg.asset(
    group_name="listening",
    kinds={"python", _STORAGE},
    tags={"layer": "table"},
    metadata={"dagster/column_schema": column_schema("streams", _STORAGE)},
    description=STREAMS.description,
    check_specs=[
        dg.AssetCheckSpec(
            "exports_readable",
            asset="streams",
            description="WARN. Every export file in the listening folder could be read; a malformed one is named with what is wrong.",
        )
    ],
)
def streams(context: dg.AssetExecutionContext, raw_store: RawSnapshotStore, warehouse: Warehouse):
    backend = raw_store.backend()
    keys = backend.list(LISTENING_PREFIX)
    known: set[str] = set()
    exists = "streams" in warehouse.tables()
    if exists:
        known = set(warehouse.query(f"SELECT DISTINCT source_sha256 FROM {warehouse.qualified('streams')}")["source_sha256"])
    ingested_at = datetime.now(timezone.utc)
    key = os.environ.get(IP_HASH_KEY_ENV, "").encode() or None
    frames: list[pd.DataFrame] = []
    new: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    already = skipped = 0
    started = time.perf_counter()
    for item in export_files(backend, keys):
        if isinstance(item, tuple):
            source_file, error = item
            if error is None:
                skipped += 1
                context.log.info(f"listening export {source_file} not ingested: {listening.skip_reason(source_file)}")
            else:
                failed.append({"file": source_file, "error": error})
                context.log.error(f"listening export {source_file} skipped: {error}")
            continue
        sha = item.sha256
        if sha in known:
            already += 1
            continue
        known.add(sha)  # the same bytes twice in one drop (a copy, or inside a zip) count once
        try:
            frame = listening.parse_export(
                item.data, fmt=item.fmt, listener=item.listener, source_file=item.source_file,
                ingested_at=ingested_at, ip_hash_key=key,
            )
        except listening.ExportError as err:
            failed.append({"file": item.source_file, "error": str(err)})
            context.log.error(f"listening export {item.source_file} skipped: {err}")
            continue
        frames.append(frame)
        new.append({"file": item.source_file, "listener": item.listener, "format": item.fmt, "plays": len(frame)})
        context.log.info(f"listening export {item.source_file}: {len(frame)} plays ({item.fmt}, listener {item.listener})")
    frame = pd.concat(frames, ignore_index=True) if frames else STREAMS.empty_frame()
    if new or not exists:  # the first run creates the typed table, even with nothing to ingest
        shas = sorted({f for f in frame["source_sha256"]})
        where = f"source_sha256 IN ({', '.join(repr(s) for s in shas)})" if shas else "1 = 0"
        result = warehouse.replace_rows("streams", frame, where)
        table_rows = result.table_rows
    else:
        table_rows = int(warehouse.query(f"SELECT COUNT(*) AS n FROM {warehouse.qualified('streams')}")["n"].iloc[0])
    context.log.info(
        f"streams: {len(new)} new export file(s) with {len(frame)} plays, {already} already ingested, "
        f"{len(failed)} unreadable, in {time.perf_counter() - started:.2f} s; the table has {table_rows} plays"
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": table_rows,
            "dagster/table_name": warehouse.qualified("streams"),
            "plays_added": len(frame),
            "files_ingested": dg.MetadataValue.md(records_markdown(new, width=200)),
            "files_already_ingested": already,
            "files_unreadable": len(failed),
            "files_not_ingested": skipped,
            "folder": backend.uri(LISTENING_PREFIX),
        }
    )
    yield dg.AssetCheckResult(
        check_name="exports_readable",
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(failed)} export file(s) could not be read: " + "; ".join(f"{f['file']}: {f['error']}" for f in failed)[:900]
            if failed
            else "every export file could be read"
        ),
        metadata={"unreadable": len(failed), "files": dg.MetadataValue.md(records_markdown(failed, width=200))},
    )


listening_job = dg.define_asset_job(
    name="listening_job",
    selection=dg.AssetSelection.assets(streams).downstream(),
    description="Ingest new listening-history exports, then rebuild the listening views.",
)


@dg.sensor(job=listening_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def listening_files_sensor(context: dg.SensorEvaluationContext, raw_store: RawSnapshotStore):
    """Runs listening_job when the files in the listening folder change."""
    keys = raw_store.backend().list(LISTENING_PREFIX)
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    if not keys or digest == context.cursor:
        return dg.SkipReason(f"no new files in {LISTENING_PREFIX}")
    context.update_cursor(digest)
    return dg.RunRequest(run_key=f"listening-{digest}")
