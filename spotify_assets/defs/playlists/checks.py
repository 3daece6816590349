"""Asset checks: every window of the raw snapshots and of every table, and raw freshness.

The rules live in `lib/quality/rules.py`. Integrity checks (keys, references, ranges) are ERROR and
blocking: when one fails, the views (and the model) downstream of that table are not built in
that run. The rest warn. The `asset_check_alerts` sensor (defs/alerts/sensor.py) tells a person.
"""

import warnings
from datetime import datetime, timezone

import dagster as dg

from spotify_assets.defs.playlists.raw import RAW_KEY
from spotify_assets.defs.io_managers import records_table, round_float
from spotify_assets.defs.resources import RawSnapshotStore, Warehouse
from spotify_assets.lib.quality import rules as quality
from spotify_assets.lib.raw.store import ManifestError
from spotify_assets.lib.settings import Settings
from spotify_assets.lib.window import Window, previous_key, window_of


# Checks partitioned like their assets (one verdict per window in the UI) are a preview
# feature of Dagster 1.13; the version is pinned below 1.14 and the tests run them end to end.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)


def _severity(blocking: bool) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN


def _result(asset_key: dg.AssetKey, name: str, blocking: bool, outcome: quality.Outcome, window: str | None) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {k: round_float(v) if isinstance(v, float) else v for k, v in outcome.counts.items()}
    metadata["summary"] = outcome.summary
    if window is not None:
        metadata["window"] = window
    if outcome.sample:
        metadata["failing_sample"] = records_table(outcome.sample)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=outcome.passed,
        severity=_severity(blocking),
        description=outcome.summary,
        metadata=metadata,
    )


def _crashed(err: Exception) -> quality.Outcome:
    return quality.Outcome(False, f"the check could not run: {type(err).__name__}: {err}")


def window_checks(windows: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The per-window checks, one verdict per window of `windows`: the raw snapshots' and the
    six tables'."""
    table_checks = dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                c.name,
                asset=dg.AssetKey(c.table),
                description=f"{'ERROR, blocking' if c.blocking else 'WARN'}. {c.description}",
                blocking=c.blocking,
                partitions_def=windows,
            )
            for c in quality.TABLE_CHECKS
        ],
        name="table_quality_checks",
        description="Keys, references, ranges, completeness and schema drift of one window of the six tables.",
    )(table_quality_checks)
    raw_checks = dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(c.name, asset=RAW_KEY, description=f"WARN. {c.description}", partitions_def=windows)
            for c in quality.RAW_CHECKS
        ],
        name="raw_quality_checks",
        description="Completeness, unread playlists and volume of one window of raw snapshots, from its manifest.",
    )(raw_quality_checks)
    return [raw_checks, table_checks]


def table_quality_checks(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    tw = context.partition_time_window
    outcomes: list[quality.Outcome] = []
    with warehouse.reader() as query:  # one connection for all the window's queries
        scope = quality.WindowScope(
            query=query, schema_ref=warehouse.schema_ref, window=Window(tw.start, tw.end), dialect=warehouse.client().dialect
        )
        for check in quality.TABLE_CHECKS:
            try:
                outcomes.append(check.run(scope))
            except Exception as err:  # one broken query must not hide the other checks' verdicts
                context.log.error(f"{check.table}/{check.name}: {err}")
                outcomes.append(_crashed(err))
    failed = []
    for check, outcome in zip(quality.TABLE_CHECKS, outcomes):
        if not outcome.passed:
            failed.append(f"{check.table}/{check.name}")
            log = context.log.error if check.blocking else context.log.warning
            log(f"{check.table}/{check.name} failed for window {context.partition_key}: {outcome.summary}")
        yield _result(dg.AssetKey(check.table), check.name, check.blocking, outcome, context.partition_key)
    context.log.info(
        f"window {context.partition_key}: {len(quality.TABLE_CHECKS) - len(failed)} of {len(quality.TABLE_CHECKS)} table checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )


def raw_quality_checks(context: dg.AssetCheckExecutionContext, raw_store: RawSnapshotStore, settings: dg.ResourceParam[Settings]):
    store = raw_store.store()
    key = context.partition_key
    broken: str | None = None
    try:
        manifest = store.read_manifest(key)
    except ManifestError as err:  # every check fails, naming the manifest's path
        manifest, broken = None, str(err)
    before = previous_key(key, settings.first_window)  # None: the first window
    try:
        previous = store.read_manifest(before) if manifest and before else None
    except ManifestError as err:
        context.log.warning(f"the previous window's manifest is unreadable, volume not compared: {err}")
        previous = None
    share = settings.quality.volume_drop_share
    for check in quality.RAW_CHECKS:
        if broken is not None:
            outcome = quality.Outcome(False, broken)
        elif manifest is None:
            outcome = quality.Outcome(False, f"window {key} has no raw snapshots: materialize raw_playlist_snapshots for it")
        else:
            try:
                outcome = check.run(manifest.documents, previous.documents if previous else None, share)
            except Exception as err:
                context.log.error(f"raw_playlist_snapshots/{check.name}: {err}")
                outcome = _crashed(err)
        if not outcome.passed:
            context.log.warning(f"raw_playlist_snapshots/{check.name} failed for window {key}: {outcome.summary}")
        yield _result(RAW_KEY, check.name, False, outcome, key)


@dg.asset_check(
    asset=RAW_KEY,
    name="fresh",
    description=(
        "WARN. The newest stored raw window ended no more than 8 hours plus SPOTIFY_ASSETS_FRESHNESS_GRACE_HOURS "
        "(default 1) ago. Evaluated every hour by the raw_freshness_schedule."
    ),
)
def raw_freshness(
    context: dg.AssetCheckExecutionContext, raw_store: RawSnapshotStore, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    windows = raw_store.store().windows()
    newest_end = None
    if windows:
        newest_end = window_of(max(windows)).end
    outcome = quality.freshness(newest_end, datetime.now(timezone.utc), settings.quality.freshness_grace_hours)
    if not outcome.passed:
        context.log.warning(f"raw_playlist_snapshots/fresh: {outcome.summary}")
    return _result(RAW_KEY, "fresh", False, outcome, max(windows) if windows else None)


raw_freshness_job = dg.define_asset_job(
    name="raw_freshness_job",
    selection=dg.AssetSelection.checks(raw_freshness),
    description="Evaluates the freshness check of the raw snapshots.",
)

raw_freshness_schedule = dg.ScheduleDefinition(
    name="raw_freshness_schedule",
    job=raw_freshness_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    description="Every hour at :15 UTC: is the newest raw window fresh?",
)
