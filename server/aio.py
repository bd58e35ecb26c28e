"""Stopping background tasks for sure.

redis-py 8.1 sometimes swallows a cancellation that lands while one of its commands is under
way (the command returns normally, the task carries on), so a loop stopped with one
``cancel()`` and an unbounded wait can keep a node from exiting on SIGTERM. Here a task is
cancelled again until it ends, within a bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)
RECANCEL_S = 0.1


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[object] | None], timeout_s: float = 5.0
) -> None:
    """Cancel ``tasks`` (again every 100 ms, until they end), waiting at most ``timeout_s``."""
    pending = {task for task in tasks if task is not None and not task.done()}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    if pending:
        names = sorted(task.get_name() for task in pending)
        log.warning("tasks still running after cancellation", extra={"tasks": names})
