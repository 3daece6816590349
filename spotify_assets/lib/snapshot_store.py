"""Raw playlist snapshots at rest: one immutable JSON document per playlist per window.

Layout (under a local directory or an S3 prefix):

    raw/playlist_snapshots/window=2026-11-21T0800Z/v=<version>/<playlist_id>.json
    raw/playlist_snapshots/_manifests/window=2026-11-21T0800Z.json

A window is written as a new version: every document first, then the window's manifest, whose
single atomic write (a rename locally, one PUT on S3) is the commit. Readers go through the
manifest, so they see the old documents or the new ones, never a mix; then the replaced
version is deleted. A write that fails before the commit leaves the previous version in force.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from spotify_assets.lib.timestamps import iso_z

ROOT = "raw/playlist_snapshots"
MANIFEST_SCHEMA_VERSION = 1


def window_slug(partition_key: str) -> str:
    """'2026-11-21-08:00' -> '2026-11-21T0800Z' (no colons: safe in paths, S3 keys and Hive)."""
    try:
        start = datetime.strptime(partition_key, "%Y-%m-%d-%H:%M")
    except ValueError:
        raise ValueError(f"{partition_key!r} is not a window key like '2026-11-21-08:00'") from None
    return start.strftime("%Y-%m-%dT%H%MZ")


def partition_key_of(slug: str) -> str:
    return datetime.strptime(slug, "%Y-%m-%dT%H%MZ").strftime("%Y-%m-%d-%H:%M")


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


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the whole new one: a
    temporary file in the same directory, flushed to disk, then renamed over the target. A
    failed write leaves the old file as it was and no temporary file behind."""
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


@dataclass(frozen=True)
class WindowManifest:
    partition_key: str
    version: str
    written_at: str
    # playlist_id -> {"key", "sha256", "bytes", "status", "name", "rows_total", "rows_read", "error"}
    documents: dict[str, dict[str, Any]]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "schema_version": MANIFEST_SCHEMA_VERSION,
                "partition_key": self.partition_key,
                "version": self.version,
                "written_at": self.written_at,
                "documents": self.documents,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes) -> WindowManifest:
        raw = orjson.loads(data)
        return cls(raw["partition_key"], raw["version"], raw["written_at"], raw["documents"])


class SnapshotStore:
    """Writes and reads raw snapshot windows on a Backend."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @staticmethod
    def manifest_key(partition_key: str) -> str:
        return f"{ROOT}/_manifests/window={window_slug(partition_key)}.json"

    @staticmethod
    def window_prefix(partition_key: str) -> str:
        return f"{ROOT}/window={window_slug(partition_key)}/"

    def write_window(
        self, partition_key: str, documents: Mapping[str, dict[str, Any]], *, tag: str = ""
    ) -> WindowManifest:
        """Replace the window's documents (playlist_id -> document) atomically.

        `tag` (a run id, say) is appended to the version, which starts with the write time so
        that versions sort in the order they were written.
        """
        now = datetime.now(timezone.utc)
        version = now.strftime("%Y%m%dT%H%M%S%fZ") + (f"-{tag}" if tag else "")
        prefix = f"{self.window_prefix(partition_key)}v={version}/"
        entries: dict[str, dict[str, Any]] = {}
        written: list[str] = []
        try:
            for playlist_id, document in documents.items():
                data = orjson.dumps(document)
                key = f"{prefix}{playlist_id}.json"
                self.backend.put(key, data)
                written.append(key)
                entries[playlist_id] = {
                    "key": key,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "status": document.get("status", "ok"),
                    **document_facts(document),
                }
            previous = self.read_manifest(partition_key)
            manifest = WindowManifest(partition_key, version, iso_z(now), entries)
            self.backend.put(self.manifest_key(partition_key), manifest.to_json())  # the commit
        except BaseException:
            self.backend.delete(written)  # nothing half-written survives; the old version stands
            raise
        if previous is not None:
            # What this commit replaced, and leftovers of writes that failed before it. A version
            # newer than the previous commit may be another writer's, not yet committed: keep it.
            stale = [
                key
                for key in self.backend.list(self.window_prefix(partition_key))
                if not key.startswith(prefix) and _version_of(key) <= previous.version
            ]
            self.backend.delete(stale)
        return manifest

    def read_manifest(self, partition_key: str) -> WindowManifest | None:
        data = self.backend.get(self.manifest_key(partition_key))
        return WindowManifest.from_json(data) if data is not None else None

    def read_window(self, partition_key: str) -> Iterator[dict[str, Any]]:
        """The window's documents, as committed (empty if the window was never written)."""
        for _playlist_id, data in self.read_window_bytes(partition_key):
            yield orjson.loads(data)

    def read_window_bytes(self, partition_key: str) -> Iterator[tuple[str, bytes]]:
        """(playlist_id, stored JSON bytes) of each committed document, one at a time."""
        manifest = self.read_manifest(partition_key)
        if manifest is None:
            return
        for playlist_id, entry in manifest.documents.items():
            data = self.backend.get(entry["key"])
            if data is None:
                raise FileNotFoundError(
                    f"window {partition_key}: {self.backend.uri(entry['key'])} is in the manifest but missing"
                )
            yield playlist_id, data

    def windows(self) -> list[str]:
        """Partition keys of every committed window, oldest first."""
        names = self.backend.list(f"{ROOT}/_manifests/")
        slugs = [k.rsplit("/", 1)[-1].removeprefix("window=").removesuffix(".json") for k in names]
        return sorted(partition_key_of(s) for s in slugs)

    def uri(self, key: str) -> str:
        return self.backend.uri(key)


def document_facts(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the raw checks need of a document, kept in the manifest so that checking a window
    reads one small file, not every document."""
    extraction = document.get("extraction") or {}
    error = extraction.get("error")
    return {
        "name": (document.get("playlist") or {}).get("name"),
        "rows_total": extraction.get("total"),
        "rows_read": extraction.get("rows_read", len(document.get("items") or ())),
        "error": {"kind": error.get("kind"), "message": error.get("message")} if error else None,
    }


def _version_of(key: str) -> str:
    return key.split("/v=", 1)[-1].split("/", 1)[0]
