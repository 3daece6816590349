"""Raw playlist snapshots at rest: one immutable JSON document per playlist per window.

Layout (under a local directory or an S3 prefix):

    raw/playlist_snapshots/window=2026-11-21T0800Z/v=<version>/<playlist_id>.json
    raw/playlist_snapshots/window=2026-11-21T0800Z/v=<version>/_enrichment.json   (optional)
    raw/playlist_snapshots/_manifests/window=2026-11-21T0800Z.json

A window is written as a new version: every document first, then the window's manifest, whose
single atomic write (a rename locally, one PUT on S3) is the commit. Readers go through the
manifest, so they see the old documents or the new ones, never a mix. A write that fails
before the commit leaves the previous version in force. The documents are written WRITERS at a
time; the manifest only once all of them are.

A re-run never makes a window worse: a playlist that fails on a re-run, or is no longer
configured, keeps the window's previous good document (its manifest entry is carried over,
marked `kept` with the new error). Replaced versions are listed in the manifest (`replaced`)
and deleted only after GRACE, so that a reader still reading one finishes; `collect_garbage`
removes them, leftovers of failed writes and stale temporary files.

A window may also hold one enrichment document (the batch endpoints' answers for its artists
and albums, lib/spotify/enrich.py), written in the same version before the commit and named
by the manifest's `enrichment` entry with its sha256 and size, like a playlist's document. A
re-run that enriched nothing (Development Mode, the API failing) keeps the previous one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from spotify_assets.lib.timestamps import iso_z
from spotify_assets.lib.window import partition_key_of, window_slug

ROOT = "raw/playlist_snapshots"
ENRICHMENT_NAME = "_enrichment.json"  # playlist ids are base62: no playlist's document has this name
MANIFEST_SCHEMA_VERSION = 2  # 2: `replaced` versions, `kept` entries
# A replaced version, a failed write's leftover or a temporary file is deleted only this long
# after it stopped being needed: a reader that started on it has long finished by then.
GRACE = timedelta(hours=1)
# Documents of a window written at once: writes, fsyncs, hashing and S3 PUTs wait on I/O or
# release the GIL, so a thousand documents are not written one after the other.
WRITERS = 4
# The largest stored document read; a bigger one is reported unreadable, never loaded.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


ITEMS_KEY = b',"items":'


class EncodedRows(Sequence):
    """A playlist's rows kept as the JSON array bytes they were stored as, with their count.

    An unchanged playlist's rows are taken from the previous window's document as bytes and
    written into this window's as they are (`encode_document`), so the 1.4 million rows of a
    thousand unchanged playlists are neither parsed nor encoded again. Reading them as rows
    (iterating, indexing) parses them once. `summary`: what `summarize_rows` said of them when
    they were read (carried with them; None: not known)."""

    def __init__(self, json: bytes, count: int, summary: Mapping[str, Any] | None = None):
        self.json = json
        self.count = count
        self.summary = summary
        self._rows: list[dict[str, Any]] | None = None

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            rows = orjson.loads(self.json)
            if not isinstance(rows, list) or len(rows) != self.count:
                raise ValueError(f"stored rows: expected a list of {self.count} rows, found {type(rows).__name__}")
            self._rows = rows
        return self._rows

    def starts_with(self, rows: list[dict[str, Any]]) -> bool:
        """Whether the first rows are `rows`, byte for byte as encoded (False may still be
        equal rows encoded with their keys in another order: compare `rows()` then)."""
        if not rows or len(rows) > self.count:
            return not rows
        encoded = orjson.dumps(rows)
        if len(rows) == self.count:
            return encoded == self.json
        return self.json.startswith(encoded[:-1]) and self.json[len(encoded) - 1 : len(encoded)] == b","

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self.rows()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedRows):
            return self.json == other.json or self.rows() == other.rows()
        if isinstance(other, list):
            return self.rows() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EncodedRows({self.count} rows, {len(self.json)} bytes)"


def encode_document(document: Mapping[str, Any]) -> tuple[bytes, list[int] | None]:
    """A document's JSON bytes, its `items` last, and where the items array is in them
    ([start, end) byte offsets; None without items). Rows kept as EncodedRows are written
    as they were stored."""
    if "items" not in document:
        return orjson.dumps(document), None
    items = document["items"]
    body = items.json if isinstance(items, EncodedRows) else orjson.dumps(items)
    head = orjson.dumps({k: v for k, v in document.items() if k != "items"})
    prefix = head[:-1] + (ITEMS_KEY if len(head) > 2 else ITEMS_KEY[1:])
    return b"".join((prefix, body, b"}")), [len(prefix), len(prefix) + len(body)]


def split_document(data: bytes, items_at: Any) -> tuple[dict[str, Any], bytes] | None:
    """The document `encode_document` wrote, as (everything but the items, parsed; the items
    array's bytes), reading only the small part; None if `items_at` does not fit the bytes
    (an older document, or another layout: parse it whole)."""
    if not (isinstance(items_at, list) and len(items_at) == 2 and all(type(n) is int for n in items_at)):
        return None
    start, end = items_at
    if not (len(ITEMS_KEY) <= start < end == len(data) - 1) or data[end:] != b"}":
        return None
    if data[start - len(ITEMS_KEY) : start] != ITEMS_KEY or data[start : start + 1] != b"[" or data[end - 1 : end] != b"]":
        return None
    head = orjson.loads(data[: start - len(ITEMS_KEY)] + b"}")
    return (head, data[start:end]) if isinstance(head, dict) else None


class ManifestError(ValueError):
    """A window's manifest cannot be read (truncated, corrupt, not a manifest)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing knows of one stored object, without reading it."""

    key: str
    size: int  # bytes
    modified: float  # last write, epoch seconds
    tag: str  # changes whenever the content may have: S3's ETag; locally mtime (ns), size and inode


class Backend(Protocol):
    """Object storage with atomic single-object writes."""

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...
    def get(self, key: str) -> bytes | None: ...  # None: no such object
    def list(self, prefix: str) -> list[str]: ...
    def list_info(self, prefix: str) -> list[ObjectInfo]: ...  # like list(), with sizes and tags
    def open(self, key: str) -> AbstractContextManager[IO[bytes]]: ...  # seekable; FileNotFoundError if absent
    def delete(self, keys: list[str]) -> None: ...
    def uri(self, key: str) -> str: ...
    def remove_stale_temporaries(self, prefix: str, older_than: timedelta) -> int: ...  # S3: none


def write_atomically(path: Path, data: bytes) -> int:
    """Write `data` to `path` so that a reader sees the old file or the whole new one: a
    temporary file in the same directory, flushed to disk, then renamed over the target. A
    failed write leaves the old file as it was and no temporary file behind; the temporary
    files of earlier writes of `path` killed mid-way (older than GRACE) are removed. Returns
    how many of those were."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return remove_stale_temporaries(path.parent, pattern=f".{path.name}.*.tmp", recursive=False)


def remove_stale_temporaries(
    directory: Path, *, pattern: str = ".*.tmp", recursive: bool = True, older_than: timedelta = GRACE
) -> int:
    """Delete write_atomically's temporary files under `directory` not modified for
    `older_than` (a write killed mid-way leaves one; a live write's is seconds old)."""
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in directory.rglob(pattern) if recursive else directory.glob(pattern):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another collector was first
    return removed


class LocalBackend:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        write_atomically(self._path(key), data)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.endswith(".tmp")
        )

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        infos = []
        for key in self.list(prefix):
            try:
                st = self._path(key).stat()
            except FileNotFoundError:
                continue  # deleted since the listing
            infos.append(ObjectInfo(key, st.st_size, st.st_mtime, f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"))
        return infos

    @contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        with self._path(key).open("rb") as handle:
            yield handle

    def delete(self, keys: list[str]) -> None:
        parents = set()
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            parents.add(path.parent)
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            # Tidy emptied version directories; never climb above the store's root.
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def remove_stale_temporaries(self, prefix: str, older_than: timedelta) -> int:
        return remove_stale_temporaries(self._path(prefix), older_than=older_than)


class S3Backend:
    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
        )

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        return response["Body"].read()

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(obj["Key"][cut:] for obj in page.get("Contents", []))
        return sorted(keys)

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        full = self._key(prefix)
        cut = len(self.prefix) + 1 if self.prefix else 0
        infos: list[ObjectInfo] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            infos.extend(
                ObjectInfo(obj["Key"][cut:], int(obj["Size"]), obj["LastModified"].timestamp(), str(obj.get("ETag", "")))
                for obj in page.get("Contents", [])
            )
        return sorted(infos, key=lambda info: info.key)

    @contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        """The object, streamed into a temporary file (spilled to disk past 8 MB): seekable, and
        never held in memory whole."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(self.uri(key)) from None
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            shutil.copyfileobj(response["Body"], spool, 1024 * 1024)
            spool.seek(0)
            yield spool  # type: ignore[misc]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # S3's limit per DeleteObjects call
            chunk = keys[start : start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._key(k)} for k in chunk], "Quiet": True},
            )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def remove_stale_temporaries(self, prefix: str, older_than: timedelta) -> int:
        return 0  # a PUT is atomic: S3 leaves no temporary objects


@dataclass(frozen=True)
class WindowManifest:
    partition_key: str
    version: str
    written_at: str
    # playlist_id -> {"key", "sha256", "bytes", "status", "name", "snapshot_id", "rows_total", "rows_read", "error",
    # "items_at": where the rows are in the document's bytes (see encode_document)}
    # and, for a document carried over from an earlier version, "kept": {"from_version",
    # "reason", "error", "at"} (+ "unusable" when that document itself cannot be read)
    documents: dict[str, dict[str, Any]]
    # versions this window's commits superseded, not yet deleted: {"version", "at"}
    replaced: list[dict[str, str]] = field(default_factory=list)
    # the enrichment document, if any: {"key", "sha256", "bytes", "status", "requests", "asked",
    # "received", "error"} (+ "kept" like a playlist's entry when carried from an earlier version)
    enrichment: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        manifest: dict[str, Any] = {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "partition_key": self.partition_key,
            "version": self.version,
            "written_at": self.written_at,
            "documents": self.documents,
            "replaced": self.replaced,
        }
        if self.enrichment is not None:  # absent, not null: a window without one is written as before
            manifest["enrichment"] = self.enrichment
        return orjson.dumps(manifest, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes, where: str = "the manifest") -> WindowManifest:
        """Raises ManifestError naming `where` if `data` is not a whole manifest."""
        try:
            raw = orjson.loads(data)
            enrichment = raw.get("enrichment")
            manifest = cls(
                str(raw["partition_key"]),
                str(raw["version"]),
                str(raw["written_at"]),
                dict(raw["documents"]),
                list(raw.get("replaced") or []),
                # an entry without a key names no document: as if there were none
                enrichment if isinstance(enrichment, dict) and isinstance(enrichment.get("key"), str) else None,
            )
            for pid, entry in manifest.documents.items():
                if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                    raise ValueError(f"the entry of playlist {pid} has no document key")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
            raise ManifestError(f"{where} is not a readable window manifest ({type(err).__name__}: {err})") from None
        return manifest

    @property
    def kept(self) -> dict[str, dict[str, Any]]:
        """playlist_id -> entry, for the playlists whose document was carried over."""
        return {pid: e for pid, e in self.documents.items() if e.get("kept")}


@dataclass(frozen=True)
class StoredDocument:
    """One committed document of a window, as read: its bytes, or why it cannot be used."""

    playlist_id: str
    key: str
    data: bytes | None
    problem: str | None = None  # set when data is None: the file key and the reason


@dataclass
class GarbageReport:
    """What one `collect_garbage` removed."""

    dead_versions: int = 0  # versions no manifest needs any more, past GRACE
    dead_documents: int = 0  # their files (and failed writes' leftovers)
    stale_temporaries: int = 0  # write_atomically's .tmp files of killed writes

    @property
    def leftovers(self) -> int:
        return self.dead_documents + self.stale_temporaries


class VersionCollected(RuntimeError):
    """A document of the version being read was deleted under the reader (a newer version was
    committed and the old one collected): read the window again."""


class SnapshotStore:
    """Writes and reads raw snapshot windows on a Backend."""

    def __init__(self, backend: Backend, *, grace: timedelta | None = None):
        self.backend = backend
        self.grace = GRACE if grace is None else grace

    @staticmethod
    def manifest_key(partition_key: str) -> str:
        return f"{ROOT}/_manifests/window={window_slug(partition_key)}.json"

    @staticmethod
    def window_prefix(partition_key: str) -> str:
        return f"{ROOT}/window={window_slug(partition_key)}/"

    def write_window(
        self,
        partition_key: str,
        documents: Mapping[str, dict[str, Any]],
        *,
        tag: str = "",
        enrichment: dict[str, Any] | None = None,
    ) -> WindowManifest:
        """Commit a new version of the window's documents (playlist_id -> document) atomically.

        Never worse than before: a playlist whose new document failed (status not "ok"), or
        that is missing from `documents` (no longer configured), keeps its previous entry,
        marked `kept` with the new error. Refuses (ManifestError) if the previous manifest
        cannot be read: what it referenced would otherwise be lost.

        `tag` (a run id, say) is appended to the version, which starts with the write time so
        that versions sort in the order they were written.

        `enrichment` (lib/spotify/enrich.py's document) is written in the same version and
        named by the manifest's `enrichment` entry. One that holds no answer (Development Mode,
        every batch failed) does not replace the window's previous one, which is kept.
        """
        previous = self.read_manifest(partition_key)  # ManifestError: refuse, overwrite nothing
        now = datetime.now(timezone.utc)
        version = now.strftime("%Y%m%dT%H%M%S%fZ") + (f"-{tag}" if tag else "")
        prefix = f"{self.window_prefix(partition_key)}v={version}/"
        old = previous.documents if previous is not None else {}
        entries: dict[str, dict[str, Any]] = {}
        written: list[str] = []
        try:
            pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="raw-write")
            try:
                pending: dict[str, Future[dict[str, Any]]] = {}
                for playlist_id, document in documents.items():
                    status = document.get("status", "ok")
                    before = old.get(playlist_id)
                    if status != "ok" and before is not None and _was_good(before):
                        error = document_facts(document)["error"] or {"kind": status, "message": f"status {status}"}
                        entries[playlist_id] = self._keep(before, "failed on this run", error, now)
                        continue
                    key = f"{prefix}{playlist_id}.json"
                    written.append(key)  # before the put: a put that fails half-way is deleted too
                    entries[playlist_id] = {}  # its place in the manifest; filled when written
                    pending[playlist_id] = pool.submit(self._put_document, key, document)
                for playlist_id, future in pending.items():
                    entries[playlist_id] = future.result()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # nothing still writing when we clean up
            for playlist_id, before in old.items():
                if playlist_id not in entries:
                    entries[playlist_id] = self._keep(before, "no longer configured", None, now)
            enriched = self._enrichment_entry(prefix, enrichment, previous, now, written)
            replaced: list[dict[str, str]] = []
            if previous is not None:
                # Versions collected since are forgotten (collect_garbage never rewrites a manifest).
                present = {_version_of(k) for k in self.backend.list(self.window_prefix(partition_key))}
                replaced = [r for r in previous.replaced if r["version"] in present]
                replaced.append({"version": previous.version, "at": iso_z(now)})
            manifest = WindowManifest(partition_key, version, iso_z(now), entries, replaced, enriched)
            self.backend.put(self.manifest_key(partition_key), manifest.to_json())  # the commit
        except BaseException:
            self.backend.delete(written)  # nothing half-written survives; the old version stands
            raise
        return manifest

    def _put_document(self, key: str, document: Mapping[str, Any]) -> dict[str, Any]:
        """Write one playlist's document; its manifest entry."""
        data, items_at = encode_document(document)
        self.backend.put(key, data)
        return {
            "key": key,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "status": document.get("status", "ok"),
            **document_facts(document),
            **({"items_at": items_at} if items_at is not None else {}),
        }

    def _enrichment_entry(
        self,
        prefix: str,
        document: dict[str, Any] | None,
        previous: WindowManifest | None,
        now: datetime,
        written: list[str],
    ) -> dict[str, Any] | None:
        """The manifest entry of the new enrichment document (written here), or the previous
        entry kept when the new document holds no answer and the previous one does."""
        before = previous.enrichment if previous is not None else None
        if document is None:
            return before  # nothing was attempted: what the window had stays
        facts = enrichment_facts(document)
        held = before is not None and any((before.get("received") or {}).values())
        if not document.get("batches") and held and not (before.get("kept") or {}).get("unusable"):  # type: ignore[union-attr]
            return self._keep(before, "enriched nothing on this run", facts["error"], now)
        data = orjson.dumps(document)
        key = f"{prefix}{ENRICHMENT_NAME}"
        self.backend.put(key, data)
        written.append(key)
        return {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **facts}

    def enrichment_document(self, partition_key: str, manifest: WindowManifest) -> StoredDocument | None:
        """The window's enrichment document, checked against its manifest entry like a
        playlist's (None when the window has none). Raises VersionCollected like `documents`."""
        entry = manifest.enrichment
        return None if entry is None else self._stored(partition_key, manifest, "", entry)

    def _keep(self, before: dict[str, Any], reason: str, error: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        """The previous entry, carried into the new manifest as it was, marked kept."""
        earlier = before.get("kept") or {}
        kept: dict[str, Any] = {
            "from_version": earlier.get("from_version") or _version_of(before["key"]),
            "reason": reason,
            "error": error,
            "at": iso_z(now),
        }
        problem = self._check(before, self.backend.get(before["key"]))
        if problem is not None:
            kept["unusable"] = problem  # carried as found: there is nothing better to keep
        return {**before, "kept": kept}

    def read_manifest(self, partition_key: str) -> WindowManifest | None:
        key = self.manifest_key(partition_key)
        data = self.backend.get(key)
        return WindowManifest.from_json(data, self.backend.uri(key)) if data is not None else None

    def documents(self, partition_key: str, manifest: WindowManifest | None = None) -> Iterator[StoredDocument]:
        """The committed documents of the window, one at a time, each checked against the size
        and sha256 its manifest recorded. A document that cannot be used comes with its
        `problem` (the key and the reason) and no data; the others are unaffected. Raises
        VersionCollected if a document is gone because a newer version replaced this one."""
        manifest = manifest if manifest is not None else self.read_manifest(partition_key)
        if manifest is None:
            return
        for playlist_id, entry in manifest.documents.items():
            yield self._stored(partition_key, manifest, playlist_id, entry)

    def document(self, playlist_id: str, manifest: WindowManifest) -> StoredDocument | None:
        """One committed document of the window `manifest` describes, checked like `documents`
        checks them (size and sha256): None if the manifest has no entry for the playlist; a
        document that cannot be used comes with its `problem` and no data."""
        entry = manifest.documents.get(playlist_id)
        return self._read_entry(playlist_id, entry)[0] if entry is not None else None

    def _stored(self, partition_key: str, manifest: WindowManifest, playlist_id: str, entry: Mapping[str, Any]) -> StoredDocument:
        """One document of `manifest` while it is read as the window's current version: a
        missing file means the version was replaced meanwhile (VersionCollected)."""
        doc, missing = self._read_entry(playlist_id, entry)
        if missing:
            current = self.read_manifest(partition_key)
            if current is None or current.version != manifest.version:
                raise VersionCollected(f"window {partition_key}: version {manifest.version} was replaced while it was read")
        return doc

    def _read_entry(self, playlist_id: str, entry: Mapping[str, Any]) -> tuple[StoredDocument, bool]:
        """The document of a manifest entry, checked; and whether its file is missing."""
        key = entry["key"]
        recorded = entry.get("bytes")
        if isinstance(recorded, int) and recorded > MAX_DOCUMENT_BYTES:  # not even read into memory
            problem = f"{self.backend.uri(key)} is {recorded} bytes, over the {MAX_DOCUMENT_BYTES} bytes a document may have"
            return StoredDocument(playlist_id, key, None, problem), False
        data = self.backend.get(key)
        problem = self._check(entry, data)
        return StoredDocument(playlist_id, key, data if problem is None else None, problem), data is None

    def _check(self, entry: Mapping[str, Any], data: bytes | None) -> str | None:
        where = self.backend.uri(entry["key"])
        if data is None:
            return f"{where} is in the manifest but missing"
        if len(data) > MAX_DOCUMENT_BYTES:
            return f"{where} is {len(data)} bytes, over the {MAX_DOCUMENT_BYTES} bytes a document may have"
        size_differs = entry.get("bytes") is not None and entry["bytes"] != len(data)
        if size_differs or (entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]):
            return (
                f"{where} does not match the size and sha256 the manifest recorded ({len(data)} bytes, "
                f"{entry.get('bytes')} recorded): changed or swapped since it was written"
            )
        return None

    def read_window(self, partition_key: str) -> Iterator[dict[str, Any]]:
        """The window's documents, as committed (empty if the window was never written)."""
        for _playlist_id, data in self.read_window_bytes(partition_key):
            yield orjson.loads(data)

    def read_window_bytes(self, partition_key: str) -> Iterator[tuple[str, bytes]]:
        """(playlist_id, stored JSON bytes) of each committed document, one at a time; a
        document that cannot be used raises ValueError naming its key (see `documents`)."""
        for doc in self.documents(partition_key):
            if doc.data is None:
                raise ValueError(f"window {partition_key}, playlist {doc.playlist_id}: {doc.problem}")
            yield doc.playlist_id, doc.data

    def windows(self) -> list[str]:
        """Partition keys of every committed window, oldest first."""
        names = self.backend.list(f"{ROOT}/_manifests/")
        slugs = [k.rsplit("/", 1)[-1].removeprefix("window=").removesuffix(".json") for k in names]
        return sorted(partition_key_of(s) for s in slugs)

    def collect_garbage(self, now: datetime | None = None) -> GarbageReport:
        """Delete what no manifest needs any more and is past GRACE: versions a commit replaced
        (GRACE after it), leftovers of writes that never committed (GRACE after they started),
        and stale temporary files. Never a document the current manifest references (a kept
        document lives in an older version), nor a version newer than the commit (another
        writer's, in progress). A window whose manifest cannot be read is left alone."""
        now = now or datetime.now(timezone.utc)
        report = GarbageReport(stale_temporaries=self.backend.remove_stale_temporaries(ROOT, self.grace))
        for partition_key in self.windows():
            try:
                manifest = self.read_manifest(partition_key)
            except ManifestError:
                continue
            if manifest is None:
                continue
            needed = {e["key"] for e in manifest.documents.values()}
            if manifest.enrichment is not None:
                needed.add(manifest.enrichment["key"])
            replaced_at = {r["version"]: _parse_iso(r["at"]) for r in manifest.replaced}
            dead: dict[str, list[str]] = {}
            for key in self.backend.list(self.window_prefix(partition_key)):
                v = _version_of(key)
                if key in needed or v >= manifest.version:
                    continue
                since = replaced_at.get(v) or _version_time(v)
                if since is not None and now - since >= self.grace:
                    dead.setdefault(v, []).append(key)
            if dead:
                self.backend.delete([k for keys in dead.values() for k in keys])
                report.dead_documents += sum(len(keys) for keys in dead.values())
                report.dead_versions += len(dead)
        return report

    def uri(self, key: str) -> str:
        return self.backend.uri(key)


def document_facts(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the raw checks need of a document, kept in the manifest so that checking a window
    reads one small file, not every document."""
    extraction = document.get("extraction") or {}
    error = extraction.get("error")
    return {
        "name": (document.get("playlist") or {}).get("name"),
        # the playlist's version: the next window tells from it, without reading this document,
        # whether its rows may be reused (lib/spotify/reuse.py)
        "snapshot_id": (document.get("playlist") or {}).get("snapshot_id"),
        "rows_total": extraction.get("total"),
        "rows_read": extraction.get("rows_read", len(document.get("items") or ())),
        "error": {"kind": error.get("kind"), "message": error.get("message")} if error else None,
    }


def enrichment_facts(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the manifest says of an enrichment document: its outcome and counts."""
    errors = document.get("errors") or []
    dev_mode = document.get("dev_mode")
    error = (
        {"kind": "dev_mode", "message": dev_mode.get("message")} if isinstance(dev_mode, dict)
        else {"kind": errors[0].get("kind"), "message": errors[0].get("message")} if errors
        else None
    )
    return {
        "status": document.get("status"),
        "requests": document.get("requests"),
        "asked": document.get("asked"),
        "received": document.get("received"),
        "error": error,
    }


def _was_good(entry: Mapping[str, Any]) -> bool:
    return entry.get("status", "ok") == "ok" and not (entry.get("kept") or {}).get("unusable")


def _version_of(key: str) -> str:
    return key.split("/v=", 1)[-1].split("/", 1)[0]


def _version_time(version: str) -> datetime | None:
    try:
        return datetime.strptime(version[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _parse_iso(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
