"""Rows of unchanged playlists, taken from the previous window instead of read again.

Spotify's rate limit is per app, and most playlists do not change between two 8-hour windows.
Every playlist object carries `snapshot_id`, which changes whenever its rows are added, removed
or moved; the metadata request (which also returns the first page of rows) tells it. When it
equals the one of the PREVIOUS window's complete document of that playlist, the extractor
(extract.py) keeps this window's first page and takes the other rows from that document: one
request instead of one per page.

Refused (a full read, its reason recorded in the document's `extraction.reuse`) when:

- the policy says so (`SPOTIFY_ASSETS_REUSE_ROWS`): `never`; `without_popularity` (the
  default) when the previous rows carry popularity, a value that belongs to the window it was
  read in; `always` reuses them anyway;
- the chain of reuses since the last full read would reach `SPOTIFY_ASSETS_FULL_REREAD_WINDOWS`
  windows: `snapshot_id` is not a version of the rows' contents (a track becoming unavailable
  does not change it), so every playlist is read fully at that bounded interval;
- there is no previous window, no document of the playlist in it, or that document failed, was
  kept from a failure, is missing, corrupt or does not match the sha256 its manifest recorded;
- it was read with another `fields` filter, market or source, or its rows do not match what
  this window's first page and total say.

A reused document holds every row, like a full read, and is written, hashed and checked like
any other: the next window can reuse it in turn, up to the bound. The rows are carried as the
bytes they were stored as (`EncodedRows`: the manifest says where they are in the document), so
an unchanged playlist costs a read and a hash of its previous document, not a parse and an
encode of every row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from spotify_assets.lib.raw.store import EncodedRows, ManifestError, SnapshotStore, WindowManifest, split_document

ROWS_POLICIES = ("without_popularity", "always", "never")
FULL_REREAD_WINDOWS = 9  # every 3 days


@dataclass(frozen=True)
class ReusePolicy:
    rows: str = "without_popularity"  # SPOTIFY_ASSETS_REUSE_ROWS
    full_reread_windows: int = FULL_REREAD_WINDOWS  # SPOTIFY_ASSETS_FULL_REREAD_WINDOWS

    def __post_init__(self) -> None:
        if self.rows not in ROWS_POLICIES:
            raise ValueError(f"rows policy {self.rows!r} is not one of: {', '.join(ROWS_POLICIES)}")
        if self.full_reread_windows < 1:
            raise ValueError(f"full_reread_windows must be at least 1, not {self.full_reread_windows}")

    @property
    def enabled(self) -> bool:
        return self.rows != "never" and self.full_reread_windows > 1


@dataclass(frozen=True)
class Refusal:
    """Why a playlist was read fully: `why` is one of WHY, `detail` says it for a person."""

    why: str
    detail: str

    def record(self) -> dict[str, Any]:
        return {"reused": False, "why": self.why, "detail": self.detail}


WHY = {
    "disabled": "reuse is switched off (SPOTIFY_ASSETS_REUSE_ROWS=never or SPOTIFY_ASSETS_FULL_REREAD_WINDOWS=1)",
    "no_previous": "the previous window has no document of this playlist",
    "previous_failed": "the previous window's document is not a complete read (failed, or kept from a failure)",
    "previous_unreadable": "the previous window's document (or manifest) cannot be used",
    "changed": "snapshot_id changed since the previous window",
    "popularity": "the previous rows carry popularity, which is re-read every window (SPOTIFY_ASSETS_REUSE_ROWS)",
    "full_reread_due": "reused for SPOTIFY_ASSETS_FULL_REREAD_WINDOWS windows in a row: read fully",
    "request_changed": "the previous rows were read with another fields filter, market or source",
    "rows_differ": "this window's first page or total does not match the previous rows",
    "one_page": "every row came with the metadata request: nothing to save",
    "no_contents": "the metadata request returned no rows (contents may not be readable)",
}


@dataclass(frozen=True)
class PreviousRows:
    """The rows of a playlist's previous-window document, cleared for reuse by the policy."""

    window: str  # the previous window's partition key
    version: str  # the version of that window the document belongs to
    sha256: str  # of the document, as its manifest recorded and as read
    items: list[dict[str, Any]] | EncodedRows
    chain: int  # windows in a row that document's rows had been reused (0: it was a full read)
    full_read_window: str  # the window of the last full read those rows come from


def rows_request(*, fields: str, market: str | None, additional_types: str, source: str) -> dict[str, Any]:
    """What decides which rows and fields a read returns: reused rows must have been read alike."""
    return {
        "fields_sha256": hashlib.sha256(fields.encode()).hexdigest()[:16],
        "market": market,
        "additional_types": additional_types,
        "source": source,
    }


def has_popularity(items: list[dict[str, Any]]) -> bool:
    for row in items:
        payload = row.get("item") or row.get("track")
        if isinstance(payload, dict) and payload.get("popularity") is not None:
            return True
    return False


def _without_popularity(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_popularity(v) for k, v in value.items() if k != "popularity"}
    if isinstance(value, list):
        return [_without_popularity(v) for v in value]
    return value


def same_rows(new: list[dict[str, Any]], old: list[dict[str, Any]], *, ignore_popularity: bool) -> bool:
    """Whether this window's rows are the previous window's (popularity aside, if asked)."""
    if ignore_popularity:
        return _without_popularity(new) == _without_popularity(old)
    return new == old


@dataclass
class PreviousWindow:
    """The previous window's documents, each read only when its playlist's snapshot_id is
    unchanged (the manifest records it), checked against its sha256 as any reader does."""

    store: SnapshotStore | None
    partition_key: str | None
    policy: ReusePolicy
    manifest: WindowManifest | None = None
    problem: str | None = None  # the previous manifest cannot be read
    warn: Callable[[str], None] = field(default=lambda _msg: None)

    @classmethod
    def open(
        cls,
        store: SnapshotStore,
        partition_key: str | None,
        policy: ReusePolicy,
        warn: Callable[[str], None] | None = None,
    ) -> PreviousWindow:
        """`partition_key`: the previous window (None: this is the first window)."""
        found = cls(store, partition_key, policy, warn=warn or (lambda _msg: None))
        if policy.enabled and partition_key is not None:
            try:
                found.manifest = store.read_manifest(partition_key)
            except ManifestError as err:
                found.problem = str(err)
                found.warn(f"rows are not reused this window: {err}")
        return found

    def rows_for(self, playlist_id: str, snapshot_id: Any, request: Mapping[str, Any]) -> PreviousRows | Refusal:
        """The previous rows of `playlist_id`, if its `snapshot_id` is unchanged and the policy
        allows; else why not. Reads at most one document."""
        if not self.policy.enabled:
            return Refusal("disabled", WHY["disabled"])
        if self.problem is not None:
            return Refusal("previous_unreadable", self.problem)
        entry = self.manifest.documents.get(playlist_id) if self.manifest is not None else None
        if self.manifest is None or entry is None or self.store is None:
            where = f"window {self.partition_key}" if self.partition_key else "no window (this is the first)"
            return Refusal("no_previous", f"{WHY['no_previous']}: {where}")
        if entry.get("status", "ok") != "ok" or entry.get("kept"):
            return Refusal("previous_failed", f"{WHY['previous_failed']}: window {self.partition_key}")
        if not isinstance(snapshot_id, str) or not snapshot_id:
            return Refusal("changed", "the playlist has no snapshot_id: read fully")
        if "snapshot_id" in entry and entry["snapshot_id"] != snapshot_id:
            return Refusal("changed", f"snapshot_id {entry['snapshot_id']!r} in window {self.partition_key}, now {snapshot_id!r}")
        stored = self.store.document(playlist_id, self.manifest)
        if stored is None or stored.data is None:
            problem = stored.problem if stored is not None else "no entry"
            self.warn(f"playlist {playlist_id}: the previous window's document cannot be reused, read fully: {problem}")
            return Refusal("previous_unreadable", str(problem))
        try:
            document, items = _parse(stored.data, entry)
            extraction = document["extraction"]
            previous_snapshot = (document.get("playlist") or {}).get("snapshot_id")
            if not isinstance(items, (list, EncodedRows)) or not isinstance(extraction, dict):
                raise TypeError("items or extraction of the wrong type")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, RecursionError) as err:
            self.warn(f"playlist {playlist_id}: the previous window's document cannot be reused, read fully: {err}")
            return Refusal("previous_unreadable", f"{stored.key}: {type(err).__name__}: {err}")
        if document.get("status") != "ok" or extraction.get("error") is not None or document.get("playlist_id") != playlist_id:
            return Refusal("previous_failed", f"{WHY['previous_failed']}: {stored.key}")
        if previous_snapshot != snapshot_id:
            return Refusal("changed", f"snapshot_id {previous_snapshot!r} in window {self.partition_key}, now {snapshot_id!r}")
        if extraction.get("rows_request") != dict(request):
            return Refusal("request_changed", WHY["request_changed"])
        if self.policy.rows == "without_popularity" and _has_popularity(items, extraction):
            return Refusal("popularity", WHY["popularity"])
        before = extraction.get("reuse") or {}
        if before.get("reused"):
            chain = int(before.get("windows_since_full_read") or 0)
            full_read_window = str(before.get("full_read_window") or "")
        else:
            chain, full_read_window = 0, self.manifest.partition_key
        if chain + 1 >= self.policy.full_reread_windows:
            return Refusal(
                "full_reread_due",
                f"rows last read fully in window {full_read_window}, {chain + 1} windows ago: "
                f"SPOTIFY_ASSETS_FULL_REREAD_WINDOWS={self.policy.full_reread_windows}",
            )
        return PreviousRows(
            window=self.manifest.partition_key,
            version=self.manifest.version,
            sha256=str(entry.get("sha256")),
            items=items,
            chain=chain,
            full_read_window=full_read_window,
        )


SUMMARY_KEYS = ("rows", "payload_key", "skipped", "repeated_track_rows", "popularity_present")


def _parse(data: bytes, entry: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | EncodedRows]:
    """A previous document: everything but its rows parsed, and its rows kept as their bytes
    when the manifest says where they are (else the whole document parsed, as before)."""
    split = split_document(data, entry.get("items_at"))
    if split is None:
        document = orjson.loads(data)
        if not isinstance(document, dict):
            raise TypeError("the document is not an object")
        return document, document["items"]
    head, items = split
    extraction = head.get("extraction")
    count = extraction.get("rows_read") if isinstance(extraction, dict) else None
    if type(count) is not int or count < 0:
        raise TypeError(f"extraction.rows_read is {count!r}, not a count")
    summary = {k: extraction[k] for k in SUMMARY_KEYS} if all(k in extraction for k in SUMMARY_KEYS) else None
    return head, EncodedRows(items, count, summary)


def _has_popularity(items: list[dict[str, Any]] | EncodedRows, extraction: Mapping[str, Any]) -> bool:
    if isinstance(items, EncodedRows) and isinstance(extraction.get("popularity_present"), bool):
        return extraction["popularity_present"]
    return has_popularity(list(items))
