"""Check evaluations as Dagster's event log records them, turned into the plain
`Evaluation` values the alert logic in `lib/alerts/delivery.py` decides on."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import dagster as dg

from spotify_assets.lib.alerts.delivery import MAX_EVALUATIONS_PER_TICK, Evaluation, iso_seconds, truncate

_PARTITION_TAG = "dagster/partition"
_RANGE_START_TAG = "dagster/asset_partition_range_start"
_RANGE_END_TAG = "dagster/asset_partition_range_end"


def evaluation_from_entry(storage_id: int, entry: Any, run_tags: Mapping[str, str] | None = None) -> Evaluation | None:
    """The evaluation in an ASSET_CHECK_EVALUATION event log entry (None for any other entry).

    A check whose spec has no partitions definition records no partition even when it ran in a
    window's run: the window is then taken from the run's partition tags.
    """
    event = getattr(entry, "dagster_event", None)
    if event is None or event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        return None
    data = event.asset_check_evaluation_data
    window = data.partition or _window_of_run(run_tags or {})
    return Evaluation(
        storage_id=storage_id,
        asset_path=tuple(data.asset_key.path),
        check=data.check_name,
        passed=bool(data.passed),
        severity="WARN" if data.severity == dg.AssetCheckSeverity.WARN else "ERROR",
        blocking=bool(data.blocking),
        window=window,
        description=data.description,
        metadata={name: plain_value(value) for name, value in (data.metadata or {}).items()},
        run_id=entry.run_id or None,
        timestamp=float(entry.timestamp),
    )


def _window_of_run(tags: Mapping[str, str]) -> str | None:
    if tags.get(_PARTITION_TAG):
        return tags[_PARTITION_TAG]
    start, end = tags.get(_RANGE_START_TAG), tags.get(_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def plain_value(value: Any) -> Any:
    """A metadata value as JSON: numbers, booleans and null as they are, the rest as text
    (markdown, JSON, tables...) cut to about 1,000 characters."""
    if isinstance(value, dg.TimestampMetadataValue):
        return iso_seconds(value.value)
    if isinstance(value, dg.TableMetadataValue):
        return truncate(json.dumps([record.data for record in value.records], default=str))
    raw = value.value if isinstance(value, dg.MetadataValue) else value
    if raw is None or isinstance(raw, bool | int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else str(raw)
    if isinstance(raw, str):
        return truncate(raw)
    if isinstance(raw, Mapping | list | tuple):
        return truncate(json.dumps(raw, default=str))
    return truncate(str(raw))


def read_evaluations(
    instance: dg.DagsterInstance, after: int, *, limit: int = MAX_EVALUATIONS_PER_TICK
) -> tuple[list[Evaluation], int]:
    """Check evaluations after the storage id `after`, oldest first, and the last id read.

    `get_logs_for_all_runs_by_log_id` reads the cross-run index, where every event log storage
    (SQLite's run-sharded default included) keeps check evaluations under one increasing id.
    `get_event_records` with an id cursor raises on that SQLite storage.
    """
    batch = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=after, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=limit
    )
    entries = sorted(batch.items())
    cursor = entries[-1][0] if entries else after
    run_ids = sorted({entry.run_id for _, entry in entries if entry.run_id})
    tags: dict[str, Mapping[str, str]] = {}
    for chunk in range(0, len(run_ids), 200):  # bounded IN lists
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids[chunk : chunk + 200])):
            tags[record.dagster_run.run_id] = record.dagster_run.tags
    evaluations = []
    for storage_id, entry in entries:
        evaluation = evaluation_from_entry(storage_id, entry, tags.get(entry.run_id))
        if evaluation is not None:
            evaluations.append(evaluation)
    return evaluations, cursor


def lookback_start(instance: dg.DagsterInstance, cutoff: float) -> int:
    """The storage id after which check evaluations are at or after `cutoff` (epoch seconds).

    A binary search over the index (one single-row query per step), so a sensor starting on an
    instance with a long history reads only the last day, not the whole history.
    """
    storage = instance.event_log_storage

    def first_after(storage_id: int) -> Any | None:
        batch = storage.get_logs_for_all_runs_by_log_id(
            after_cursor=storage_id, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1
        )
        return next(iter(batch.values()), None)

    low, high = -1, max(storage.get_maximum_record_id() or -1, -1)
    while low < high:
        middle = (low + high) // 2
        entry = first_after(middle)
        if entry is None or entry.timestamp >= cutoff:
            high = middle
        else:
            low = middle + 1
    return low
