"""Enrichment from the batch endpoints, against the emulator through the real client: batches
of 50 artists and 20 albums, ids asked once, Development Mode one warning, failures recorded
and never raised, and the columns filled by normalization."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from spotify_assets.lib.raw.store import EncodedRows
from spotify_assets.lib.spotify.client import SpotifyHttpError
from spotify_assets.lib.spotify.enrich import Enricher, ids_to_enrich
from spotify_assets.lib.spotify.extract import PlaylistExtractor, PlaylistSnapshot
from spotify_assets.lib.tables.normalize import normalize_documents
from spotify_assets_tests.lib.spotify.test_client import WINDOW, Sleeps, make_api, sleeps  # noqa: F401 (a fixture)
from spotify_assets_tests.support.emulator import SpotifyEmulator
from spotify_assets_tests.support.fixtures import playlist, row, track

WINDOW_FACTS = {"partition_key": "2026-11-21-08:00", "start": "2026-11-21T08:00:00Z", "end": "2026-11-21T16:00:00Z"}


class Messages(list):
    def __call__(self, message: str) -> None:
        self.append(message)


def _catalogue(emu: SpotifyEmulator) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Two playlists: A with 120 songs (each its own artist and album), B repeating 30 of
    A's rows and one of them twice, plus a duet whose second artist appears nowhere else."""
    a_meta, a_rows = playlist("A", 120)
    b_meta, _ = playlist("B", 0)
    duet = track("duet", artists=2)
    b_rows = a_rows[:30] + [a_rows[0], row(duet)]
    emu.add_playlist(a_meta, a_rows)
    emu.add_playlist(b_meta, b_rows)
    star = a_rows[0]["item"]["artists"][0]
    emu.add_artist({"id": star["id"], "genres": ["swedish pop", "k-pop"], "followers": {"href": None, "total": 1234}, "popularity": 81})
    album = a_rows[0]["item"]["album"]
    emu.add_album({"id": album["id"], "label": "Label, \"Quoted\"", "popularity": 64})
    return [a_meta["id"], b_meta["id"]], star, album


def _extract(emu: SpotifyEmulator, sleeps: Sleeps, ids: list[str]) -> tuple[Any, list[PlaylistSnapshot]]:
    api = make_api(emu, sleeps)
    api.authenticate()
    return api, PlaylistExtractor(api, concurrency=4).extract(ids)


def _asked(emu: SpotifyEmulator, endpoint: str) -> list[list[str]]:
    return [r.query["ids"].split(",") for r in emu.requests if re.fullmatch(f"/v1/{endpoint}/?", r.path)]


def test_artists_and_albums_are_asked_in_batches_of_50_and_20_each_id_once(sleeps: Sleeps) -> None:
    with SpotifyEmulator(shape="2025") as emu:  # Extended Quota
        ids, star, album = _catalogue(emu)
        api, snapshots = _extract(emu, sleeps, ids)
        artist_ids, album_ids = ids_to_enrich(snapshots)
        assert len(artist_ids) == 122 and len(album_ids) == 121  # 120 + the duet's two artists / its album
        result = Enricher(api, concurrency=3).enrich(snapshots)
        artists, albums = _asked(emu, "artists"), _asked(emu, "albums")
    assert sorted(len(b) for b in artists) == [22, 50, 50]
    assert sorted(len(b) for b in albums) == [1] + [20] * 6
    for asked, expected in ((artists, artist_ids), (albums, album_ids)):
        flat = [i for b in asked for i in b]
        assert len(flat) == len(set(flat)) and set(flat) == set(expected)  # each id once, none missed
    assert result.status == "ok" and result.errors == [] and result.dev_mode is None
    assert result.received == {"artists": 122, "albums": 121} and result.requests == 3 + 7
    # kept in the order asked, trimmed to what the tables read (no album track pages or markets)
    doc = result.to_document(WINDOW_FACTS)
    assert [b["ids"] for b in doc["batches"]] == [artist_ids[:50], artist_ids[50:100], artist_ids[100:]] + [
        album_ids[i : i + 20] for i in range(0, 121, 20)
    ]
    first_album = doc["batches"][3]["response"]["albums"][0]
    assert first_album["id"] == album["id"] and "tracks" not in first_album and "available_markets" not in first_album


def test_enrichment_fills_the_columns_and_without_it_the_tables_are_as_before(sleeps: Sleeps) -> None:
    with SpotifyEmulator(shape="2025") as emu:
        ids, star, album = _catalogue(emu)
        api, snapshots = _extract(emu, sleeps, ids)
        result = Enricher(api).enrich(snapshots)
    documents = [s.to_document(WINDOW_FACTS) for s in snapshots]
    plain = normalize_documents(WINDOW, documents).frames
    enriched = normalize_documents(WINDOW, documents, enrichment=orjson.dumps(result.to_document(WINDOW_FACTS))).frames
    # without enrichment: null, never 0 (playlist responses carry none of these)
    assert plain["artists"][["popularity", "followers", "genres"]].isna().all().all()
    assert plain["albums"][["popularity", "label"]].isna().all().all()
    artists = enriched["artists"].set_index("artist_id")
    assert orjson.loads(artists.loc[star["id"], "genres"]) == ["swedish pop", "k-pop"]
    assert (artists.loc[star["id"], "followers"], artists.loc[star["id"], "popularity"]) == (1234, 81)
    assert artists["genres"].notna().all() and artists["followers"].notna().all()
    albums = enriched["albums"].set_index("album_id")
    assert (albums.loc[album["id"], "label"], albums.loc[album["id"], "popularity"]) == ('Label, "Quoted"', 64)
    # everything else is what it was
    for name in plain:
        columns = {"artists": ["popularity", "followers", "genres"], "albums": ["popularity", "label"]}.get(name, [])
        assert enriched[name].drop(columns=columns).equals(plain[name].drop(columns=columns)), name


@pytest.mark.parametrize("answer", ["403 (Development Mode)", "404 (removed endpoint)"])
def test_development_mode_is_one_warning_one_request_and_null_columns(sleeps: Sleeps, answer: str) -> None:
    with SpotifyEmulator(shape="2026" if answer.startswith("403") else "2025") as emu:
        ids, *_ = _catalogue(emu)
        if answer.startswith("404"):
            emu.inject("not_found", path=r"^/v1/(artists|albums)", times=None)
        api, snapshots = _extract(emu, sleeps, ids)
        warnings = Messages()
        result = Enricher(api, warn=warnings).enrich(snapshots)
        asked = emu.count(r"^/v1/(artists|albums)")
    assert result.status == "dev_mode" and asked == 1 and result.batches == [] and result.errors == []
    assert len(warnings) == 1 and "Development Mode" in warnings[0]
    frames = normalize_documents(WINDOW, [s.to_document(WINDOW_FACTS) for s in snapshots], result.to_document(WINDOW_FACTS)).frames
    assert frames["artists"]["genres"].isna().all() and frames["albums"]["label"].isna().all()


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 500},
        {"kind": "rate_limit", "retry_after": 86400},
        {"kind": "malformed"},  # a body cut in half: not JSON
    ],
    ids=["500", "429 beyond the bound", "garbage"],
)
def test_a_failing_endpoint_is_recorded_once_and_the_rest_is_kept(sleeps: Sleeps, fault: dict[str, Any]) -> None:
    with SpotifyEmulator(shape="2025") as emu:
        ids, star, album = _catalogue(emu)
        api, snapshots = _extract(emu, sleeps, ids)
        emu.inject(path=r"^/v1/albums", times=None, **fault)
        warnings = Messages()
        result = Enricher(api, concurrency=1, warn=warnings).enrich(snapshots)
    assert result.status == "partial" and result.received["artists"] == 122 and result.received["albums"] == 0
    assert len(result.errors) == 1 and result.errors[0]["endpoint"] == "albums"  # it stops asking
    assert result.errors[0]["kind"] == ("rate_limited" if fault["kind"] == "rate_limit" else "unavailable")
    assert len(warnings) == 1 and "playlists are written regardless" in warnings[0]
    frames = normalize_documents(WINDOW, [s.to_document(WINDOW_FACTS) for s in snapshots], result.to_document(WINDOW_FACTS)).frames
    assert frames["artists"]["genres"].notna().all() and frames["albums"]["label"].isna().all()


class _Source:
    label, api_url = "fake", "fake://"

    def __init__(self, answer):
        self.answer = answer

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.answer(path, params["ids"].split(","))

    counts: dict[str, int] = {}

    def close(self) -> None:
        pass


def _snapshots() -> list[PlaylistSnapshot]:
    _, rows = playlist("fake", 3)
    return [PlaylistSnapshot("p" * 22, {"name": "fake"}, rows, {"error": None})]


def test_a_body_of_the_wrong_shape_is_skipped_and_the_good_batches_kept() -> None:
    def answer(path: str, ids: list[str]) -> dict[str, Any]:
        if path == "albums":
            return {"albums": "not a list"}
        return {"artists": [{"id": i, "genres": ["g"]} for i in ids]}

    warnings = Messages()
    result = Enricher(_Source(answer), warn=warnings).enrich(_snapshots())
    assert result.status == "partial" and result.received == {"artists": 3, "albums": 0}
    assert [e["kind"] for e in result.errors] == ["malformed"] and len(warnings) == 1


def test_an_unexpected_error_is_recorded_never_raised() -> None:
    def answer(path: str, ids: list[str]) -> dict[str, Any]:
        raise RuntimeError("boom")

    result = Enricher(_Source(answer), warn=Messages()).enrich(_snapshots())
    assert result.status == "failed" and "boom" in result.errors[0]["message"]


def test_a_stored_batch_of_the_wrong_types_is_a_problem_and_the_others_fill() -> None:
    meta, rows = playlist("types", 2)
    artist_ids = [r["item"]["artists"][0]["id"] for r in rows]
    enrichment = {"batches": [
        {"endpoint": "artists", "ids": artist_ids[:1], "response": {"artists": [{"id": artist_ids[0], "followers": {"total": "many"}}]}},
        {"endpoint": "artists", "ids": artist_ids[1:], "response": {"artists": [{"id": artist_ids[1], "genres": ["jazz"]}]}},
    ]}
    from spotify_assets_tests.support.fixtures import document

    window = normalize_documents(WINDOW, [document(meta, rows)], enrichment)
    artists = window.frames["artists"].set_index("artist_id")
    assert artists.loc[artist_ids[1], "genres"] == '["jazz"]' and artists.loc[artist_ids[0], "genres"] is None
    assert len(window.problems) == 1 and "enrichment batch 0 is malformed" in window.problems[0]["message"]
    assert (window.frames["playlists"]["status"] == "ok").all()


class _Unread(EncodedRows):
    """Stored rows that must not be read: reading them fails the test's enrichment."""

    def rows(self) -> list[dict[str, Any]]:
        raise AssertionError("these rows were read")


def _dev_mode_window() -> list[PlaylistSnapshot]:
    """A first playlist with 60 songs (60 artists: more than a batch), then one whose rows are
    carried as stored and must not be read."""
    _, first = playlist("first", 60)
    _, later = playlist("later", 5)
    return [
        PlaylistSnapshot("f" * 22, {"name": "first"}, first, {"error": None}),
        PlaylistSnapshot("l" * 22, {"name": "later"}, _Unread(orjson.dumps(later), 5), {"error": None}),
    ]


def test_a_development_mode_app_refuses_the_first_batch_before_the_other_rows_are_read() -> None:
    asked: list[tuple[str, list[str]]] = []

    def refuse(path: str, ids: list[str]) -> dict[str, Any]:
        asked.append((path, ids))
        raise SpotifyHttpError(403, f"GET /{path}", "Forbidden")

    warnings = Messages()
    result = Enricher(_Source(refuse), warn=warnings).enrich(_dev_mode_window())
    assert result.status == "dev_mode" and result.errors == [] and len(warnings) == 1
    assert [(path, len(ids)) for path, ids in asked] == [("artists", 50)]
    # An app that answers reads every row for the rest of its batches (here: the unread rows fail it).
    answered = Enricher(_Source(lambda path, ids: {path: [{"id": i} for i in ids]}), warn=Messages()).enrich(_dev_mode_window())
    assert answered.status == "partial" and "these rows were read" in answered.errors[-1]["message"]
