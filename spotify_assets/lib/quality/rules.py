"""Data-quality checks of one window: the rules, as SQL both warehouses run, and their verdicts.

Nothing here knows Dagster: `defs/playlists/checks.py` turns every `TableCheck` and `RawCheck` into an
asset check. A table check gets a `WindowScope` (how to query the warehouse, and the window);
a raw check gets the window's manifest and the one before it. Each returns an `Outcome`: passed
or not, a one-line summary, counts, and a sample of the failing keys with playlist names where
there are some, so the person who gets the alert knows what to look at.

Severity: integrity (keys, references, ranges) is an ERROR and blocks what is built downstream
(views, model); the rest (completeness, unread playlists, volume, freshness, schema drift) warns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from spotify_assets.lib.lazy import lazy
from spotify_assets.lib.tables.schema import PARTITION_COLUMN, TABLES
from spotify_assets.lib.warehouse.base import Dialect
from spotify_assets.lib.window import WINDOW_LENGTH, Window

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy("pandas")

SAMPLE_ROWS = 10
MS_PER_DAY = 86_400_000
ADDED_AT_SKEW = "5 minutes"  # clocks differ: an added_at this far past the read is tolerated


@dataclass(frozen=True)
class Outcome:
    passed: bool
    summary: str
    counts: dict[str, int | float | str] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)  # failing rows, at most SAMPLE_ROWS


# --- table checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowScope:
    """One window of the warehouse, as the checks see it."""

    query: Callable[[str], pd.DataFrame]  # lower-case column names
    schema_ref: str
    window: Window
    dialect: Dialect

    def t(self, table: str) -> str:
        return f"{self.schema_ref}.{table}"

    def window_of(self, table: str) -> str:
        """`schema.table WHERE <in the window>`: more conditions follow with AND."""
        return f"{self.t(table)} WHERE {self.dialect.window_predicate(self.window)}"

    def in_window(self, table: str, columns: str = "*") -> str:
        """A subquery of `table`'s rows in the window, for joins (alias it)."""
        return f"(SELECT {columns} FROM {self.window_of(table)})"

    def start_timestamp(self) -> str:
        """The window's start as a timestamp literal of the dialect."""
        return self.dialect.timestamp(self.window.literals()[0])

    def rows(self, sql: str) -> list[dict[str, Any]]:
        frame = self.query(sql)
        return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]

    def one(self, sql: str) -> dict[str, Any]:
        rows = self.rows(sql)
        return rows[0] if rows else {}


@dataclass(frozen=True)
class TableCheck:
    table: str
    name: str
    blocking: bool  # True: severity ERROR, downstream assets do not build on a failure
    description: str
    run: Callable[[WindowScope], Outcome]


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _key_sql(columns: tuple[str, ...], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


def unique_key(table: str) -> TableCheck:
    key = TABLES[table].key
    cols = _key_sql(key)
    any_null = " OR ".join(f"{c} IS NULL" for c in key)

    def run(s: WindowScope) -> Outcome:
        # one pass: every key's row count (a null key's rows group together), then the totals
        counts = s.one(
            "SELECT COALESCE(SUM(n), 0) AS n_rows, COALESCE(SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END), 0) AS duplicated_keys, "
            "COALESCE(SUM(n - 1), 0) AS extra_rows, COALESCE(SUM(null_rows), 0) AS null_keys FROM "
            f"(SELECT COUNT(*) AS n, SUM(CASE WHEN {any_null} THEN 1 ELSE 0 END) AS null_rows "
            f"FROM {s.window_of(table)} GROUP BY {cols}) k"
        )
        total, dup, null = int(counts["n_rows"]), int(counts["duplicated_keys"]), int(counts["null_keys"])
        sample = (
            s.rows(
                f"SELECT {cols}, COUNT(*) AS copies FROM {s.window_of(table)} AND NOT ({any_null}) "
                f"GROUP BY {cols} HAVING COUNT(*) > 1 ORDER BY copies DESC, {cols} LIMIT {SAMPLE_ROWS}"
            )
            if dup
            else []
        )
        stats = {"rows": total, "duplicated_keys": dup, "extra_rows": int(counts["extra_rows"]), "null_keys": null}
        if dup or null:
            return Outcome(
                False,
                f"{table}: {dup} key(s) ({', '.join(key)}) appear more than once "
                f"({stats['extra_rows']} extra rows) and {null} row(s) have a null key",
                stats,
                sample,
            )
        return Outcome(True, f"{table}: {total} rows, every ({', '.join(key)}) unique and set", stats)

    return TableCheck(
        table,
        "unique_key",
        True,
        f"Within a window, ({', '.join(key)}) is set on every row and unique.",
        run,
    )


def references(table: str, refs: list[tuple[str, str, str]]) -> TableCheck:
    """refs: (column, parent table, parent column); the parent row must be in the same window."""

    def run(s: WindowScope) -> Outcome:
        stats: dict[str, int | float | str] = {}
        sample: list[dict[str, Any]] = []
        failing = []
        for column, parent, parent_column in refs:
            nullable = next(c.nullable for c in TABLES[table].columns if c.name == column)
            # the parent keys of the window, each once: the join neither multiplies nor drops a row
            joined = (
                f"FROM {s.in_window(table, f'{PARTITION_COLUMN}, {column}')} c "
                f"LEFT JOIN {s.in_window(parent, f'DISTINCT {PARTITION_COLUMN}, {parent_column}')} p "
                f"ON p.{PARTITION_COLUMN} = c.{PARTITION_COLUMN} AND p.{parent_column} = c.{column}"
            )
            unresolved = f"c.{column} IS NOT NULL AND p.{parent_column} IS NULL"
            counts = s.one(
                f"SELECT COALESCE(SUM(CASE WHEN {unresolved} THEN 1 ELSE 0 END), 0) AS unresolved, "
                f"COUNT(*) - COUNT(c.{column}) AS nulls {joined}"
            )
            missing, nulls = int(counts["unresolved"]), int(counts["nulls"])
            stats[f"{column}_unresolved_rows"] = missing
            stats[f"{column}_null_rows"] = nulls
            if missing or (nulls and not nullable):
                failing.append(f"{missing} row(s) whose {column} is not in {parent}")
                if not nullable and nulls:
                    failing.append(f"{nulls} row(s) without {column}")
                for r in s.rows(
                    f"SELECT c.{column} AS missing_key, COUNT(*) AS rows_pointing {joined} WHERE {unresolved} "
                    f"GROUP BY c.{column} ORDER BY rows_pointing DESC, missing_key LIMIT {SAMPLE_ROWS}"
                ):
                    sample.append({"column": column, "parent": parent, **r})
        if failing:
            return Outcome(False, f"{table}: " + "; ".join(failing) + " (same window)", stats, sample[:SAMPLE_ROWS])
        return Outcome(True, f"{table}: every " + ", ".join(f"{c} resolves to {p}" for c, p, _ in refs), stats)

    targets = ", ".join(f"{c} -> {p}.{pc}" for c, p, pc in refs)
    return TableCheck(table, "references_resolve", True, f"Every reference resolves within the window: {targets}.", run)


def _range_check(table: str, name: str, description: str, bad_sql: str, columns: str, what: str) -> TableCheck:
    key = _key_sql(TABLES[table].key)

    def run(s: WindowScope) -> Outcome:
        failing = f"{s.window_of(table)} AND ({bad_sql})"
        counts = s.one(
            f"SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN {bad_sql} THEN 1 ELSE 0 END), 0) AS n "
            f"FROM {s.window_of(table)}"
        )
        n, total = int(counts["n"]), int(counts["total"])
        if n:
            sample = s.rows(f"SELECT {key}, {columns} FROM {failing} ORDER BY {key} LIMIT {SAMPLE_ROWS}")
            return Outcome(False, f"{table}: {n} of {total} row(s) {what}", {"rows": total, "failing_rows": n}, sample)
        return Outcome(True, f"{table}: all {total} rows pass", {"rows": total, "failing_rows": 0})

    return TableCheck(table, name, True, description, run)


def _release_dates_bad_sql() -> str:
    # What the normalizer derives from release_date and its precision must agree with them:
    # no date where the API gave none or the year 0000 (never an invented January 1st or 1970),
    # the year as written, and a period as long as the precision.
    year = "TRY_CAST(SUBSTR(release_date, 1, 4) AS INTEGER)"
    no_date = f"(release_date IS NULL OR {year} IS NULL OR {year} = 0)"
    derived_null = "(release_year IS NULL AND release_period_start IS NULL AND release_period_end IS NULL)"
    day = (
        "(release_date_precision = 'day' AND LENGTH(release_date) = 10 AND TRY_CAST(release_date AS DATE) IS NOT NULL "
        "AND NOT (release_period_start = TRY_CAST(release_date AS DATE) AND release_period_end = release_period_start))"
    )
    month = (
        "(release_date_precision = 'month' AND NOT (MONTH(release_period_start) = TRY_CAST(SUBSTR(release_date, 6, 2) AS INTEGER) "
        "AND DAY(release_period_start) = 1 AND release_period_end = LAST_DAY(release_period_start)))"
    )
    whole_year = (
        "(release_date_precision = 'year' AND NOT (MONTH(release_period_start) = 1 AND DAY(release_period_start) = 1 "
        "AND MONTH(release_period_end) = 12 AND DAY(release_period_end) = 31))"
    )
    return (
        f"(release_date_precision IS NOT NULL AND release_date_precision NOT IN ('year', 'month', 'day'))"
        f" OR ({no_date} AND NOT {derived_null})"
        f" OR (NOT {no_date} AND (release_period_start IS NULL OR release_period_end IS NULL"
        f" OR release_period_start > release_period_end OR release_year IS NULL OR release_year <> {year}"
        f" OR YEAR(release_period_start) <> {year} OR YEAR(release_period_end) <> {year}"
        f" OR {day} OR {month} OR {whole_year}))"
    )


def completeness() -> TableCheck:
    def run(s: WindowScope) -> Outcome:
        skipped = "COALESCE(pl.episode_rows, 0) + COALESCE(pl.local_rows, 0) + COALESCE(pl.unavailable_rows, 0) + COALESCE(pl.other_rows, 0)"
        rows = s.rows(
            f"SELECT pl.playlist_id, pl.name, pl.rows_total, pl.rows_read, {skipped} AS skipped_with_reason, "
            f"COALESCE(pt.n, 0) AS song_rows_loaded "
            f"FROM {s.in_window('playlists')} pl LEFT JOIN (SELECT playlist_id, COUNT(*) AS n FROM {s.window_of('playlist_tracks')} "
            f"GROUP BY playlist_id) pt ON pt.playlist_id = pl.playlist_id "
            f"WHERE pl.status = 'ok' ORDER BY pl.playlist_id"
        )
        bad = [r for r in rows if r["rows_total"] is None or r["song_rows_loaded"] != r["rows_total"] - r["skipped_with_reason"]]
        stats = {"playlists_checked": len(rows), "incomplete_playlists": len(bad)}
        if bad:
            names = ", ".join(f"{r['name'] or r['playlist_id']}" for r in bad[:5])
            return Outcome(
                False,
                f"{len(bad)} of {len(rows)} playlist(s) have fewer or more song rows than their total minus the "
                f"rows skipped for a stated reason: {names}",
                stats,
                bad[:SAMPLE_ROWS],
            )
        return Outcome(True, f"all {len(rows)} playlists complete: song rows = total - skipped with a reason", stats)

    return TableCheck(
        "playlist_tracks",
        "playlists_complete",
        False,
        "For each playlist read in the window, its song rows equal the total the API reported minus the "
        "rows skipped for a stated reason (episodes, local files, unavailable tracks, rows without an id).",
        run,
    )


def added_at_not_in_future() -> TableCheck:
    def run(s: WindowScope) -> Outcome:
        where = f"pt.added_at > COALESCE(pl.extracted_at, CURRENT_TIMESTAMP) + INTERVAL '{ADDED_AT_SKEW}'"
        join = (
            f"FROM {s.in_window('playlist_tracks')} pt LEFT JOIN {s.t('playlists')} pl ON pl.playlist_id = pt.playlist_id "
            f"AND pl.{PARTITION_COLUMN} = pt.{PARTITION_COLUMN}"
        )
        n = int(s.one(f"SELECT COUNT(*) AS n {join} WHERE {where}")["n"])
        if n:
            sample = s.rows(
                f"SELECT pt.playlist_id, pl.name AS playlist_name, pt.position, pt.song_id, pt.added_at, pl.extracted_at "
                f"{join} WHERE {where} ORDER BY pt.playlist_id, pt.position LIMIT {SAMPLE_ROWS}"
            )
            names = sorted({r["playlist_name"] or r["playlist_id"] for r in sample})
            return Outcome(
                False,
                f"{n} playlist row(s) were added after the playlist was read: {', '.join(names)}",
                {"future_rows": n},
                sample,
            )
        return Outcome(True, "no row added after its playlist was read", {"future_rows": 0})

    return TableCheck(
        "playlist_tracks",
        "added_at_not_in_future",
        True,
        f"No row's added_at is later than when its playlist was read (extracted_at; {ADDED_AT_SKEW} of clock skew allowed).",
        run,
    )


def unreadable_documents() -> TableCheck:
    def run(s: WindowScope) -> Outcome:
        unreadable = f"{s.window_of('playlists')} AND status = 'unreadable'"
        n = int(s.one(f"SELECT COUNT(*) AS n FROM {unreadable}")["n"])
        if n:
            rows = s.rows(
                f"SELECT playlist_id, name, error_message FROM {unreadable} "
                f"ORDER BY playlist_id LIMIT {SAMPLE_ROWS}"
            )
            return Outcome(
                False,
                f"{n} stored document(s) could not be decoded: " + "; ".join(f"{r['playlist_id']}: {r['error_message']}" for r in rows[:3]),
                {"unreadable_documents": n},
                rows,
            )
        return Outcome(True, "every stored document decoded", {"unreadable_documents": 0})

    return TableCheck(
        "playlists",
        "documents_decoded",
        False,
        "Every raw document of the window could be decoded into the tables (a malformed one is skipped and named).",
        run,
    )


# Optional fields the API returns only to some apps: a Development Mode app gets no track or
# artist popularity, no followers or genres (since February/March 2026), and got no ISRC for
# a while. A field that came in the previous window and is missing from every row now means
# the app or the API changed: the views and the model must then do without it.
API_FIELDS: dict[str, tuple[str, ...]] = {
    "songs": ("popularity", "isrc"),
    "albums": ("popularity", "label"),
    "artists": ("popularity", "followers", "genres"),
}


def api_fields_returned(table: str) -> TableCheck:
    fields = API_FIELDS[table]

    def run(s: WindowScope) -> Outcome:
        counted = ", ".join(f"COUNT({f}) AS {f}" for f in fields)
        now = s.one(f"SELECT COUNT(*) AS n_rows, {counted} FROM {s.window_of(table)}")
        # the newest earlier window that has rows in the table (none: no row before this window)
        before = s.one(
            f"SELECT {PARTITION_COLUMN} AS previous, COUNT(*) AS n_rows, {counted} FROM {s.t(table)} "
            f"WHERE {PARTITION_COLUMN} = (SELECT MAX({PARTITION_COLUMN}) FROM {s.t(table)} WHERE {PARTITION_COLUMN} < {s.start_timestamp()}) "
            f"GROUP BY {PARTITION_COLUMN}"
        )
        previous = None
        if before:
            previous = pd.Timestamp(before["previous"]).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S+00:00")
        stats: dict[str, int | float | str] = {"rows": int(now.get("n_rows") or 0)}
        stopped = []
        for f in fields:
            stats[f"{f}_rows"] = int(now.get(f) or 0)
            if previous is not None:
                stats[f"{f}_rows_previous_window"] = int(before.get(f) or 0)
            if now.get("n_rows") and not now.get(f) and before.get(f):
                stopped.append(f)
        if previous is not None:
            stats["previous_window"] = previous
        if stopped:
            return Outcome(
                False,
                f"{table}: the API stopped returning {', '.join(stopped)} (present in the window before, missing from all "
                f"{stats['rows']} rows now). A Development Mode app gets no popularity, followers or genres since "
                "February 2026; views rank by playlist appearances instead and the model cannot train on this window.",
                stats,
            )
        absent = [f for f in fields if now.get("n_rows") and not now.get(f)]
        note = f"; never returned so far: {', '.join(absent)}" if absent else ""
        return Outcome(True, f"{table}: no field dropped since the previous window{note}", stats)

    return TableCheck(
        table,
        "api_fields_returned",
        False,
        f"Schema drift: warns when the API stops returning {', '.join(fields)} for a whole window after returning "
        "them the window before. Spotify removed popularity, followers and genres for Development Mode apps in "
        "2026 (ISRC was removed, then restored): a change of app or of the API shows here first.",
        run,
    )


TABLE_CHECKS: list[TableCheck] = [
    *(unique_key(t) for t in TABLES),
    references("songs", [("album_id", "albums", "album_id"), ("artist_id", "artists", "artist_id")]),
    references("song_artists", [("song_id", "songs", "song_id"), ("artist_id", "artists", "artist_id")]),
    references("playlist_tracks", [("song_id", "songs", "song_id"), ("playlist_id", "playlists", "playlist_id")]),
    references("albums", [("artist_id", "artists", "artist_id")]),
    _range_check(
        "songs",
        "popularity_in_range",
        "popularity is between 0 and 100, or null where the API gives none (never a made-up 0).",
        "popularity < 0 OR popularity > 100",
        "popularity",
        "have a popularity outside 0..100",
    ),
    _range_check(
        "songs",
        "duration_in_range",
        "duration_ms is set, positive and under a day.",
        f"duration_ms IS NULL OR duration_ms <= 0 OR duration_ms >= {MS_PER_DAY}",
        "duration_ms",
        "have no duration, or one not between 1 ms and a day",
    ),
    _range_check(
        "albums",
        "release_dates_consistent",
        "release_year and release_period_start/_end agree with release_date at its precision: "
        "'2002' is all of 2002, '2002-05' all of May; no date where the API gave none or '0000'.",
        _release_dates_bad_sql(),
        "release_date, release_date_precision, release_year, release_period_start, release_period_end",
        "have release columns that disagree with release_date and its precision",
    ),
    added_at_not_in_future(),
    completeness(),
    unreadable_documents(),
    *(api_fields_returned(t) for t in API_FIELDS),
]


# --- raw snapshot checks (from the window's manifest) ----------------------------------------


@dataclass(frozen=True)
class RawCheck:
    name: str
    description: str
    run: Callable[[Mapping[str, dict[str, Any]], Mapping[str, dict[str, Any]] | None, float], Outcome]


def _label(pid: str, facts: Mapping[str, Any]) -> str:
    return f"{facts['name']} ({pid})" if facts.get("name") else pid


def _missing_facts(documents: Mapping[str, dict[str, Any]]) -> Outcome | None:
    if any("rows_read" not in d for d in documents.values()):
        return Outcome(
            False,
            "the window's manifest predates per-playlist facts: re-materialize raw_playlist_snapshots for this window",
            {"playlists": len(documents)},
        )
    return None


def all_rows_read(documents, previous, _share) -> Outcome:  # type: ignore[no-untyped-def]
    if (missing := _missing_facts(documents)) is not None:
        return missing
    ok = {pid: d for pid, d in documents.items() if d.get("status", "ok") == "ok"}
    bad = [
        {"playlist": _label(pid, d), "rows_total": d.get("rows_total"), "rows_read": d.get("rows_read")}
        for pid, d in sorted(ok.items())
        if d.get("rows_total") != d.get("rows_read")
    ]
    stats = {"playlists_read": len(ok), "incomplete_playlists": len(bad), "rows_read": sum(d.get("rows_read") or 0 for d in ok.values())}
    if bad:
        return Outcome(
            False,
            f"{len(bad)} playlist(s) stored fewer or more rows than the API's total: " + ", ".join(b["playlist"] for b in bad[:5]),
            stats,
            bad[:SAMPLE_ROWS],
        )
    return Outcome(True, f"all {len(ok)} playlists read completely ({stats['rows_read']} rows)", stats)


def playlists_readable(documents, previous, _share) -> Outcome:  # type: ignore[no-untyped-def]
    if (missing := _missing_facts(documents)) is not None:
        return missing
    failed = [
        {"playlist": _label(pid, d), "kind": (d.get("error") or {}).get("kind"), "reason": (d.get("error") or {}).get("message")}
        for pid, d in sorted(documents.items())
        if d.get("status", "ok") != "ok" and not d.get("kept")
    ]
    # Kept: not read on the last run; the window keeps its previous document (never worse).
    kept = []
    for pid, d in sorted(documents.items()):
        if facts := d.get("kept"):
            error = facts.get("error") or {}
            reason = f"{facts.get('reason')}; kept version {facts.get('from_version')}"
            if facts.get("unusable"):
                reason += f", itself unusable: {facts['unusable']}"
            kept.append({"playlist": _label(pid, d), "kind": error.get("kind") or "kept", "reason": reason})
    kinds: dict[str, int] = {}
    for f in failed:
        kinds[str(f["kind"])] = kinds.get(str(f["kind"]), 0) + 1
    stats: dict[str, int | float | str] = {"playlists": len(documents), "failed_playlists": len(failed), "kept_playlists": len(kept)}
    stats.update({f"failed_{k}": v for k, v in sorted(kinds.items())})
    if failed or kept:
        parts = []
        if failed:
            parts.append(
                f"{len(failed)} of {len(documents)} playlist(s) could not be read: "
                + "; ".join(f"{f['playlist']}: {f['kind']}" for f in failed[:5])
            )
        if kept:
            parts.append(
                f"{len(kept)} playlist(s) were not read on the last run and keep the window's previous document: "
                + "; ".join(f"{k['playlist']}: {k['kind']}" for k in kept[:5])
            )
        return Outcome(False, ". ".join(parts), stats, (failed + kept)[:SAMPLE_ROWS])
    return Outcome(True, f"all {len(documents)} playlists read", stats)


def volume_stable(documents, previous, share) -> Outcome:  # type: ignore[no-untyped-def]
    if (missing := _missing_facts(documents)) is not None:
        return missing
    if previous is None:
        return Outcome(True, "no previous window to compare with", {"playlists_compared": 0})
    dropped = []
    compared = 0
    for pid, d in sorted(documents.items()):
        before = previous.get(pid) or {}
        if d.get("status", "ok") != "ok" or before.get("status", "ok") != "ok" or not before.get("rows_read"):
            continue
        compared += 1
        was, now = before["rows_read"], d.get("rows_read") or 0
        if (was - now) / was > share:
            dropped.append({"playlist": _label(pid, d), "rows_before": was, "rows_now": now, "drop": f"{(was - now) / was:.0%}"})
    stats = {"playlists_compared": compared, "playlists_dropped": len(dropped), "max_drop_share": share}
    if dropped:
        return Outcome(
            False,
            f"{len(dropped)} playlist(s) lost more than {share:.0%} of their rows since the previous window: "
            + ", ".join(f"{x['playlist']} {x['rows_before']} -> {x['rows_now']}" for x in dropped[:5]),
            stats,
            dropped[:SAMPLE_ROWS],
        )
    return Outcome(True, f"no playlist lost more than {share:.0%} of its rows ({compared} compared)", stats)


RAW_CHECKS: list[RawCheck] = [
    RawCheck(
        "all_rows_read",
        "Completeness: each playlist read in the window stored as many rows as the API reported (its total).",
        all_rows_read,
    ),
    RawCheck(
        "playlists_readable",
        "Every configured playlist could be read in the window; lists those that could not (403 forbidden, "
        "404 not found, the 429 wait bound, ...) with the reason, and those whose previous document a re-run kept.",
        playlists_readable,
    ),
    RawCheck(
        "volume_stable",
        "No playlist's row count fell by more than SPOTIFY_ASSETS_VOLUME_DROP_SHARE (default 50%) since the previous window.",
        volume_stable,
    ),
]


def freshness(newest_window_end: datetime | None, now: datetime, grace_hours: float) -> Outcome:
    """The newest stored raw window ended no more than one window length plus the grace ago."""
    limit = WINDOW_LENGTH + timedelta(hours=grace_hours)
    if newest_window_end is None:
        return Outcome(False, "no raw window has been stored yet", {"max_age_hours": limit.total_seconds() / 3600})
    age = now.astimezone(timezone.utc) - newest_window_end
    stats: dict[str, int | float | str] = {
        "newest_window_end": newest_window_end.isoformat(),
        "age_hours": round(age.total_seconds() / 3600, 2),
        "max_age_hours": round(limit.total_seconds() / 3600, 2),
    }
    if age > limit:
        return Outcome(
            False,
            f"the newest raw window ended {stats['age_hours']} h ago (limit {stats['max_age_hours']} h): "
            "is the schedule running, and did its last runs succeed?",
            stats,
        )
    return Outcome(True, f"the newest raw window ended {stats['age_hours']} h ago", stats)
