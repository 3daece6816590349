"""`spotify-assets`: the demo run, and the one-time command that obtains a refresh token."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import webbrowser
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

DEMO_WINDOWS = 12


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotify-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="materialize the whole graph on the embedded default (local files, bundled synthetic sample)",
    )
    demo.add_argument(
        "--windows", type=int, default=DEMO_WINDOWS,
        help=f"how many recent 8-hour windows (default {DEMO_WINDOWS}, four days: a one-day forecast needs 7 to be judged, more to be judged well)",
    )
    demo.add_argument(
        "--horizon", type=int, default=None,
        help="forecast horizon of the popularity model, in 8-hour windows (default: the model's, 3 = one day)",
    )

    auth = commands.add_parser(
        "auth", help="obtain a Spotify refresh token (Authorization Code flow, loopback redirect)"
    )
    auth.add_argument("--redirect-uri", default=None, help="default: SPOTIFY_REDIRECT_URI or http://127.0.0.1:8888/callback")
    auth.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    auth.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect")

    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(args.windows, args.horizon)
    return run_auth(args.redirect_uri, open_browser=not args.no_browser, timeout_s=args.timeout)


def run_demo(windows: int, horizon: int | None = None) -> int:
    if windows < 1:
        print("--windows must be at least 1", file=sys.stderr)
        return 2
    if horizon is not None and horizon < 1:
        print("--horizon must be at least 1", file=sys.stderr)
        return 2
    model_config = {} if horizon is None else {"ops": {"popularity_model_training": {"config": {"horizon_windows": horizon}}}}
    # The demo is the embedded default whatever the shell holds: local files and the synthetic
    # sample, never a cloud account or real credentials.
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN", "SPOTIFY_PLAYLISTS"):
        os.environ.pop(name, None)
    os.environ["SPOTIFY_ASSETS_DEPLOYMENT"] = "local"

    from spotify_assets.lib.settings import Settings, SettingsError, writable_problem

    try:
        settings = Settings.from_env(os.environ)  # the message the code location shows at load
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    data_dir = settings.data_dir
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster_home")
    # the demo also writes Dagster's run storage: checked like the settings, named the same way
    problem = writable_problem(dagster_home, directory=True)
    if problem is not None:
        source = f"DAGSTER_HOME={os.environ['DAGSTER_HOME']!r}" if os.environ.get("DAGSTER_HOME") else "SPOTIFY_ASSETS_DATA_DIR"
        print(SettingsError([f"{source}: Dagster's run storage {dagster_home} {problem[1]}"]), file=sys.stderr)
        return 2
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home)

    import logging

    import dagster as dg

    from spotify_assets.definitions import defs

    # When the model is not retrained its checks emit nothing, by design, and Dagster notes it
    # once per check ("... will proceed without gating on it"; the predictions step is skipped
    # all the same). The run log says why; the demo's console need not repeat Dagster's note.
    logging.getLogger("dagster._core.execution.plan.active").setLevel(logging.ERROR)
    from spotify_assets.lib.raw.store import ROOT

    definitions = defs()
    job = definitions.resolve_job_def("spotify_pipeline_job")
    keys = job.partitions_def.get_partition_keys()[-windows:]  # the settings' windows
    if not keys:
        print(f"No 8-hour window has closed since SPOTIFY_ASSETS_FIRST_WINDOW ({settings.first_window}).", file=sys.stderr)
        return 2
    print(f"spotify-assets demo: {len(keys)} window(s) {keys[0]} .. {keys[-1]} on the bundled SYNTHETIC sample")
    failed = []
    with dg.DagsterInstance.get() as instance:
        for line in fail_abandoned_runs(instance):
            print(line)
        for key in keys:
            result = job.execute_in_process(
                partition_key=key,
                instance=instance,
                raise_on_error=False,
                # errors only: the forecast's "not retrained yet" warnings of the first windows are
                # the runs' own log (the UI shows them); the results below say where the model stands
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}, **model_config},
                tags=_demo_tags(),
            )
            steps = len(result.get_asset_materialization_events())
            checks = result.get_asset_check_evaluations()
            failing = [f"{c.asset_key.to_user_string()}/{c.check_name} ({c.severity.value})" for c in checks if not c.passed]
            print(
                f"  window {key}: {'ok' if result.success else 'FAILED'} ({steps} asset(s) materialized, "
                f"{len(checks) - len(failing)} of {len(checks)} checks passed)"
            )
            for name in failing:
                print(f"    check failed: {name}")
            if not result.success:
                failed.append(f"window {key}")
        # Listening history: the bundled synthetic exports, dropped where a person drops theirs.
        from spotify_assets.lib.listening.files import LISTENING_PREFIX
        from spotify_assets.lib.samples.listening import write_sample_exports

        from spotify_assets.lib.listening.exports import detect_format

        written = [p for p in write_sample_exports(data_dir / LISTENING_PREFIX, now=datetime.now(timezone.utc)) if detect_format(p.name)]
        result = definitions.resolve_job_def("listening_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags=_demo_tags(),
        )
        checks = result.get_asset_check_evaluations()
        added = next(
            (e.materialization.metadata["plays_added"].value for e in result.get_asset_materialization_events()
             if e.asset_key.to_user_string() == "streams"),
            0,
        )
        print(
            f"  listening history: {'ok' if result.success else 'FAILED'} ({len(written)} synthetic export files in "
            f"{data_dir / LISTENING_PREFIX}, {added} new plays; {len(result.get_asset_materialization_events())} asset(s) "
            f"materialized, {sum(c.passed for c in checks)} of {len(checks)} checks passed)"
        )
        if not result.success:
            failed.append("listening history")
        model_lines = _model_lines(instance, data_dir)

    store = definitions.resources["raw_store"].store()  # the store the runs just wrote
    newest = store.read_manifest(keys[-1])
    print("\nResults")
    print(f"  data directory:       {data_dir}")
    print(f"  raw snapshots:        {store.uri(ROOT)}")
    if newest is not None:
        print(f"  newest window:        {len(newest.documents)} playlist documents, manifest {store.uri(store.manifest_key(keys[-1]))}")
        for playlist_id, entry in newest.documents.items():
            print(f"    {playlist_id}  {entry['status']:6}  {store.uri(entry['key'])}")
    _print_warehouse(definitions.resources["warehouse"])
    for line in model_lines:
        print(line)
    report = data_dir / "dashboard" / "index.html"
    if report.exists():
        print(f"  dashboard:            {report} (open it in a browser; it needs no network)")
    print(f"  Dagster runs:         {dagster_home}")
    print("\nBrowse the runs in the UI:")
    print(f'  DAGSTER_HOME="{dagster_home}" python3 -m uv run dg dev')
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


# Demo runs execute in this process: the tag says which process, so that a later demo can tell
# a run whose process was killed (it stays STARTED in Dagster's storage) from a live one.
RUN_PROCESS_TAG = "spotify-assets/process"


def _demo_tags() -> dict[str, str]:
    return {RUN_PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"}


def fail_abandoned_runs(instance) -> list[str]:  # type: ignore[no-untyped-def]
    """Mark as failed the demo runs left STARTED by a process that no longer exists (killed, or
    the machine stopped), so the UI does not show them running forever. Runs launched by the
    daemon are not ours to judge: Dagster's code server fails those whose process died."""
    import dagster as dg

    lines = []
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]), limit=1000
    )
    for record in records:
        run = record.dagster_run
        owner = run.tags.get(RUN_PROCESS_TAG, "")
        run_host, _, pid = owner.rpartition(":")
        if run_host != host or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        message = (
            f"The process that ran this demo run ({owner}) no longer exists: it was killed or the machine "
            "stopped. Marked failed by the next `spotify-assets demo`; its writes are atomic, so what it "
            "did not finish was not written."
        )
        instance.report_engine_event(message, run)
        instance.report_run_failed(run)
        lines.append(f"  marked run {run.run_id[:8]} ({run.job_name}) failed: its process {pid} no longer exists")
    return lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _print_warehouse(warehouse) -> None:  # type: ignore[no-untyped-def]
    """Row counts per table and view in the DuckDB warehouse, and the current top artists."""
    from spotify_assets.defs.analytics.views import view_names
    from spotify_assets.lib.tables.schema import DECLARED_TABLES, TABLES

    print(f"  warehouse (DuckDB):   {warehouse.database}, schema {warehouse.schema_name}")
    try:
        present = warehouse.tables()
        # one query (one connection to the file) for every table's and view's counts
        names = [n for n in (*DECLARED_TABLES, *view_names()) if n in present]
        counts = warehouse.query(
            " UNION ALL ".join(
                f"SELECT {i} AS i, COUNT(*) AS n, "
                + ("COUNT(DISTINCT window_start)" if name in TABLES else "NULL")
                + f" AS w FROM {warehouse.qualified(name)}"
                for i, name in enumerate(names)
            )
        ).sort_values("i")
        for name, row in zip(names, counts.itertuples()):
            windows = f" in {int(row.w)} window(s)" if name in TABLES else ""
            kind = "table" if name in DECLARED_TABLES else "view "
            print(f"    {kind} {name:28} {int(row.n):>7} rows{windows}")
        top = warehouse.query(f"SELECT artist_rank, artist_name, song_count FROM {warehouse.qualified('top_artists')} ORDER BY 1")
        print("  top artists now:      " + "; ".join(f"{r.artist_rank}. {r.artist_name} ({r.song_count} songs)" for r in top.itertuples()))
    except Exception as err:  # the runs' own failures were reported above
        print(f"    (cannot read the warehouse: {err})")


def _model_lines(instance, data_dir: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """The stored popularity model's held-out figures, and why the last run did not store one."""
    import dagster as dg

    key = dg.AssetKey("popularity_model")
    lines = []
    stored = next(iter(instance.fetch_materializations(key, limit=1).records), None)
    observed = next(iter(instance.fetch_observations(key, limit=1).records), None)
    if observed is not None and (stored is None or observed.storage_id > stored.storage_id):
        lines.append(f"  popularity model:     {observed.asset_observation.description}")
    if stored is None or stored.asset_materialization is None:
        return lines or ["  popularity model:     not trained (see the runs above)"]
    m = {k: v.value for k, v in stored.asset_materialization.metadata.items()}
    from spotify_assets.lib.model.popularity import MODEL_LABELS

    lines += [
        f"  popularity model:     version {m['model_version']}, {MODEL_LABELS.get(m['champion'], m['champion'])} forecasting "
        f"{m['horizon_windows']} window(s) ahead, trained on {m['trained_pairs']} pairs of {m['trained_songs']} songs",
        f"                        held-out MAE {m['mae']:.2f} ({m['held_out_pairs']} pairs; {m['mae_new'] if m['mae_new'] is not None else '-'} "
        f"on {m['held_out_new']} of songs new in their window) against {m['persistence_mae']:.2f} for persistence, "
        f"{m['global_mean_mae']:.2f} for the global mean and {m['artist_mean_mae']:.2f} for the artist's other songs",
        f"                        stored in {data_dir / 'models' / 'popularity_model'} ({m['model_size_mb']:.1f} MB); "
        "rising songs in the rising_songs view; explore it in notebooks/popularity_model.ipynb",
    ]
    return lines


def run_auth(redirect_uri: str | None, *, open_browser: bool, timeout_s: float) -> int:
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError, start_local_http_server

    from spotify_assets.lib.spotify.client import DEFAULT_ACCOUNTS_URL, DEFAULT_REDIRECT_URI, USER_SCOPES

    client_id = os.environ.get("SPOTIFY_CLIENT_ID", "").strip()
    client_secret = os.environ.get("SPOTIFY_CLIENT_SECRET", "").strip()
    missing = [n for n, v in (("SPOTIFY_CLIENT_ID", client_id), ("SPOTIFY_CLIENT_SECRET", client_secret)) if not v]
    if missing:
        print(f"Set {' and '.join(missing)} first (from your app at developer.spotify.com).", file=sys.stderr)
        return 2
    redirect_uri = redirect_uri or os.environ.get("SPOTIFY_REDIRECT_URI") or DEFAULT_REDIRECT_URI
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or not parts.port:
        print(
            f"{redirect_uri!r} is not a loopback redirect URI with a port, like {DEFAULT_REDIRECT_URI} "
            "(Spotify accepts http only for loopback IP addresses).",
            file=sys.stderr,
        )
        return 2
    accounts = (os.environ.get("SPOTIFY_ACCOUNTS_URL") or DEFAULT_ACCOUNTS_URL).rstrip("/")
    oauth = SpotifyOAuth(
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        scope=USER_SCOPES,
        cache_handler=MemoryCacheHandler(),  # spotipy's default would write a .cache file
        open_browser=False,
        state=secrets.token_urlsafe(16),
    )
    oauth.OAUTH_AUTHORIZE_URL = f"{accounts}/authorize"
    oauth.OAUTH_TOKEN_URL = f"{accounts}/api/token"

    server = start_local_http_server(parts.port)  # spotipy's loopback receiver
    server.timeout = timeout_s
    url = oauth.get_authorize_url()
    print(f"Add {redirect_uri} to your app's Redirect URIs, then open this URL and approve:\n\n  {url}\n", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.handle_request()
    finally:
        server.server_close()
    if server.error is not None:
        print(f"Authorization failed: {server.error}", file=sys.stderr)
        return 1
    if server.auth_code is None:
        print(f"No redirect reached {redirect_uri} within {timeout_s:g} s.", file=sys.stderr)
        return 1
    if server.state != oauth.state:
        print("The redirect's state does not match this request; not trusting it.", file=sys.stderr)
        return 1
    try:
        token = oauth.get_access_token(server.auth_code, as_dict=True, check_cache=False)
    except SpotifyOauthError as err:
        print(f"Spotify refused the authorization code: {err.error}", file=sys.stderr)
        return 1
    print("Store this refresh token as a secret (it is shown once, never logged or written to disk):\n")
    print(f"  SPOTIFY_REFRESH_TOKEN={token['refresh_token']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
