"""What runs periodically, and the in-process schedule of the embedded default.

With Redis the ``scheduler`` process (:mod:`server.tasks.scheduler`) queues these jobs for
the workers. Without Redis there is no shared queue, so the node queues them itself on its
in-process broker every interval (:class:`LocalSchedule`): ``make run`` alone runs the
reminders and sweeps.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from taskiq import AsyncBroker

from server.aio import cancel_and_wait
from server.settings import Settings

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job queued every ``interval_s`` seconds."""

    task: str
    interval_s: int


def periodic_jobs(settings: Settings) -> list[Periodic]:
    """Reminders and the sweeps (deliveries, notifications, erasures) each tick; purge hourly."""
    tick = settings.scheduler_tick_s
    return [
        Periodic("reminders.due_soon", tick),
        Periodic("webhooks.requeue_stalled", tick),
        Periodic("notifications.requeue_stalled", tick),
        Periodic("accounts.finish_erasures", tick),
        Periodic("retention.purge", max(tick, PURGE_EVERY_S)),
    ]


class LocalSchedule:
    """Queues the periodic jobs on the node's own (in-process) broker."""

    def __init__(self, broker: AsyncBroker, jobs: list[Periodic]) -> None:
        self._broker = broker
        self._jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Run one loop per job in the background."""
        self._tasks = [
            asyncio.create_task(self._every(job), name=f"schedule-{job.task}") for job in self._jobs
        ]

    async def stop(self) -> None:
        """Stop the loops."""
        await cancel_and_wait(self._tasks)

    async def _every(self, job: Periodic) -> None:
        while True:
            await asyncio.sleep(job.interval_s)
            found = self._broker.find_task(job.task)
            try:
                if found is not None:
                    await found.kiq()
            except Exception:
                log.exception("could not queue a periodic job", extra={"job": job.task})
