"""Case 4 of the fault list: one bad document must not block its window.

Before, non-UTF-8 bytes (UnicodeDecodeError) or JSON nested 200,000 deep (RecursionError)
failed the whole window naming neither the playlist nor the file; a truncated manifest
failed with an orjson message and no path; a document swapped for another playlist's was
loaded (duplicate rows), the manifest's sha256 never verified. Now each makes its one
playlist `unreadable`, with the file and the reason, and the rest of the window loads; a
broken manifest names its path.
"""

from __future__ import annotations

import hashlib

import pytest

from spotify_assets.lib.raw import store as snapshot_store
from spotify_assets.lib.raw.store import ManifestError
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.faults.raw_support import (
    captured_window,
    only_tables,
    playlist_errors,
    playlist_statuses,
    rows_by_playlist,
    store,
)

DEEP = 200_000


def _window(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> tuple[str, list[str]]:
    window, ids = captured_window(monkeypatch, emulator, {"bad-a": 30, "bad-b": 20, "bad-c": 10})
    assert rows_by_playlist() == dict(zip(ids, (30, 20, 10)))
    return window, ids


def _replace(window: str, playlist_id: str, data: bytes, *, record: bool) -> str:
    """Put `data` in place of the playlist's committed document; `record`: as if the writer
    had written it (the manifest's size and sha256 match), else behind the manifest's back."""
    s = store()
    manifest = s.read_manifest(window)
    entry = manifest.documents[playlist_id]
    s.backend.put(entry["key"], data)
    if record:
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        s.backend.put(s.manifest_key(window), manifest.to_json())
    return s.backend.uri(entry["key"])


CASES = {
    "not_utf8": (b"\xff\xfe\x00{" + b"\x80" * 64, True, "malformed"),
    "nested_200000_deep": (
        b'{"playlist_id": "x", "playlist": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
        True,
        "nested too deeply",
    ),
    "wrong_types": (b'{"playlist_id": "x", "items": 5}', True, "malformed"),
    "too_big": (None, True, "bytes a document may have"),
    "swapped_for_another_playlist": (None, False, "sha256"),
    "swapped_and_recorded": (None, True, "not"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_document_makes_one_playlist_unreadable_and_the_rest_loads(
    monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator, case: str
) -> None:
    window, (a, b, c) = _window(monkeypatch, emulator)
    data, record, reason = CASES[case]
    if case.startswith("swapped"):
        data = store().backend.get(store().read_manifest(window).documents[b]["key"])  # b's document as a's
    if data is None:  # too big: a limit just under a's document (the largest), the same path as 256 MB
        data = store().backend.get(store().read_manifest(window).documents[a]["key"])
        monkeypatch.setattr(snapshot_store, "MAX_DOCUMENT_BYTES", len(data) - 1)
    else:
        data = data.replace(b'"x"', f'"{a}"'.encode()) if case in ("nested_200000_deep", "wrong_types") else data
    where = _replace(window, a, data, record=record)

    result = only_tables(window)

    assert result.success
    rows = rows_by_playlist()
    assert rows == {b: 20, c: 10}  # a's rows gone from this window, the others whole, no duplicates
    statuses = playlist_statuses()
    assert statuses == {a: "unreadable", b: "ok", c: "ok"}
    message = playlist_errors()[a]
    assert where in message and reason in message, message


def test_a_truncated_manifest_names_its_path(monkeypatch: pytest.MonkeyPatch, emulator: SpotifyEmulator) -> None:
    window, _ = _window(monkeypatch, emulator)
    s = store()
    path = s.backend.uri(s.manifest_key(window))
    data = s.backend.get(s.manifest_key(window))
    s.backend.put(s.manifest_key(window), data[:100])
    with pytest.raises(ManifestError, match=path):
        s.read_manifest(window)
    result = only_tables(window, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert path in str(failure.event_specific_data.error)
    assert sum(rows_by_playlist().values()) == 60  # the tables keep the window they had
