"""The node's services, wired from its resources. Built once by the app lifespan."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from server.api.gate import Gate, Rates
from server.cache import Cache, MemoryCache, RedisCache
from server.hub.hub import Hub
from server.observability.metrics import PERSISTER_OLDEST_AGE, PERSISTER_PENDING
from server.outbound.webhook_client import WebhookClient
from server.realtime.log import MessageLog
from server.realtime.memory_log import MemoryMessageLog
from server.realtime.persister import Persister
from server.realtime.redis_log import RedisMessageLog
from server.realtime.registry import MemoryRegistry, RedisRegistry, Registry
from server.resources import Resources
from server.security.client_ip import parse_networks
from server.security.crypto import SecretBox
from server.security.passwords import PasswordHasher
from server.security.ratelimit import MemoryRateLimiter, Rate, RateLimiter, RedisRateLimiter
from server.security.scanner import build_scanner
from server.security.tokens import TokenCodec
from server.security.webhook_urls import AllowList
from server.services.assignments import AssignmentService
from server.services.auth import AuthService
from server.services.clock import Clock
from server.services.groups import GroupService
from server.services.invites import InviteService
from server.services.membership import MembershipCache
from server.services.messages import MessagePipeline, MessageService
from server.services.notify import Notifier
from server.services.users import UserService
from server.services.webhooks import WebhookService, WebhookSettings
from server.settings import Settings
from server.store.db import Database
from server.store.messages import max_seq

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[object]]
CHECK_TIMEOUT_S = 2.0
DELIVER_JOB = "webhooks.deliver"
HOUSEKEEPING_JOBS = ("sessions.purge_expired", "webhooks.requeue_stalled")


class Services:
    """Everything request handlers and socket sessions call into."""

    def __init__(
        self, resources: Resources, notifier: Notifier, clock: Clock | None = None
    ) -> None:
        settings = resources.settings
        self.settings: Settings = settings
        self.resources = resources
        self.db: Database = resources.db
        self.clock = clock or Clock()
        redis = resources.redis
        self.limiter: RateLimiter = (
            RedisRateLimiter(redis, settings.redis_prefix) if redis else MemoryRateLimiter()
        )
        self.cache: Cache = RedisCache(redis, settings.redis_prefix) if redis else MemoryCache()
        self.tokens = TokenCodec.from_settings(settings, self.clock.time)
        self.box = SecretBox(settings.data_encryption_key)
        self.hasher = PasswordHasher(settings.bcrypt_rounds, settings.bcrypt_max_concurrency)
        self.notifier = notifier
        self.auth = AuthService(
            self.db, self.hasher, self.tokens, self.box, self.clock, settings.refresh_token_ttl_s
        )
        self.users = UserService(
            self.db,
            self.auth,
            self.cache,
            build_scanner(settings.clamd_url),
            notifier,
            self.clock,
            media_dir=settings.media_dir,
            media_url_prefix=settings.media_url_prefix,
            cache_ttl_s=settings.profile_cache_ttl_s,
        )
        self.membership = MembershipCache(self.db, self.clock.time)
        self.message_log = self._message_log()
        self.pipeline = MessagePipeline(
            self.message_log,
            self.membership,
            self.db,
            self.clock,
            rate=Rate(
                settings.ws_message_burst, settings.ws_message_burst / settings.ws_message_rate
            ),
            window=settings.recovery_window_size,
            window_s=settings.recovery_window_s,
        )
        self.webhooks = WebhookService(
            self.db,
            self.box,
            self.clock,
            WebhookClient(settings.webhook_timeout_s),
            self._queue_deliveries,
            WebhookSettings(
                AllowList.parse(settings.webhook_allowed_hosts), settings.webhook_retry_base_s
            ),
        )
        self.groups = GroupService(self.db, self.membership, notifier, self.webhooks, self.clock)
        self.invites = InviteService(self.db, self.groups, notifier, self.webhooks, self.clock)
        self.assignments = AssignmentService(self.db, self.groups, self.webhooks, self.clock)
        self.messages = MessageService(
            self.db, self.pipeline, self.groups, self.membership, notifier, self.clock
        )
        self.registry: Registry = (
            RedisRegistry(redis, settings.redis_prefix, settings.ws_lease_ttl_s)
            if redis
            else MemoryRegistry()
        )
        self.hub = Hub(
            resources.bus,
            self.registry,
            self.pipeline,
            self.membership,
            max_sockets=settings.ws_max_sockets_per_user,
        )
        self.persister = Persister(
            self.message_log, self.db, f"node-{uuid.uuid4().hex[:12]}", events=self.webhooks
        )
        self.gate = Gate(
            self.limiter,
            Rates(
                Rate.parse(settings.rate_limit_auth),
                Rate.parse(settings.rate_limit_user),
                Rate.parse(settings.rate_limit_anon),
            ),
            parse_networks(settings.trusted_proxies),
            self.auth.authenticate,
        )
        self.draining = False

    def _message_log(self) -> MessageLog:
        settings, redis = self.settings, self.resources.redis

        async def seed(group_id: uuid.UUID) -> int:
            async with self.db.session() as session:
                return await max_seq(session, group_id)

        window = {"window": settings.recovery_window_size, "window_s": settings.recovery_window_s}
        if redis is not None:
            return RedisMessageLog(redis, settings.redis_prefix, seed, **window)
        return MemoryMessageLog(self.resources.bus, seed, clock=self.clock.time, **window)

    async def _queue_deliveries(self, ids: Sequence[uuid.UUID]) -> None:
        task = self.resources.broker.find_task(DELIVER_JOB)
        if task is None:
            raise RuntimeError(f"job {DELIVER_JOB} is not registered")
        for delivery in ids:
            await task.kiq(str(delivery))

    async def readiness(self) -> dict[str, str]:
        """``ok`` or ``down`` for each dependency (and ``draining`` during shutdown)."""
        checks: dict[str, Check] = {"database": self.db.ping}
        if self.resources.redis is not None:
            checks["redis"] = self.resources.redis.ping
        names = list(checks)
        results = await asyncio.gather(*(_probe(checks[name]) for name in names))
        states = dict(zip(names, results, strict=True))
        if self.draining:
            states["node"] = "draining"
        return states

    async def housekeeping(self) -> None:
        """Queue start-up maintenance jobs (the worker runs them, or this process)."""
        for name in HOUSEKEEPING_JOBS:
            task = self.resources.broker.find_task(name)
            if task is None:
                continue
            try:
                await task.kiq()
            except Exception:
                log.exception("could not queue start-up housekeeping", extra={"job": name})

    async def refresh_gauges(self) -> None:
        """Update gauges that are computed on scrape."""
        try:
            pending, oldest = await self.message_log.lag()
        except Exception:
            return
        PERSISTER_PENDING.set(pending)
        PERSISTER_OLDEST_AGE.set(oldest)


async def _probe(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception:
        return "down"
    return "ok"
