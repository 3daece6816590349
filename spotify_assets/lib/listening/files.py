"""The export files in the listening folder: which files are listening history, whose they
are (the folder they were dropped in), and their bytes, read one at a time and bounded.

Plain Python over a raw-store backend (`lib/raw/store.py`: local files or S3); the asset in
`defs/listening/assets.py` decides what is new and writes it to the warehouse.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from spotify_assets.lib.listening import exports as listening

LISTENING_PREFIX = "listening/"
MAX_FILE_SETTING = "SPOTIFY_ASSETS_LISTENING_MAX_FILE_MB"


@dataclass(frozen=True)
class ExportFile:
    """One export file to read: `read()` gives its bytes (at most `limit` + 1 of them)."""

    source_file: str  # relative to the listening folder; a zip member is `<zip>!<member>`
    listener: str
    fmt: str
    tag: str  # changes with the content: the storage's tag (a zip member: the zip's, plus its CRC)
    size: int


@dataclass(frozen=True)
class Problem:
    source_file: str
    error: str | None  # None: an export file that is deliberately not ingested (video history)
    refused: bool = False  # over the size limit


def _listener(relative: str) -> str:
    """The folder a file was dropped in names the listener (`default` at the top level)."""
    parts = relative.split("/")
    return parts[0] if len(parts) > 1 else "default"


def _too_large(source_file: str, size: int, limit: int) -> Problem:
    return Problem(
        source_file,
        f"{size / 2**20:.1f} MB is over the {limit // 2**20} MB limit for one listening file "
        f"({MAX_FILE_SETTING}); not read. Raise the setting, or split the file",
        refused=True,
    )


def _read_bounded(handle: IO[bytes], source_file: str, limit: int) -> bytes | Problem:
    data = handle.read(limit + 1)
    return _too_large(source_file, len(data), limit) if len(data) > limit else data


def export_files(backend, limit: int) -> Iterator[tuple[ExportFile, bytes | Problem] | Problem]:  # type: ignore[no-untyped-def]
    """The export files in the listening folder with their bytes, one at a time (zips opened
    through the store's seekable stream, members read one by one); a file over `limit` bytes is
    refused unread. Yields a Problem for an unreadable zip, a refused file, and an export file
    that is not ingested (video history). `known(source_file, tag)` is checked by the caller."""
    for info in backend.list_info(LISTENING_PREFIX):
        relative = info.key[len(LISTENING_PREFIX):]
        name = relative.rsplit("/", 1)[-1]
        if name.lower().endswith(".zip"):
            yield from _zip_members(backend, info, relative, limit)
            continue
        fmt = listening.detect_format(name)
        if fmt is None:
            if listening.skip_reason(name):
                yield Problem(relative, None)
            continue
        item = ExportFile(relative, _listener(relative), fmt, info.tag, info.size)
        if info.size > limit:
            yield item, _too_large(relative, info.size, limit)
            continue
        yield item, _Lazy(backend, info.key, relative, limit)  # type: ignore[misc]


class _Lazy:
    """Bytes read only when the caller wants them (files already ingested are never read)."""

    def __init__(self, backend, key: str, source_file: str, limit: int):  # type: ignore[no-untyped-def]
        self.backend, self.key, self.source_file, self.limit = backend, key, source_file, limit

    def read(self) -> bytes | Problem:
        with self.backend.open(self.key) as handle:
            return _read_bounded(handle, self.source_file, self.limit)


def _zip_members(backend, info, relative: str, limit: int):  # type: ignore[no-untyped-def]
    try:
        with backend.open(info.key) as handle, zipfile.ZipFile(handle) as archive:
            for member in sorted(archive.infolist(), key=lambda m: m.filename):
                base = member.filename.rsplit("/", 1)[-1]
                fmt = listening.detect_format(base)
                source_file = f"{relative}!{member.filename}"
                if fmt is None:
                    if listening.skip_reason(base):
                        yield Problem(source_file, None)
                    continue
                item = ExportFile(source_file, _listener(relative), fmt, f"{info.tag}|{member.CRC:08x}|{member.file_size}", member.file_size)
                if member.file_size > limit:
                    yield item, _too_large(source_file, member.file_size, limit)
                    continue
                yield item, _Member(archive, member, source_file, limit)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        yield Problem(relative, f"not a readable zip archive: {err}")


class _Member:
    def __init__(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo, source_file: str, limit: int):
        self.archive, self.member, self.source_file, self.limit = archive, member, source_file, limit

    def read(self) -> bytes | Problem:
        try:
            with self.archive.open(self.member) as handle:  # the size in the header may lie: bounded
                return _read_bounded(handle, self.source_file, self.limit)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as err:
            # a damaged or encrypted member: this file is named, the others go on
            return Problem(self.source_file, f"unreadable zip member: {err}")
