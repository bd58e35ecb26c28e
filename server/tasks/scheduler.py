"""Entry point of the scheduler: ``taskiq scheduler server.tasks.scheduler:scheduler``.

taskiq's scheduler reads the periodic jobs (:func:`server.tasks.schedule.periodic_jobs`)
from a Redis schedule source, stored as JSON (never pickle), and queues each when due. The
jobs are written into the source at start-up, so ``SCHEDULER_TICK_S`` changes take effect on
a restart. Before queueing anything a scheduler must hold the lease ``<prefix>scheduler:lease``
(:class:`server.lease.RedisLease`, two ticks plus 5 s): however many schedulers run, one
acts and the others stand by, taking over within a lease time when the holder dies, and at
their next tick when it stops (SIGTERM hands the lease over). The jobs
themselves are idempotent (reminder claims in the database), so even a lease lost mid-send
reminds nobody twice.

Without ``REDIS_URL`` there is nothing to share a schedule through: the node runs it
(``python -m server.tasks.scheduler`` says so and exits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from taskiq import AsyncBroker, ScheduledTask, ScheduleSource, TaskiqScheduler
from taskiq.serializers import JSONSerializer
from taskiq_redis import ListRedisScheduleSource, RedisClusterScheduleSource

from server.lease import RedisLease
from server.observability.logging import configure_logging
from server.redis_client import RedisClient, create_redis, wait_until_answering
from server.settings import Settings
from server.tasks.broker import build_broker
from server.tasks.jobs import register_jobs
from server.tasks.schedule import Periodic, periodic_jobs

log = logging.getLogger(__name__)
EMBEDDED = (
    "REDIS_URL is not set: on the embedded default the node (make run) runs the periodic jobs "
    "itself; a separate scheduler is only needed with Redis."
)
LEASE_MARGIN_S = 5.0


class LeasedScheduler(TaskiqScheduler):
    """taskiq's scheduler that acts only while it holds the scheduler lease."""

    def __init__(
        self,
        broker: AsyncBroker,
        source: ScheduleSource,
        settings: Settings,
        redis: RedisClient | None = None,
    ) -> None:
        super().__init__(broker, [source])
        self._source = source
        self._settings = settings
        self._redis = redis
        self.lease: RedisLease | None = None

    async def startup(self) -> None:
        """Wait for Redis, connect, and (re)write the periodic jobs into the source.

        From here on SIGTERM stops the scheduler gracefully, handing the lease over.
        """
        configure_logging(self._settings.log_level)
        settings = self._settings
        self._redis = self._redis or create_redis(
            settings.redis_url or "", cluster=settings.redis_cluster
        )
        await wait_until_answering(self._redis)  # SIGTERM meanwhile: the default, an exit
        await super().startup()
        _stop_on_sigterm()
        ttl = 2 * settings.scheduler_tick_s + LEASE_MARGIN_S
        self.lease = RedisLease(self._redis, f"{settings.redis_prefix}scheduler:lease", ttl)
        for job in periodic_jobs(settings):
            await self._install(job)

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        """Queue the job if this scheduler holds the lease; otherwise stand by."""
        if self.lease is None or not await self.lease.hold():
            log.debug(
                "standing by: another scheduler holds the lease", extra={"job": task.task_name}
            )
            return
        await super().on_ready(source, task)

    async def shutdown(self) -> None:
        """Hand the lease over and close the connections."""
        if self.lease is not None:
            try:
                await self.lease.release()
            except Exception:
                log.warning("could not release the scheduler lease")
        if self._redis is not None:
            await self._redis.aclose()
        await super().shutdown()

    async def _install(self, job: Periodic) -> None:
        """Replace the job's schedule (a fixed id, so restarts and twins do not add copies)."""
        schedule = ScheduledTask(
            schedule_id=job.task,
            task_name=job.task,
            labels={},
            args=[],
            kwargs={},
            interval=job.interval_s,
        )
        await self._source.delete_schedule(schedule.schedule_id)
        await self._source.add_schedule(schedule)


def _stop_on_sigterm() -> None:
    """End the scheduler on SIGTERM as on Ctrl-C: cancelled, so :meth:`shutdown` runs.

    taskiq's command shuts a scheduler down only when its task is cancelled; SIGTERM (what
    a deploy or an orchestrator sends) killed the process outright, keeping the lease until
    it expired: no scheduler acted for up to two ticks and 5 s.
    """
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals here
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def build_scheduler(settings: Settings) -> LeasedScheduler:
    """The scheduler of ``settings`` (which must name Redis)."""
    broker = build_broker(settings)
    register_jobs(broker)
    url, prefix = settings.redis_url or "", f"{settings.redis_prefix}schedule"
    source: ScheduleSource = ListRedisScheduleSource(
        url, prefix=prefix, serializer=JSONSerializer(), skip_past_schedules=True
    )
    if settings.redis_cluster:
        source = RedisClusterScheduleSource(url, prefix=prefix, serializer=JSONSerializer())
    return LeasedScheduler(broker, source, settings)


def _maybe_scheduler() -> LeasedScheduler | None:
    settings = Settings.from_env()
    return build_scheduler(settings) if settings.redis_url else None


scheduler = _maybe_scheduler()
"""The object the Procfile's ``scheduler`` line runs (None without ``REDIS_URL``)."""


def main() -> int:
    """``make scheduler``: the taskiq scheduler with Redis; a note on the embedded default."""
    if scheduler is None:
        print(EMBEDDED)
        return 0
    command = [sys.executable, "-m", "taskiq", "scheduler", "server.tasks.scheduler:scheduler"]
    os.execv(sys.executable, command)  # noqa: S606  # nosec B606 - fixed arguments
    return 1  # pragma: no cover - execv does not return


if __name__ == "__main__":  # pragma: no cover - the process entry point
    sys.exit(main())
