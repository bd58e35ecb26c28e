"""Time as a dependency, so tests can move it instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time; tests pass a clock that only moves when told to."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return datetime.fromtimestamp(self.time(), UTC)
