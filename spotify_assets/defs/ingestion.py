"""Raw playlist snapshots: every configured playlist, every 8 hours, as the API returned it."""

from collections import Counter
from contextlib import closing
from typing import Any

import dagster as dg

from spotify_assets.defs.partitions import snapshot_windows
from spotify_assets.defs.resources import RawSnapshotStore, SpotifyResource
from spotify_assets.lib.extract import PlaylistExtractor, PlaylistSnapshot
from spotify_assets.lib.timestamps import iso_z

PLAYLISTS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("playlist_id", "string"),
        dg.TableColumn("name", "string"),
        dg.TableColumn("status", "string", description="ok, or failed with the reason"),
        dg.TableColumn("rows", "int", description="rows read (all of them, or none on failure)"),
        dg.TableColumn("pages", "int"),
        dg.TableColumn("not_songs", "string", description="rows that cannot become songs, by reason"),
        dg.TableColumn("shape", "string", description="container and row key the API used"),
        dg.TableColumn("reason", "string"),
    ]
)


@dg.asset(
    partitions_def=snapshot_windows,
    group_name="ingestion",
    kinds={"spotify", "json"},
    tags={"layer": "raw"},
)
def raw_playlist_snapshots(
    context: dg.AssetExecutionContext,
    spotify: SpotifyResource,
    raw_store: RawSnapshotStore,
) -> dg.MaterializeResult:
    """Each configured playlist as the Spotify Web API returned it, one JSON document per
    playlist per 8-hour window: the playlist's metadata, all its rows unchanged (both API
    shapes: `items`/`item` and `tracks`/`track`), and how they were read (pages, endpoint,
    rows that are not songs, or why the playlist could not be read).

    Re-materializing a window replaces that window's documents in one atomic step. The
    materialization fails only when no playlist at all could be read.
    """
    window = context.partition_time_window
    spotify.check_window(window.end)
    with closing(spotify.open_source(window.start, log=context.log.warning)) as source:
        playlist_ids = spotify.playlist_ids(source)
        context.log.info(
            f"Reading {len(playlist_ids)} playlists for window {context.partition_key} from "
            f"{'the bundled SYNTHETIC sample' if spotify.is_sample else source.api_url}"
        )
        snapshots = PlaylistExtractor(
            source,
            concurrency=spotify.concurrency,
            market=spotify.market,
            log=context.log.info,
            warn=context.log.warning,
        ).extract(playlist_ids)
        counts = source.counts

    failed = [s for s in snapshots if not s.ok]
    if len(failed) == len(snapshots):
        raise dg.Failure(
            description=f"No playlist could be read for window {context.partition_key}; nothing was written.",
            metadata={"failures": dg.MetadataValue.md(_failures_markdown(failed))},
        )

    window_facts = {
        "partition_key": context.partition_key,
        "start": iso_z(window.start),
        "end": iso_z(window.end),
    }
    store = raw_store.store()
    manifest = store.write_window(
        context.partition_key,
        {s.playlist_id: s.to_document(window_facts) for s in snapshots},
        tag=context.run.run_id.split("-")[0],
    )
    manifest_uri = store.uri(store.manifest_key(context.partition_key))
    return dg.MaterializeResult(metadata=_metadata(snapshots, counts, manifest_uri, manifest.version, spotify))


def _metadata(
    snapshots: list[PlaylistSnapshot],
    counts: dict[str, int],
    manifest_uri: str,
    version: str,
    spotify: SpotifyResource,
) -> dict[str, Any]:
    ok = [s for s in snapshots if s.ok]
    failed = [s for s in snapshots if not s.ok]
    not_songs: Counter[str] = Counter()
    for snap in ok:
        for skipped in snap.extraction["skipped"]:
            not_songs[skipped["reason"]] += skipped["count"]
    metadata: dict[str, Any] = {
        "dagster/row_count": sum(len(s.items) for s in ok),
        "source": "synthetic sample (not Spotify data)" if spotify.is_sample else f"Spotify Web API ({spotify.api_url})",
        "playlists_read": len(ok),
        "playlists_failed": len(failed),
        "rows_not_songs": dg.MetadataValue.json(dict(not_songs)),
        "requests": sum(s.extraction["requests"] for s in snapshots),
        "retries": counts.get("retries", 0),
        "token_renewals": counts.get("token_renewals", 0),
        "popularity_present": any(s.extraction.get("popularity_present") for s in ok),
        "manifest": dg.MetadataValue.path(manifest_uri) if "://" not in manifest_uri else dg.MetadataValue.url(manifest_uri),
        "version": version,
        "playlists": dg.MetadataValue.table(
            records=[_record(s) for s in snapshots],
            schema=PLAYLISTS_SCHEMA,
        ),
    }
    if failed:
        metadata["failures"] = dg.MetadataValue.md(_failures_markdown(failed))
    return metadata


def _record(snap: PlaylistSnapshot) -> dg.TableRecord:
    facts = snap.extraction
    error = facts.get("error")
    keys = facts.get("payload_key") or {}
    return dg.TableRecord(
        {
            "playlist_id": snap.playlist_id,
            "name": snap.name or "",
            "status": "ok" if error is None else f"failed ({error['kind']})",
            "rows": len(snap.items),
            "pages": facts["pages"],
            "not_songs": ", ".join(f"{s['reason']}: {s['count']}" for s in facts.get("skipped", [])),
            "shape": f"{facts['container']}/{'+'.join(sorted(keys)) or '-'}" if facts["container"] else "",
            "reason": error["message"] if error else "",
        }
    )


def _failures_markdown(failed: list[PlaylistSnapshot]) -> str:
    lines = ["| playlist | kind | reason |", "|---|---|---|"]
    for snap in failed:
        error = snap.extraction["error"]
        name = f"{snap.name} ({snap.playlist_id})" if snap.name else snap.playlist_id
        lines.append(f"| {name} | {error['kind']} | {error['message'].replace('|', '/')} |")
    return "\n".join(lines)
