"""The synthetic sample served as Web API responses, so it takes the same extraction path.

`SampleSource.get` answers `playlists/{id}` (metadata with the first page embedded) and
`playlists/{id}/items` (pages by offset) exactly as the 2026 API does, from the deterministic
catalogue in `sample_catalogue`. The extractor cannot tell it from the real API.

Like the Extended Quota app whose responses it imitates (tracks carry popularity), it also
answers the batch endpoints `artists?ids=` (at most 50) and `albums?ids=` (at most 20) with
the full objects of the window's artists and albums: synthetic genres, followers, popularity
and label (`synthetic_artist`, `synthetic_album`), fixed per id. None of the demo's figures
reads them (the model's features are what both kinds of app get); the genre view and chart do.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from spotify_assets.lib.samples.catalogue import (
    SAMPLE_SOURCE_LABEL,
    SamplePlaylist,
    sample_playlists,
    synthetic_album,
    synthetic_artist,
)
from spotify_assets.lib.spotify.client import SpotifyHttpError

SAMPLE_API_URL = "sample://synthetic/v1"
MAX_LIMIT = 50
MAX_IDS = {"artists": 50, "albums": 20}


class SampleSource:
    """Web API answers for one window of the synthetic catalogue."""

    label = SAMPLE_SOURCE_LABEL
    api_url = SAMPLE_API_URL

    def __init__(self, window_start: datetime):
        self.window_start = window_start
        # Built once per window (well under 100 ms), then served read-only from many threads.
        self._playlists = {p.meta["id"]: p for p in sample_playlists(window_start)}
        self.playlist_ids = list(self._playlists)
        self._objects: dict[str, dict[str, dict[str, Any]]] = {"artists": {}, "albums": {}}  # simplified, by id
        for playlist in self._playlists.values():
            for row in playlist.rows:
                payload = row.get("item") or {}
                album = payload.get("album") or {}
                for kind, obj in [("albums", album), *(("artists", a) for a in [*payload.get("artists", ()), *album.get("artists", ())])]:
                    if obj.get("id"):
                        self._objects[kind].setdefault(obj["id"], obj)

    @property
    def counts(self) -> dict[str, int]:
        return {}  # nothing is retried: there is no network

    def close(self) -> None:
        pass

    def _playlist(self, playlist_id: str, path: str) -> SamplePlaylist:
        try:
            return self._playlists[playlist_id]
        except KeyError:
            raise SpotifyHttpError(404, f"GET /v1/{path}", "Resource not found") from None

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "playlists":
            playlist = self._playlist(parts[1], path)
            meta = copy.deepcopy(playlist.meta)
            meta["items"] = self._page(playlist, path + "/items", 0, MAX_LIMIT)
            return meta
        if len(parts) == 3 and parts[0] == "playlists" and parts[2] == "items":
            playlist = self._playlist(parts[1], path)
            limit = int(params.get("limit", 20))
            offset = int(params.get("offset", 0))
            if not 1 <= limit <= MAX_LIMIT or offset < 0:
                raise SpotifyHttpError(400, f"GET /v1/{path}", "Invalid limit")
            return self._page(playlist, path, offset, limit)
        if len(parts) == 1 and parts[0] in MAX_IDS:
            return self._batch(parts[0], str(params.get("ids", "")), path)
        raise SpotifyHttpError(404, f"GET /v1/{path}", "Service not found")

    def _batch(self, kind: str, ids: str, path: str) -> dict[str, Any]:
        asked = ids.split(",")
        if not all(asked) or len(asked) > MAX_IDS[kind]:
            raise SpotifyHttpError(400, f"GET /v1/{path}", "invalid ids")
        full = synthetic_artist if kind == "artists" else synthetic_album
        known = self._objects[kind]
        return {kind: [full(copy.deepcopy(known[i])) if i in known else None for i in asked]}

    def _page(self, playlist: SamplePlaylist, path: str, offset: int, limit: int) -> dict[str, Any]:
        total = len(playlist.rows)
        href = f"{self.api_url}/{path}?offset={{}}&limit={limit}"
        return {
            "href": href.format(offset),
            "items": copy.deepcopy(playlist.rows[offset : offset + limit]),
            "limit": limit,
            "next": href.format(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": href.format(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }
