"""The Spotify emulator must behave like the API it stands in for, or the pipeline tests prove nothing."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyOAuth

from spotify_assets_tests.support.emulator import SCOPE, SpotifyEmulator

CLIENT = ("test-client-id", "test-client-secret")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_artist(i: int) -> dict[str, Any]:
    return {"id": f"artist{i % 5}", "name": f"Artist {i % 5}", "type": "artist",
            "popularity": 50, "followers": {"href": None, "total": 10}, "genres": ["pop"]}


def make_track(i: int) -> dict[str, Any]:
    return {
        "id": f"track{i:03d}",
        "name": f"Song {i}, \"quoted\" ソング",
        "type": "track",
        "track": True,  # the track object's own boolean, not the row key
        "episode": False,
        "popularity": 40 + i % 50,
        "available_markets": ["SE", "US"],
        "linked_from": {"id": f"orig{i}"},
        "external_ids": {"isrc": f"ISRC{i:05d}"},
        "artists": [make_artist(i)],
        "album": {
            "id": f"album{i % 7}", "name": f"Album {i % 7}", "release_date": "2002",
            "release_date_precision": "year", "popularity": 10, "label": "Label",
            "album_group": "album", "available_markets": ["SE"], "artists": [make_artist(i + 1)],
        },
    }


def make_row(i: int, key: str = "item") -> dict[str, Any]:
    return {"added_at": "2024-01-01T00:00:00Z", "added_by": {"id": "user1", "type": "user"},
            "is_local": False, key: make_track(i), "primary_color": None, "video_thumbnail": {"url": None}}


def make_meta(playlist_id: str = "pl1") -> dict[str, Any]:
    return {"id": playlist_id, "name": "Test list", "description": None,
            "owner": {"id": "owner1", "display_name": "Owner"}, "snapshot_id": "snap1",
            "public": False, "collaborative": False, "followers": {"href": None, "total": 3},
            "href": f"https://api.spotify.com/v1/playlists/{playlist_id}",
            "uri": f"spotify:playlist:{playlist_id}", "type": "playlist", "images": []}


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., SpotifyEmulator]]:
    started: list[SpotifyEmulator] = []

    def factory(rows: int = 120, **kwargs: Any) -> SpotifyEmulator:
        emulator = SpotifyEmulator(**kwargs)
        emulator.add_playlist(make_meta(), [make_row(i) for i in range(rows)])
        started.append(emulator.start())
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emu(make_emulator: Callable[..., SpotifyEmulator]) -> SpotifyEmulator:
    return make_emulator()


def token(emulator: SpotifyEmulator) -> str:
    response = requests.post(f"{emulator.accounts_url}/api/token",
                             data={"grant_type": "client_credentials"}, auth=CLIENT, timeout=5)
    response.raise_for_status()
    return response.json()["access_token"]


def auth(emulator: SpotifyEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(emulator)}"}


def get(
    emulator: SpotifyEmulator, path: str, headers: dict[str, str] | None = None, **params: Any
) -> requests.Response:
    return requests.get(f"{emulator.api_url}{path}", headers=headers or auth(emulator), params=params, timeout=5)


def test_settings_are_readable_but_fixed(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(shape="2025")
    assert (emulator.shape, emulator.client_id, emulator.refresh_token) == ("2025", CLIENT[0], "test-refresh-token")
    assert emulator.row_key == "auto" and emulator.dev_mode_fields is False
    with pytest.raises(AttributeError):  # served rows were precomputed from the shape
        emulator.shape = "2026"  # type: ignore[misc]


# --- tokens -------------------------------------------------------------------------------------


def test_client_credentials_grant(emu: SpotifyEmulator) -> None:
    body = requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"},
                         auth=CLIENT, timeout=5).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert "refresh_token" not in body
    assert get(emu, "/playlists/pl1", {"Authorization": f"Bearer {body['access_token']}"}).status_code == 200


def test_wrong_client_secret_is_invalid_client(emu: SpotifyEmulator) -> None:
    response = requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"},
                             auth=("test-client-id", "wrong"), timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_client", "error_description": "Invalid client"}


def test_refresh_token_grant(emu: SpotifyEmulator) -> None:
    ok = requests.post(f"{emu.accounts_url}/api/token", auth=CLIENT, timeout=5,
                       data={"grant_type": "refresh_token", "refresh_token": "test-refresh-token"})
    assert ok.status_code == 200
    assert ok.json()["scope"] == SCOPE and "refresh_token" not in ok.json()
    bad = requests.post(f"{emu.accounts_url}/api/token", auth=CLIENT, timeout=5,
                        data={"grant_type": "refresh_token", "refresh_token": "nope"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "Invalid refresh token"}


def test_authorize_then_code_exchange(emu: SpotifyEmulator) -> None:
    redirect = "http://127.0.0.1:8888/callback"
    wrong_client = requests.get(f"{emu.accounts_url}/authorize", allow_redirects=False, timeout=5,
                                params={"client_id": "other", "response_type": "code", "redirect_uri": redirect})
    assert wrong_client.status_code == 400

    response = requests.get(f"{emu.accounts_url}/authorize", allow_redirects=False, timeout=5,
                            params={"client_id": CLIENT[0], "response_type": "code", "redirect_uri": redirect,
                                    "scope": SCOPE, "state": "xyz"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    params = parse_qs(location.query)
    assert params["state"] == ["xyz"]
    code = params["code"][0]

    def exchange(redirect_uri: str) -> requests.Response:
        return requests.post(f"{emu.accounts_url}/api/token", auth=CLIENT, timeout=5,
                             data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    assert exchange(redirect).json()["refresh_token"] == "test-refresh-token"
    assert exchange(redirect).status_code == 400  # codes are single use


def test_code_exchange_needs_the_same_redirect_uri(emu: SpotifyEmulator) -> None:
    response = requests.get(f"{emu.accounts_url}/authorize", allow_redirects=False, timeout=5,
                            params={"client_id": CLIENT[0], "response_type": "code", "redirect_uri": "http://a/cb"})
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    exchanged = requests.post(f"{emu.accounts_url}/api/token", auth=CLIENT, timeout=5,
                              data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://b/cb"})
    assert exchanged.status_code == 400 and exchanged.json()["error"] == "invalid_grant"


def test_api_needs_a_valid_unrevoked_token(emu: SpotifyEmulator) -> None:
    unauthenticated = requests.get(f"{emu.api_url}/playlists/pl1", timeout=5)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"error": {"status": 401, "message": "The access token expired"}}
    assert get(emu, "/playlists/pl1", {"Authorization": "Bearer made-up"}).status_code == 401

    headers = auth(emu)
    assert get(emu, "/playlists/pl1", headers).status_code == 200
    emu.revoke_tokens()
    assert get(emu, "/playlists/pl1", headers).status_code == 401
    assert get(emu, "/playlists/pl1").status_code == 200  # a fresh token works again


# --- paging and shapes --------------------------------------------------------------------------


def follow(emulator: SpotifyEmulator, first: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    pages = [first]
    while pages[-1]["next"]:
        response = requests.get(pages[-1]["next"], headers=headers, timeout=5)
        assert response.status_code == 200
        pages.append(response.json())
    return pages


def test_items_paging_2026(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    first = get(emu, "/playlists/pl1/items", headers, limit=50, market="SE").json()
    pages = follow(emu, first, headers)
    assert [len(p["items"]) for p in pages] == [50, 50, 20]
    assert [p["offset"] for p in pages] == [0, 50, 100]
    assert all(p["total"] == 120 and p["limit"] == 50 for p in pages)
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    assert parse_qs(urlsplit(pages[1]["previous"]).query)["offset"] == ["0"]
    assert parse_qs(urlsplit(first["next"]).query) == {"offset": ["50"], "limit": ["50"], "market": ["SE"]}
    ids = [row["item"]["id"] for page in pages for row in page["items"]]
    assert ids == [f"track{i:03d}" for i in range(120)]


def test_items_default_limit_is_20(emu: SpotifyEmulator) -> None:
    page = get(emu, "/playlists/pl1/items").json()
    assert page["limit"] == 20 and len(page["items"]) == 20


def test_tracks_paging_2025(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(rows=250, shape="2025")
    headers = auth(emulator)
    playlist = get(emulator, "/playlists/pl1", headers).json()
    assert "items" not in playlist
    container = playlist["tracks"]
    assert container["limit"] == 100 and container["total"] == 250 and len(container["items"]) == 100
    assert urlsplit(container["next"]).path == "/v1/playlists/pl1/tracks"
    pages = follow(emulator, container, headers)
    assert [len(p["items"]) for p in pages] == [100, 100, 50]
    assert all("track" in row and "item" not in row for p in pages for row in p["items"])


def test_playlist_object_2026_embeds_first_page_under_items(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    playlist = get(emu, "/playlists/pl1", headers).json()
    assert playlist["name"] == "Test list" and "tracks" not in playlist
    container = playlist["items"]
    assert container["limit"] == 50 and container["total"] == 120 and len(container["items"]) == 50
    assert urlsplit(container["next"]).path == "/v1/playlists/pl1/items"
    assert sum(len(p["items"]) for p in follow(emu, container, headers)) == 120


@pytest.mark.parametrize(("shape", "params", "status"), [
    ("2026", {"limit": 0}, 400),
    ("2026", {"limit": 51}, 400),
    ("2026", {"limit": "ten"}, 400),
    ("2026", {"offset": -1}, 400),
    ("2026", {"limit": 50}, 200),
    ("2026", {"limit": 1, "offset": 500}, 200),
    ("2025", {"limit": 100}, 200),
    ("2025", {"limit": 101}, 400),
])
def test_limit_and_offset_bounds(make_emulator: Callable[..., SpotifyEmulator], shape: str,
                                 params: dict[str, Any], status: int) -> None:
    emulator = make_emulator(shape=shape)
    response = get(emulator, f"/playlists/pl1/{'items' if shape == '2026' else 'tracks'}", **params)
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["status"] == 400


def test_removed_and_unknown_paths(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    new, old = make_emulator(shape="2026"), make_emulator(shape="2025")
    assert get(new, "/playlists/pl1/tracks").json() == {"error": {"status": 403, "message": "Forbidden"}}
    assert get(old, "/playlists/pl1/items").json() == {"error": {"status": 404, "message": "Service not found"}}
    assert get(new, "/tracks", ids="a,b").status_code == 404
    assert get(new, "/playlists/missing").status_code == 404
    assert get(new, "/playlists/missing/items").status_code == 404


def test_contents_forbidden_gives_metadata_only(emu: SpotifyEmulator) -> None:
    emu.add_playlist(make_meta("other"), [make_row(i) for i in range(7)], contents_forbidden=True)
    playlist = get(emu, "/playlists/other").json()
    assert playlist["name"] == "Test list"
    assert set(playlist["items"]) == {"href", "total"} and playlist["items"]["total"] == 7
    assert get(emu, "/playlists/other/items").status_code == 403


# --- row shapes ---------------------------------------------------------------------------------


def test_row_key_auto_renames_only_the_row_key(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    new, old = make_emulator(rows=0), make_emulator(rows=0, shape="2025")
    for emulator in (new, old):
        emulator.add_playlist(make_meta("mixed"), [make_row(0, "track"), make_row(1, "item"),
                                                   {"added_at": None, "is_local": False, "item": None}])
    new_rows = get(new, "/playlists/mixed/items").json()["items"]
    assert [row["item"] and row["item"]["id"] for row in new_rows] == ["track000", "track001", None]
    assert all("track" not in row for row in new_rows)
    assert new_rows[0]["item"]["track"] is True and new_rows[0]["item"]["episode"] is False
    old_rows = get(old, "/playlists/mixed/tracks").json()["items"]
    assert [row["track"] and row["track"]["id"] for row in old_rows] == ["track000", "track001", None]
    assert all("item" not in row for row in old_rows)
    assert old_rows[1]["track"]["track"] is True


def test_row_key_none_serves_rows_as_stored(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(rows=0, row_key=None, dev_mode_fields=False)
    stored = [make_row(0, "track"), make_row(1, "item")]
    emulator.add_playlist(make_meta("raw"), stored)
    assert get(emulator, "/playlists/raw/items").json()["items"] == stored


def test_add_playlist_copies_its_input(emu: SpotifyEmulator) -> None:
    rows = [make_row(0)]
    emu.add_playlist(make_meta("copy"), rows)
    rows[0]["item"]["name"] = "changed"
    assert get(emu, "/playlists/copy/items").json()["items"][0]["item"]["name"] != "changed"
    assert rows[0]["item"]["popularity"] == 40  # stripping worked on the emulator's copy


def test_dev_mode_fields_are_stripped_in_2026(emu: SpotifyEmulator) -> None:
    track = get(emu, "/playlists/pl1/items", limit=1).json()["items"][0]["item"]
    assert not {"popularity", "available_markets", "linked_from"} & set(track)
    assert not {"popularity", "label", "album_group", "available_markets"} & set(track["album"])
    for artist in track["artists"] + track["album"]["artists"]:
        assert not {"popularity", "followers", "genres"} & set(artist)
    assert track["external_ids"] == {"isrc": "ISRC00000"} and track["album"]["release_date"] == "2002"


def test_dev_mode_fields_are_kept_in_2025(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(shape="2025")
    track = get(emulator, "/playlists/pl1/tracks", limit=1).json()["items"][0]["track"]
    assert track["popularity"] == 40 and track["album"]["label"] == "Label"
    assert track["artists"][0]["genres"] == ["pop"]


# --- fields filter ------------------------------------------------------------------------------


def test_fields_on_playlist_nested_lists_and_dots(emu: SpotifyEmulator) -> None:
    fields = ("id,name,description,owner(id,display_name),"
              "items(total,next,items(added_at,added_by.id,is_local,item(id,name,album(id,release_date),nope)))")
    playlist = get(emu, "/playlists/pl1", fields=fields).json()
    assert set(playlist) == {"id", "name", "description", "owner", "items"}
    assert playlist["description"] is None  # null stays null
    assert playlist["owner"] == {"id": "owner1", "display_name": "Owner"}
    assert set(playlist["items"]) == {"total", "next", "items"}
    assert playlist["items"]["items"][0] == {
        "added_at": "2024-01-01T00:00:00Z", "added_by": {"id": "user1"}, "is_local": False,
        "item": {"id": "track000", "name": make_track(0)["name"], "album": {"id": "album0", "release_date": "2002"}},
    }


def test_fields_on_items_select_the_envelope_too(emu: SpotifyEmulator) -> None:
    page = get(emu, "/playlists/pl1/items", limit=50, fields="total,items.item.artists(name)").json()
    assert set(page) == {"total", "items"}  # `next` was not asked for
    assert page["items"][0] == {"item": {"artists": [{"name": "Artist 0"}]}}
    with_next = get(emu, "/playlists/pl1/items", limit=50, fields="next,items(item(id))").json()
    assert parse_qs(urlsplit(with_next["next"]).query)["fields"] == ["next,items(item(id))"]


def test_fields_keep_null_payloads_and_skip_absent_keys(emu: SpotifyEmulator) -> None:
    emu.add_playlist(make_meta("gaps"), [{"added_at": None, "is_local": False, "item": None}])
    page = get(emu, "/playlists/gaps/items", fields="items(added_at,added_by(id),item(id))").json()
    assert page == {"items": [{"added_at": None, "item": None}]}


@pytest.mark.parametrize("fields", ["items(item(id)", "items)", "id,(name)", "owner.", "a(b)c"])
def test_malformed_fields_are_rejected(emu: SpotifyEmulator, fields: str) -> None:
    for path in ("/playlists/pl1", "/playlists/pl1/items"):
        response = get(emu, path, fields=fields)
        assert response.status_code == 400
        assert response.json() == {"error": {"status": 400, "message": "Invalid fields"}}


# --- faults -------------------------------------------------------------------------------------


def test_rate_limit_fault(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("rate_limit", path="/items$", retry_after=7, quota=True)
    response = get(emu, "/playlists/pl1/items", headers)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["error"] == {"status": 429, "message": "API rate limit exceeded", "reason": "QUOTA_EXCEEDED"}
    assert get(emu, "/playlists/pl1/items", headers).status_code == 200

    emu.inject("rate_limit")
    plain = get(emu, "/playlists/pl1/items", headers)
    assert plain.headers["Retry-After"] == "1" and "reason" not in plain.json()["error"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_status_fault(emu: SpotifyEmulator, status: int) -> None:
    emu.inject("status", path="/playlists/pl1$", status=status)
    response = get(emu, "/playlists/pl1")
    assert response.status_code == status and response.json()["error"]["status"] == status


def test_forbidden_and_not_found_faults(emu: SpotifyEmulator) -> None:
    emu.inject("forbidden", path="/items$")
    emu.inject("not_found", path="/items$")
    headers = auth(emu)
    assert [get(emu, "/playlists/pl1/items", headers).status_code for _ in range(3)] == [403, 404, 200]


def test_slow_fault_delays_then_answers(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("slow", seconds=0.3)
    started = time.monotonic()
    response = get(emu, "/playlists/pl1", headers)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed >= 0.3  # the delay happened; no upper bound


def test_truncate_fault_breaks_the_read(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("truncate", path="/items$")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        get(emu, "/playlists/pl1/items", headers)
    assert get(emu, "/playlists/pl1/items", headers).status_code == 200


def test_malformed_fault_is_not_json(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("malformed", path="/items$")
    response = get(emu, "/playlists/pl1/items", headers)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_drip_fault_sends_headers_then_one_byte_at_a_time(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("drip", path="/items$", seconds=0.2)
    with requests.get(f"{emu.api_url}/playlists/pl1/items", headers=headers, timeout=5, stream=True) as response:
        assert response.status_code == 200 and int(response.headers["Content-Length"]) > 10
        started = time.monotonic()
        first = [response.raw.read1(1024) for _ in range(3)]
        elapsed = time.monotonic() - started
    assert [len(piece) for piece in first] == [1, 1, 1] and b"".join(first) == b'{"h'
    assert elapsed >= 0.5  # trickled, not sent; no upper bound
    assert get(emu, "/playlists/pl1/items", headers).status_code == 200  # times=1: spent


def test_total_fault_claims_a_total_in_the_playlist_and_its_pages(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("total", path="/playlists/pl1", times=None, total=100_000_000)
    playlist = get(emu, "/playlists/pl1", headers).json()
    page = get(emu, "/playlists/pl1/items", headers, limit=5).json()
    assert playlist["items"]["total"] == page["total"] == 100_000_000
    assert len(page["items"]) == 5  # the rows served are the real ones
    with pytest.raises(ValueError, match="total=<int>"):
        emu.inject("total")


def test_reset_fault_drops_the_connection(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("reset", path="/items$")
    with requests.Session() as session:
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{emu.api_url}/playlists/pl1/items", headers=headers, timeout=5)
        assert session.get(f"{emu.api_url}/playlists/pl1/items", headers=headers, timeout=5).status_code == 200
    assert [r.status for r in emu.requests if r.path.endswith("/items")] == [0, 200]


def test_unauthorized_fault_revokes_tokens(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("unauthorized", path="/items$")
    assert get(emu, "/playlists/pl1/items", headers).status_code == 401
    assert get(emu, "/playlists/pl1", headers).status_code == 401  # the old token stays dead
    assert get(emu, "/playlists/pl1").status_code == 200


def test_fault_on_token_endpoint(emu: SpotifyEmulator) -> None:
    emu.inject("rate_limit", path="^/api/token$", method="POST", retry_after=3)
    response = requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"},
                             auth=CLIENT, timeout=5)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert token(emu)


def test_times_counts_and_rules_fire_in_order(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("status", path="/items$", times=2, status=503)
    emu.inject("status", path="/items$", times=1, status=502)
    statuses = [get(emu, "/playlists/pl1/items", headers).status_code for _ in range(4)]
    assert statuses == [503, 503, 502, 200]

    emu.inject("status", path="/items$", times=None, status=500)
    assert [get(emu, "/playlists/pl1/items", headers).status_code for _ in range(3)] == [500] * 3
    emu.clear_faults()
    assert get(emu, "/playlists/pl1/items", headers).status_code == 200


def test_faults_match_method_and_query(emu: SpotifyEmulator) -> None:
    headers = auth(emu)
    emu.inject("status", path="/items$", query={"offset": "50"}, status=500)
    emu.inject("status", method="POST", status=503)
    assert get(emu, "/playlists/pl1/items", headers, limit=50, offset=0).status_code == 200
    assert get(emu, "/playlists/pl1/items", headers, limit=50, offset=50).status_code == 500
    assert get(emu, "/playlists/pl1", headers).status_code == 200  # the POST rule left GETs alone
    assert requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"},
                         auth=CLIENT, timeout=5).status_code == 503


def test_inject_rejects_unknown_kinds(emu: SpotifyEmulator) -> None:
    with pytest.raises(ValueError):
        emu.inject("explode")


# --- request log and control --------------------------------------------------------------------


def test_request_log(emu: SpotifyEmulator) -> None:
    secret = token(emu)
    get(emu, "/playlists/pl1/items", {"Authorization": f"Bearer {secret}"}, limit=5)
    requests.get(f"{emu.api_url}/playlists/pl1", timeout=5)
    log = emu.requests
    assert [(r.method, r.path, r.status, r.authorization_kind) for r in log] == [
        ("POST", "/api/token", 200, "Basic"),
        ("GET", "/v1/playlists/pl1/items", 200, "Bearer"),
        ("GET", "/v1/playlists/pl1", 401, None),
    ]
    assert log[1].query == {"limit": "5"}
    assert all(r.monotonic_start <= r.monotonic_end for r in log)
    assert secret not in repr(log)
    assert emu.count("/items$") == 1 and emu.count(method="POST") == 1 and emu.count() == 3
    log.clear()  # a snapshot: the emulator's own log is untouched
    assert emu.count() == 3
    emu.reset_log()
    assert emu.requests == []


def test_latency_is_added_to_every_request(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(latency_s=0.1)
    headers = auth(emulator)
    get(emulator, "/playlists/pl1", headers)
    assert all(r.monotonic_end - r.monotonic_start >= 0.1 for r in emulator.requests)


def test_control_endpoints(emu: SpotifyEmulator) -> None:
    control = f"{emu.accounts_url}/_emulator"
    headers = auth(emu)
    assert requests.post(f"{control}/playlists", timeout=5, json={
        "meta": make_meta("remote"), "rows": [make_row(i, "track") for i in range(3)]}).status_code == 201
    assert get(emu, "/playlists/remote/items", headers).json()["total"] == 3

    assert requests.post(f"{control}/faults", timeout=5, json={
        "kind": "status", "path": "/remote/items$", "times": None, "status": 502}).status_code == 201
    assert get(emu, "/playlists/remote/items", headers).status_code == 502
    assert requests.delete(f"{control}/faults", timeout=5).status_code == 200
    assert get(emu, "/playlists/remote/items", headers).status_code == 200
    assert requests.post(f"{control}/faults", json={"kind": "explode"}, timeout=5).status_code == 400

    recorded = requests.get(f"{control}/requests", timeout=5).json()
    assert [(r["path"], r["status"]) for r in recorded] == [
        ("/api/token", 200), ("/v1/playlists/remote/items", 200),
        ("/v1/playlists/remote/items", 502), ("/v1/playlists/remote/items", 200),
    ]
    assert requests.delete(f"{control}/requests", timeout=5).status_code == 200
    assert requests.get(f"{control}/requests", timeout=5).json() == []


# --- real clients, concurrency, lifecycle -------------------------------------------------------


def test_spotipy_reads_a_playlist_with_a_refresh_token(emu: SpotifyEmulator) -> None:
    expired = {"access_token": "stale", "refresh_token": "test-refresh-token", "expires_at": 0,
               "expires_in": 3600, "scope": SCOPE, "token_type": "Bearer"}
    manager = SpotifyOAuth(client_id=CLIENT[0], client_secret=CLIENT[1], redirect_uri="http://127.0.0.1:8888/cb",
                           scope=SCOPE, cache_handler=MemoryCacheHandler(token_info=expired), open_browser=False)
    manager.OAUTH_TOKEN_URL = f"{emu.accounts_url}/api/token"
    client = spotipy.Spotify(auth_manager=manager, retries=0)
    client.prefix = f"{emu.api_url}/"
    page = client.playlist_items("pl1")
    rows = list(page["items"])
    while page["next"]:
        page = client.next(page)
        rows.extend(page["items"])
    assert [row["item"]["id"] for row in rows] == [f"track{i:03d}" for i in range(120)]
    assert emu.count("^/api/token$") == 1  # refreshed once, then reused


def test_concurrent_keep_alive_clients(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(latency_s=0.01)
    headers = auth(emulator)
    failures: list[str] = []

    def client() -> None:
        with requests.Session() as session:
            for offset in range(0, 120, 10):
                response = session.get(f"{emulator.api_url}/playlists/pl1/items", headers=headers,
                                       params={"limit": 10, "offset": offset}, timeout=5)
                ids = [row["item"]["id"] for row in response.json()["items"]]
                if ids != [f"track{i:03d}" for i in range(offset, offset + 10)]:
                    failures.append(f"offset {offset}: {ids}")

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert emulator.count("/items$") == 8 * 12


def test_stop_closes_idle_keep_alive_connections(emu: SpotifyEmulator) -> None:
    session = requests.Session()
    assert session.get(f"{emu.api_url}/playlists/pl1", headers=auth(emu), timeout=5).status_code == 200
    emu.stop()  # must not wait for the idle connection (pytest-timeout catches a hang)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{emu.api_url}/playlists/pl1", timeout=2)
    session.close()


def test_cli_serves_a_playlists_dir(tmp_path: Path) -> None:
    (tmp_path / "bare.json").write_text(json.dumps([make_row(i, "track") for i in range(3)]), encoding="utf-8")
    (tmp_path / "paged.json").write_text(json.dumps({
        "href": "x", "items": [make_row(i, "track") for i in range(60)], "limit": 100,
        "next": None, "offset": 0, "previous": None, "total": 60}), encoding="utf-8")
    full = {**make_meta("fromObject"), "tracks": {"href": "x", "items": [make_row(0, "track")], "total": 1}}
    (tmp_path / "object.json").write_text(json.dumps(full), encoding="utf-8")

    process = subprocess.Popen(
        [sys.executable, "-m", "spotify_assets_tests.support.emulator", "--playlists-dir", str(tmp_path)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "emulator did not announce itself"
        urls = json.loads(process.stdout.readline())
        token_response = requests.post(f"{urls['accounts_url']}/api/token", auth=CLIENT, timeout=5,
                                       data={"grant_type": "client_credentials"})
        headers = {"Authorization": f"Bearer {token_response.json()['access_token']}"}

        bare = requests.get(f"{urls['api_url']}/playlists/bare", headers=headers, timeout=5).json()
        assert bare["name"] == "bare" and bare["owner"]["id"] == "emulator"
        assert [row["item"]["id"] for row in bare["items"]["items"]] == ["track000", "track001", "track002"]
        paged = requests.get(f"{urls['api_url']}/playlists/paged/items", headers=headers, timeout=5,
                             params={"limit": 50, "offset": 50}).json()
        assert paged["total"] == 60 and len(paged["items"]) == 10
        loaded = requests.get(f"{urls['api_url']}/playlists/fromObject", headers=headers, timeout=5).json()
        assert loaded["items"]["total"] == 1 and "tracks" not in loaded
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr


def test_extended_quota_serves_full_artists_and_albums_in_batches(make_emulator: Callable[..., SpotifyEmulator]) -> None:
    emulator = make_emulator(rows=10, shape="2025")
    emulator.add_artist({"id": "artist1", "genres": ["swedish pop", "k-pop"], "followers": {"href": None, "total": 1234}})
    emulator.add_album({"id": "album2", "label": "Label Two", "popularity": 77})
    sp = spotipy.Spotify(auth=token(emulator), requests_timeout=5, retries=0)
    sp.prefix = f"{emulator.api_url}/"
    artists = sp.artists(["artist1", "artist0", "nobody"])["artists"]
    assert artists[0]["genres"] == ["swedish pop", "k-pop"] and artists[0]["followers"]["total"] == 1234
    assert artists[0]["name"] == "Artist 1"  # learned from the playlist rows
    assert artists[1]["genres"] == ["pop"] and artists[2] is None  # unknown ids answer null, in place
    albums = sp.albums(["album2", "album3"])["albums"]
    assert (albums[0]["label"], albums[0]["popularity"], albums[0]["name"]) == ("Label Two", 77, "Album 2")
    assert albums[1]["label"] == "Label"
    # the API's limits: 50 artists, 20 albums a request
    assert get(emulator, "/artists", ids=",".join(f"a{i}" for i in range(50))).status_code == 200
    assert get(emulator, "/artists", ids=",".join(f"a{i}" for i in range(51))).status_code == 400
    assert get(emulator, "/albums", ids=",".join(f"a{i}" for i in range(21))).status_code == 400
    assert get(emulator, "/albums", ids="").status_code == 400


def test_development_mode_refuses_the_batch_endpoints(emu: SpotifyEmulator) -> None:
    assert emu.dev_mode_fields is True
    for path in ("/artists", "/albums"):
        response = get(emu, path, ids="artist1")
        assert response.status_code == 403, path
    assert get(emu, "/artists", headers={"Authorization": "Bearer nope"}, ids="artist1").status_code == 401


def test_versioned_snapshots_change_exactly_when_the_rows_do() -> None:
    from spotify_assets_tests.support.fixtures import playlist

    meta, rows = playlist("versioned", 60)
    with SpotifyEmulator(versioned_snapshots=True) as emu:
        def snapshot_id() -> str:
            emu_token = requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"}, auth=CLIENT, timeout=5).json()
            answer = requests.get(f"{emu.api_url}/playlists/{meta['id']}", headers={"Authorization": f"Bearer {emu_token['access_token']}"}, timeout=5)
            return answer.json()["snapshot_id"]

        emu.add_playlist(meta, rows)
        first = snapshot_id()
        emu.add_playlist({**meta, "snapshot_id": "ignored"}, rows)  # the same rows again
        assert snapshot_id() == first != meta["snapshot_id"]
        emu.add_playlist(meta, rows[:-1])  # one row removed
        removed = snapshot_id()
        emu.add_playlist(meta, [rows[1], rows[0], *rows[2:]])  # two rows moved
        assert len({first, removed, snapshot_id()}) == 3


@pytest.mark.slow
def test_a_rolling_budget_answers_429_with_the_wait_until_it_has_room() -> None:
    with SpotifyEmulator(rate_budget=(5, 2.0)) as emu:
        token = requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"}, auth=CLIENT, timeout=5).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        started = time.monotonic()
        answers = [requests.get(f"{emu.api_url}/playlists/none", headers=headers, timeout=5) for _ in range(7)]
        assert [a.status_code for a in answers] == [404] * 5 + [429, 429]  # within the budget, then over
        assert all(1 <= int(a.headers["Retry-After"]) <= 2 for a in answers[5:])
        assert requests.post(f"{emu.accounts_url}/api/token", data={"grant_type": "client_credentials"}, auth=CLIENT, timeout=5).ok  # accounts apart
        # the refused requests count too: sent again and again, the budget never has room
        time.sleep(max(0.0, started + 1.5 - time.monotonic()))
        assert [requests.get(f"{emu.api_url}/playlists/none", headers=headers, timeout=5).status_code for _ in range(5)] == [429] * 5
        time.sleep(max(0.0, started + 2.2 - time.monotonic()))  # the first five have left the window
        assert requests.get(f"{emu.api_url}/playlists/none", headers=headers, timeout=5).status_code == 429
