"""Raw playlist snapshots: every configured playlist, every 8 hours, as the API returned it."""

from collections import Counter
from contextlib import closing
from typing import Any

import dagster as dg

from spotify_assets.defs.resources import RawSnapshotStore, SpotifyResource
from spotify_assets.lib.spotify.enrich import Enricher, Enrichment
from spotify_assets.lib.spotify.extract import PlaylistExtractor, PlaylistSnapshot
from spotify_assets.lib.spotify.reuse import PreviousWindow, ReusePolicy
from spotify_assets.lib.raw.store import ManifestError, SnapshotStore
from spotify_assets.lib.settings import SpotifySettings
from spotify_assets.lib.timestamps import iso_z
from spotify_assets.lib.window import previous_key

PLAYLISTS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("playlist_id", "string"),
        dg.TableColumn("name", "string"),
        dg.TableColumn("status", "string", description="ok, or failed with the reason"),
        dg.TableColumn("rows", "int", description="rows read (all of them, or none on failure)"),
        dg.TableColumn("pages", "int", description="pages read in this window"),
        dg.TableColumn("reused", "string", description="rows unchanged since, and taken from, this window (else empty)"),
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

    A playlist whose `snapshot_id` is unchanged since the previous window's complete document
    keeps its first page and takes its other rows from that document instead of reading them
    again (SPOTIFY_ASSETS_REUSE_ROWS, SPOTIFY_ASSETS_FULL_REREAD_WINDOWS; the document's
    `extraction.reuse` says from which window and version, or why it was read fully).

    The window's artists and albums are enriched from the batch endpoints where the app may
    (Extended Quota: genres, followers, popularity, label), kept raw in one more document of
    the window; Development Mode is one warning, and no enrichment failure fails the window.
    """
    window = context.partition_time_window
    spotify.check_window(window.end)
    store = raw_store.store()
    settings = spotify.settings
    previous = _previous_window(context, store, settings)
    with closing(spotify.open_source(window.start, log=context.log.warning)) as source:
        playlist_ids = spotify.playlist_ids(source)
        context.log.info(
            f"Reading {len(playlist_ids)} playlists for window {context.partition_key} from "
            f"{'the bundled SYNTHETIC sample' if spotify.is_sample else source.api_url}"
        )
        snapshots = PlaylistExtractor(
            source,
            concurrency=settings.concurrency,
            market=settings.market,
            log=context.log.info,
            warn=context.log.warning,
            previous=previous,
        ).extract(playlist_ids)
        enrichment = _enrich(spotify, source, snapshots, context)
        counts = source.counts
    if counts.get("rate_limited"):
        context.log.warning(_rate_limit_summary(counts, settings.concurrency))

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
    try:
        manifest = store.write_window(
            context.partition_key,
            {s.playlist_id: s.to_document(window_facts) for s in snapshots},
            tag=context.run.run_id.split("-")[0],
            enrichment=enrichment.document_to_keep(window_facts),
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


def _previous_window(context: dg.AssetExecutionContext, store: SnapshotStore, settings: SpotifySettings) -> PreviousWindow:
    """The window before this one, whose documents unchanged playlists may reuse (none before
    the first window)."""
    first_key = context.assets_def.partitions_def.get_first_partition_key()  # type: ignore[union-attr]
    return PreviousWindow.open(
        store,
        previous_key(context.partition_key, first_key) if first_key else None,
        ReusePolicy(settings.reuse_rows, settings.full_reread_windows),
        warn=context.log.warning,
    )


def _rate_limit_summary(counts: dict[str, int], concurrency: int) -> str:
    return (
        f"{counts['rate_limited']} HTTP 429 answer(s): every worker paused {counts['paused_ms'] / 1000:.1f} s in all, "
        f"and the requests in flight went down to {counts['lowest_in_flight']} of {concurrency}"
    )


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
        **_request_counts(snapshots, counts),
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


def _request_counts(snapshots: list[PlaylistSnapshot], counts: dict[str, int]) -> dict[str, Any]:
    """What this window cost in API requests, and what reusing unchanged playlists saved.

    `requests`: made (metadata and pages; a retry is not another one); `pages_reread`: the page
    requests among them (every request after a playlist's metadata request);
    `requests_saved`: pages not requested because a playlist's rows were reused;
    `playlists_reused`; `full_reads`: playlists read fully, by why they were not reused.
    """
    reuses = [s.extraction.get("reuse") or {} for s in snapshots if s.ok]
    full_reads = Counter(r["why"] for r in reuses if r and not r.get("reused"))
    return {
        "requests": sum(s.extraction["requests"] for s in snapshots),
        "requests_saved": sum(r.get("requests_saved", 0) for r in reuses if r.get("reused")),
        "playlists_reused": sum(1 for r in reuses if r.get("reused")),
        "pages_reread": sum(max(0, s.extraction["requests"] - 1) for s in snapshots),
        "full_reads": dg.MetadataValue.json(dict(sorted(full_reads.items()))),
        "retries": counts.get("retries", 0),
        "token_renewals": counts.get("token_renewals", 0),
        # the rate gate (lib/spotify/rate_gate.py): 429s seen, and the time every worker waited
        "rate_limited_429s": counts.get("rate_limited", 0),
        "time_paused_s": round(counts.get("paused_ms", 0) / 1000, 1),
    }


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
            "reused": _reused_text(facts.get("reuse")),
            "not_songs": ", ".join(f"{s['reason']}: {s['count']}" for s in facts.get("skipped", [])),
            "shape": f"{facts['container']}/{'+'.join(sorted(keys)) or '-'}" if facts["container"] else "",
            "reason": error["message"] if error else "",
        }
    )


def _reused_text(reuse: dict[str, Any] | None) -> str:
    if not reuse or not reuse.get("reused"):
        return ""
    return f"{reuse['from_window']} (v {reuse['from_version']}; {reuse['requests_saved']} requests saved)"


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
