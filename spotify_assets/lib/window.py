"""The 8-hour window every partitioned asset shares: 00:00, 08:00 and 16:00 UTC.

Its length, its schedule, its Dagster partition key ('2026-11-21-08:00'), its slug in paths and
object keys ('2026-11-21T0800Z') and its SQL literals are defined here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

WINDOW_HOURS = 8
WINDOW_LENGTH = timedelta(hours=WINDOW_HOURS)
WINDOW_CRON = f"0 */{WINDOW_HOURS} * * *"  # a window is named by its start and exists once closed
KEY_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition key format
SLUG_FORMAT = "%Y-%m-%dT%H%MZ"  # no colons: safe in paths, S3 keys and Hive partitions
_LITERAL_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"


def window_slug(partition_key: str) -> str:
    """'2026-11-21-08:00' -> '2026-11-21T0800Z'."""
    try:
        start = datetime.strptime(partition_key, KEY_FORMAT)
    except ValueError:
        raise ValueError(f"{partition_key!r} is not a window key like '2026-11-21-08:00'") from None
    return start.strftime(SLUG_FORMAT)


def window_of(partition_key: str) -> Window:
    """'2026-11-21-08:00' -> [08:00, 16:00) UTC on 2026-11-21."""
    try:
        start = datetime.strptime(partition_key, KEY_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"{partition_key!r} is not a window key like '2026-11-21-08:00'") from None
    return Window(start, start + WINDOW_LENGTH)


def previous_key(partition_key: str, first_key: str) -> str | None:
    """The key of the window before `partition_key`; None when it is `first_key` (or earlier)."""
    before = window_of(partition_key).start - WINDOW_LENGTH
    return before.strftime(KEY_FORMAT) if before >= window_of(first_key).start else None


def partition_key_of(slug: str) -> str:
    """'2026-11-21T0800Z' -> '2026-11-21-08:00'."""
    return datetime.strptime(slug, SLUG_FORMAT).strftime(KEY_FORMAT)


@dataclass(frozen=True)
class Window:
    """A half-open [start, end) range of window_start values, in UTC."""

    start: datetime
    end: datetime

    def literals(self) -> tuple[str, str]:
        """The bounds as the text both warehouses read as UTC timestamps."""
        return (
            self.start.astimezone(timezone.utc).strftime(_LITERAL_FORMAT),
            self.end.astimezone(timezone.utc).strftime(_LITERAL_FORMAT),
        )
