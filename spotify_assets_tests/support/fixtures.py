"""Small hand-built Web API payloads for tests (2026 shape; the emulator can serve 2025's)."""

from __future__ import annotations

from typing import Any

from spotify_assets.lib.samples.catalogue import synthetic_id


def spotify_id(label: str) -> str:
    """A deterministic 22-character base62 id."""
    return synthetic_id("fixture", label)


def artist(label: str) -> dict[str, Any]:
    aid = spotify_id(f"artist:{label}")
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{aid}"},
        "href": f"https://api.spotify.com/v1/artists/{aid}",
        "id": aid,
        "name": label,
        "type": "artist",
        "uri": f"spotify:artist:{aid}",
    }


def track(label: str, *, popularity: int = 50, artists: int = 1) -> dict[str, Any]:
    tid = spotify_id(f"track:{label}")
    album_id = spotify_id(f"album:{label}")
    return {
        "album": {
            "album_type": "album",
            "artists": [artist(f"{label} artist 0")],
            "available_markets": ["SE", "US"],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"https://api.spotify.com/v1/albums/{album_id}",
            "id": album_id,
            "images": [{"url": "https://i.scdn.co/image/x", "height": 640, "width": 640}],
            "name": f"{label} album",
            "release_date": "2002",
            "release_date_precision": "year",
            "total_tracks": 10,
            "type": "album",
            "uri": f"spotify:album:{album_id}",
        },
        "artists": [artist(f"{label} artist {i}") for i in range(artists)],
        "available_markets": ["SE", "US"],
        "disc_number": 1,
        "duration_ms": 200_000,
        "episode": False,
        "explicit": False,
        "external_ids": {"isrc": "QZAAA2600001"},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{tid}"},
        "href": f"https://api.spotify.com/v1/tracks/{tid}",
        "id": tid,
        "is_local": False,
        "name": label,
        "popularity": popularity,
        "preview_url": None,
        "track": True,
        "track_number": 1,
        "type": "track",
        "uri": f"spotify:track:{tid}",
    }


def row(payload: dict[str, Any] | None, *, added_at: str = "2026-11-20T10:00:00Z") -> dict[str, Any]:
    return {
        "added_at": added_at,
        "added_by": {"external_urls": {}, "href": "", "id": "curator", "type": "user", "uri": "spotify:user:curator"},
        "is_local": False,
        "item": payload,
        "primary_color": None,
        "video_thumbnail": {"url": None},
    }


def playlist(label: str, n_rows: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pid = spotify_id(f"playlist:{label}")
    meta = {
        "collaborative": False,
        "description": f"fixture {label}",
        "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"},
        "followers": {"href": None, "total": 3},
        "href": f"https://api.spotify.com/v1/playlists/{pid}",
        "id": pid,
        "images": [],
        "name": f"Fixture {label}",
        "owner": {"display_name": "Curator", "external_urls": {}, "href": "", "id": "curator", "type": "user", "uri": "spotify:user:curator"},
        "primary_color": None,
        "public": True,
        "snapshot_id": "AAAA",
        "type": "playlist",
        "uri": f"spotify:playlist:{pid}",
    }
    rows = [row(track(f"{label}-{i}", popularity=i % 101)) for i in range(n_rows)]
    return meta, rows


def document(
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    window_start: str = "2026-11-20T08:00:00Z",
    shape: str = "2026",
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A raw snapshot document as the ingestion asset stores it (shape '2025': rows under `track`)."""
    if shape == "2025":
        rows = [{**{k: v for k, v in r.items() if k != "item"}, "track": r.get("item")} for r in rows]
    return {
        "schema_version": 1,
        "playlist_id": meta["id"],
        "status": "failed" if error else "ok",
        "window": {"partition_key": "", "start": window_start, "end": ""},
        "playlist": meta,
        "items": [] if error else rows,
        "extraction": {
            "source": "fixture",
            "total": len(rows),
            "rows_read": 0 if error else len(rows),
            "extracted_at": "2026-11-20T16:00:01.500Z",
            "error": error,
            "container": "items" if shape == "2026" else "tracks",
        },
    }
