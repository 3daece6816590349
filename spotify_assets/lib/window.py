"""The 8-hour window every partitioned table shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Window:
    """A half-open [start, end) range of window_start values, in UTC."""

    start: datetime
    end: datetime

    def literals(self) -> tuple[str, str]:
        fmt = "%Y-%m-%d %H:%M:%S+00:00"
        return (self.start.astimezone(timezone.utc).strftime(fmt), self.end.astimezone(timezone.utc).strftime(fmt))
