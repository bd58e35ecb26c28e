"""A serving node: its parts, and their life from start-up to drain.

Built by the app lifespan from the process's resources (see :mod:`server.container`). The
node alone knows whether it is draining; readiness, the socket endpoint and the server's
shutdown all ask it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from protocol.errors import CloseCode
from server.activity import DailyActive
from server.aio import cancel_and_wait
from server.container import build_domain, build_hub, build_persister, build_realtime
from server.observability.metrics import (
    DAILY_ACTIVE_USERS,
    DEAD_LETTERS,
    PERSISTER_OLDEST_AGE,
    PERSISTER_PENDING,
)
from server.realtime.envelope import CREDENTIALS_CHANNEL, ROSTERS_CHANNEL
from server.resources import Resources
from server.security.tokens import Principal
from server.services.clock import Clock
from server.settings import Settings
from server.store.schema import SchemaCheck
from server.tasks.schedule import LocalSchedule, periodic_jobs

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[object]]
CHECK_TIMEOUT_S = 2.0
HOUSEKEEPING_JOBS = ("retention.purge", "webhooks.requeue_stalled")


class Node:
    """Realtime broker, domain, hub and persister of one serving process."""

    def __init__(self, resources: Resources, clock: Clock | None = None) -> None:
        clock = clock or Clock()
        self.resources = resources
        self.settings: Settings = resources.settings
        self.realtime = build_realtime(resources, clock)
        self.domain = build_domain(resources, self.realtime, clock)
        self.hub = build_hub(resources, self.realtime, self.domain)
        self.persister = build_persister(resources, self.realtime, self.domain)
        self.activity = DailyActive(resources.redis, self.settings.redis_prefix, clock.time)
        self.schedule: LocalSchedule | None = None
        if resources.redis is None:  # no shared queue: this node runs the schedule itself
            self.schedule = LocalSchedule(resources.broker, periodic_jobs(self.settings))
        self.draining = False
        self._replica_watch: asyncio.Task[None] | None = None
        self._schema = SchemaCheck(resources.db)

    async def authenticate(self, token: str) -> Principal:
        """Verify an access token (REST or socket) and count its user as active today.

        Raises:
            Unauthorized: an invalid, expired or revoked token.
        """
        principal = await self.domain.auth.authenticate(token)
        await self.activity.seen(principal.user_id)
        return principal

    async def start(self) -> None:
        """Start background work: announcements, the persister, the hub; queue housekeeping.

        On the embedded default the node also runs the periodic jobs (reminders, sweeps).
        """
        await self.resources.db.warm()
        await self.resources.bus.listen(CREDENTIALS_CHANNEL, self._credentials_changed)
        await self.resources.bus.listen(ROSTERS_CHANNEL, self._roster_changed)
        await self.realtime.watch.start()
        self.persister.start()
        self.hub.start()
        if self.schedule is not None:
            self.schedule.start()
        await self._housekeeping()
        if self.resources.db.replicas is not None:
            await self._check_replicas()
            self._replica_watch = asyncio.create_task(self._watch_replicas(), name="replicas")

    async def drain(self, deadline_s: float) -> None:
        """Report not ready, refuse new sockets, and close the open ones in batches."""
        self.draining = True
        await self.hub.drain(CloseCode.GOING_AWAY, deadline_s=deadline_s)

    async def stop(self) -> None:
        """Drain what is left, stop the hub, and flush the persister."""
        await self.drain(self.settings.shutdown_grace_s)
        if self.schedule is not None:
            await self.schedule.stop()
        await self.hub.stop()
        await self.persister.stop(self.settings.shutdown_grace_s)
        await self.realtime.log.close()
        await self.realtime.watch.stop()
        await cancel_and_wait([self._replica_watch])

    def _credentials_changed(self, channel: str, payload: bytes) -> None:
        user_id = _notice_id(channel, payload)
        if user_id is not None:
            self.domain.auth.forget(user_id)

    def _roster_changed(self, channel: str, payload: bytes) -> None:
        group_id = _notice_id(channel, payload)
        if group_id is not None:
            self.domain.access.forget(group_id)

    async def readiness(self) -> dict[str, str]:
        """``ok`` or ``down`` for each dependency (and ``draining`` during shutdown)."""
        checks: dict[str, Check] = {"database": self.resources.db.ping}
        if self.resources.redis is not None:
            checks["redis"] = self.resources.redis.ping
        names = list(checks)
        results = await asyncio.gather(*(_probe(checks[name]) for name in names))
        states = dict(zip(names, results, strict=True))
        if states["database"] == "ok":  # a database out of reach is named as such, alone
            states["schema"] = await _probe(self._schema)
        if self.draining:
            states["node"] = "draining"
        return states

    def replicas(self) -> dict[str, dict[str, object]]:
        """Each read replica's state (``ok``, ``lagging``, ``down``) and lag, by name.

        Readiness reports them without failing: the primary serves when no replica can.
        """
        replicas = self.resources.db.replicas
        return replicas.report() if replicas is not None else {}

    async def refresh_gauges(self) -> None:
        """Update gauges computed on scrape (a dependency down leaves them as they were)."""
        try:
            pending, oldest = await self.realtime.log.lag()
            active = await self.activity.count()
            dead = await self.domain.dead_letters.waiting()
        except Exception:
            return
        DEAD_LETTERS.set(dead)
        PERSISTER_PENDING.set(pending)
        PERSISTER_OLDEST_AGE.set(oldest)
        DAILY_ACTIVE_USERS.set(active)

    async def _watch_replicas(self) -> None:
        """Check the read replicas every ``DATABASE_REPLICA_CHECK_S``, for the node's life."""
        while True:
            await asyncio.sleep(self.settings.database_replica_check_s)
            await self._check_replicas()

    async def _check_replicas(self) -> None:
        replicas = self.resources.db.replicas
        if replicas is None:
            return
        try:
            await replicas.check(self.resources.db.engine)
        except Exception:
            log.exception("could not check the read replicas")

    async def _housekeeping(self) -> None:
        """Queue start-up maintenance jobs (the worker runs them, or this process)."""
        for name in HOUSEKEEPING_JOBS:
            task = self.resources.broker.find_task(name)
            if task is None:
                continue
            try:
                await task.kiq()
            except Exception:
                log.exception("could not queue start-up housekeeping", extra={"job": name})


async def _probe(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception:
        return "down"
    return "ok"


def _notice_id(channel: str, payload: bytes) -> uuid.UUID | None:
    """The id a node-wide notice names; None (logged) for a malformed one."""
    try:
        return uuid.UUID(payload.decode("ascii"))
    except ValueError:
        log.warning("dropped a malformed notice", extra={"channel": channel})
        return None
