"""Raw playlist snapshots: every configured playlist, every 8 hours, as the API returned it."""

from collections import Counter
from contextlib import closing
from typing import Any

import dagster as dg

from spotify_assets.defs.resources import RawSnapshotStore, SpotifyResource
from spotify_assets.lib.spotify.enrich import Enricher, Enrichment
from spotify_assets.lib.spotify.extract import PlaylistExtractor, PlaylistSnapshot
from spotify_assets.lib.raw.store import ManifestError
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


RAW_KEY = dg.AssetKey("raw_playlist_snapshots")


def raw_asset(windows: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """`raw_playlist_snapshots`, one partition per window of `windows`."""
    return dg.asset(partitions_def=windows, group_name="ingestion", kinds={"spotify", "json"}, tags={"layer": "raw"})(
        raw_playlist_snapshots
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

    Re-materializing a window replaces that window's documents in one atomic step, never
    making it worse: a playlist that fails now, or is no longer configured, keeps the
    window's previous document (`kept`, logged as an error, counted in `playlists_kept`).
    The materialization fails only when no playlist at all could be read. Each run then
    removes replaced versions and temporary files left over past the grace period.

    The window's artists and albums are enriched from the batch endpoints where the app may
    (Extended Quota: genres, followers, popularity, label), kept raw in one more document of
    the window; Development Mode is one warning, and no enrichment failure fails the window.
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
            concurrency=spotify.settings.concurrency,
            market=spotify.settings.market,
            log=context.log.info,
            warn=context.log.warning,
        ).extract(playlist_ids)
        enrichment = _enrich(spotify, source, snapshots, context)
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
    try:
        manifest = store.write_window(
            context.partition_key,
            {s.playlist_id: s.to_document(window_facts) for s in snapshots},
            tag=context.run.run_id.split("-")[0],
            # Development Mode (or nothing to ask): no document; the window keeps any it had
            enrichment=enrichment.to_document(window_facts) if enrichment.status not in ("dev_mode", "nothing_to_enrich") else None,
        )
    except ManifestError as err:
        raise dg.Failure(
            description=f"Window {context.partition_key} was not re-written: {err}. Repair or remove it by hand; "
            "overwriting it would lose what it references."
        ) from None
    kept = manifest.kept
    for pid, entry in sorted(kept.items()):
        # Loud: this run could only have made the window worse for these playlists.
        facts = entry["kept"]
        context.log.error(
            f"playlist {pid} ({facts['reason']}): kept the window's previous document of version "
            f"{facts['from_version']} ({entry.get('rows_read')} rows)"
            + (f"; it is unusable: {facts['unusable']}" if facts.get("unusable") else "")
        )
    garbage = store.collect_garbage()
    manifest_uri = store.uri(store.manifest_key(context.partition_key))
    metadata = _metadata(snapshots, counts, manifest_uri, manifest.version, spotify)
    metadata |= {
        "playlists_kept": len(kept),
        "leftovers_removed": garbage.leftovers,
        "dead_versions_removed": garbage.dead_versions,
        "stale_temporaries_removed": garbage.stale_temporaries,
    }
    if kept:
        metadata["kept"] = dg.MetadataValue.md(_kept_markdown(kept))
    received = enrichment.received
    metadata |= {
        "enrichment": enrichment.status,
        "artists_enriched": received["artists"],
        "albums_enriched": received["albums"],
        "enrichment_requests": enrichment.requests,
    }
    return dg.MaterializeResult(metadata=metadata)


def _enrich(spotify: SpotifyResource, source, snapshots: list[PlaylistSnapshot], context) -> Enrichment:  # type: ignore[no-untyped-def]
    """Artists and albums from the batch endpoints (lib/spotify/enrich.py); never raises."""
    return Enricher(
        source,
        concurrency=spotify.settings.concurrency,
        market=spotify.settings.market,
        log=context.log.info,
        warn=context.log.warning,
    ).enrich(snapshots)


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
        "source": "synthetic sample (not Spotify data)" if spotify.is_sample else f"Spotify Web API ({spotify.settings.api_url})",
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


def _kept_markdown(kept: dict[str, dict[str, Any]]) -> str:
    lines = ["| playlist | why | kept version | rows | new error |", "|---|---|---|---|---|"]
    for pid, entry in sorted(kept.items()):
        facts = entry["kept"]
        error = facts.get("error") or {}
        reason = f"{error.get('kind')}: {error.get('message')}" if error else ""
        if facts.get("unusable"):
            reason += f" (kept document unusable: {facts['unusable']})"
        name = f"{entry['name']} ({pid})" if entry.get("name") else pid
        lines.append(f"| {name} | {facts['reason']} | {facts['from_version']} | {entry.get('rows_read')} | {reason.replace('|', '/')} |")
    return "\n".join(lines)


def _failures_markdown(failed: list[PlaylistSnapshot]) -> str:
    lines = ["| playlist | kind | reason |", "|---|---|---|"]
    for snap in failed:
        error = snap.extraction["error"]
        name = f"{snap.name} ({snap.playlist_id})" if snap.name else snap.playlist_id
        lines.append(f"| {name} | {error['kind']} | {error['message'].replace('|', '/')} |")
    return "\n".join(lines)
