"""UTC timestamps as the API writes them: ISO 8601 with a `Z`."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_z(moment: datetime | None = None, timespec: str = "auto") -> str:
    """`moment` (default: now) in UTC as '2026-11-21T08:00:00Z'."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")
