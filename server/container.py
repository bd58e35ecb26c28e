"""Wiring, one builder per subsystem, from the process's resources.

- :func:`build_realtime`: what a broker owns (``realtime/``): the message log, persistence
  announcements, socket leases and presence.
- :func:`build_domain`: the use cases (``services/``), which REST handlers, sockets and jobs
  call.
- :func:`build_hub` and :func:`build_persister`: the parts only a serving node runs.

The REST edge builds its own :class:`~server.api.gate.Gate`; :class:`server.node.Node` puts a
serving node together; the worker builds only the domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from taskiq import AsyncBroker

from server.cache import Cache, MemoryCache, RedisCache
from server.hub.hub import Hub
from server.outbound.mail import build_mailer
from server.outbound.webhook_client import WebhookClient
from server.realtime.erasure import RealtimeCopies
from server.realtime.floors import SeqFloors
from server.realtime.leases import Leases, LocalLeases, RedisLeases
from server.realtime.log import MessageLog
from server.realtime.memory_log import MemoryMessageLog
from server.realtime.notifier import BusNotifier
from server.realtime.persisted import PersistWatch
from server.realtime.persister import Persister
from server.realtime.redis_log import RedisMessageLog
from server.realtime.registry import MemoryRegistry, RedisRegistry, Registry
from server.resources import Resources
from server.security.crypto import SecretBox
from server.security.passwords import PasswordHasher
from server.security.ratelimit import Rate, RedisRateLimiter, shared_limiter
from server.security.scanner import build_scanner
from server.security.tokens import TokenCodec
from server.security.webhook_urls import AllowList
from server.services.access import GroupAccess
from server.services.account_recovery import AccountRecovery
from server.services.assignments import AssignmentService
from server.services.auth import AuthService
from server.services.clock import Clock
from server.services.dead_letters import DeadLetters
from server.services.deliveries import DeliveryQueue, MessageEvents, WebhookDeliveries
from server.services.erasures import ErasureFollowUp
from server.services.export_slots import ExportSlots
from server.services.groups import GroupService
from server.services.invites import InviteService
from server.services.mail import Composer, Postman
from server.services.messages import MessagePipeline, MessageService
from server.services.notification_emails import NotificationEmails
from server.services.notifications import MentionHook, NotificationOutbox, NotificationService
from server.services.recovery import RecoveryReader
from server.services.reminders import Reminders
from server.services.retention import Retention
from server.services.users import UserService
from server.services.webhooks import WebhookService

DELIVER_JOB = "webhooks.deliver"


@dataclass(frozen=True, slots=True)
class Realtime:
    """The realtime broker's parts: log, persistence announcements, leases and presence."""

    log: MessageLog
    watch: PersistWatch
    registry: Registry


@dataclass(frozen=True, slots=True)
class Domain:
    """The use cases, as REST handlers, socket sessions and jobs see them."""

    clock: Clock
    auth: AuthService
    users: UserService
    erasures: ErasureFollowUp
    access: GroupAccess
    groups: GroupService
    invites: InviteService
    assignments: AssignmentService
    deliveries: WebhookDeliveries
    webhooks: WebhookService
    pipeline: MessagePipeline
    recovery: RecoveryReader
    messages: MessageService
    accounts: AccountRecovery
    notifications: NotificationService
    outbox: NotificationOutbox
    notification_emails: NotificationEmails
    reminders: Reminders
    dead_letters: DeadLetters
    retention: Retention


def build_realtime(resources: Resources, clock: Clock) -> Realtime:
    """The message log (Redis, or in process), announcements and the registry."""
    settings, redis, db = resources.settings, resources.redis, resources.db
    window = {"window": settings.recovery_window_size, "window_s": settings.recovery_window_s}
    floors = SeqFloors(db)
    log: MessageLog
    registry: Registry
    if redis is not None:
        log = RedisMessageLog(
            redis,
            resources.partitions,
            floors,
            RedisRateLimiter(redis, settings.redis_prefix),
            min_replicas=settings.redis_min_replicas_ack,
            ack_timeout_ms=settings.redis_ack_timeout_ms,
            **window,
        )
        registry = RedisRegistry(redis, resources.partitions, settings.ws_lease_ttl_s)
    else:
        log = MemoryMessageLog(resources.bus, floors, clock=clock.time, **window)
        registry = MemoryRegistry()
    return Realtime(log, PersistWatch(resources.bus), registry)


class BrokerJobs:
    """The services' :class:`~server.services.events.Jobs` on the process's taskiq broker."""

    def __init__(self, broker: AsyncBroker) -> None:
        self._broker = broker

    async def queue(self, name: str, *args: str) -> None:
        """Queue job ``name``.

        Raises:
            RuntimeError: no job has this name.
        """
        task = self._broker.find_task(name)
        if task is None:
            raise RuntimeError(f"job {name} is not registered")
        await task.kiq(*args)


def build_domain(resources: Resources, realtime: Realtime, clock: Clock) -> Domain:
    """Every use case, wired to the resources and the realtime broker."""
    settings, db = resources.settings, resources.db
    notifier = BusNotifier(resources.bus)
    jobs = BrokerJobs(resources.broker)
    box = SecretBox(settings.data_encryption_key)
    auth = AuthService(
        db,
        PasswordHasher(settings.bcrypt_rounds, settings.bcrypt_max_concurrency),
        TokenCodec.from_settings(settings, clock.time),
        box,
        clock,
        settings.refresh_token_ttl_s,
        jobs,
        limiter=shared_limiter(resources.redis, settings.redis_prefix),
        reauth_rate=Rate.parse(settings.rate_limit_auth),
    )
    postman = Postman(
        Composer(settings.mail_from, settings.public_web_url, clock),
        build_mailer(settings.smtp_url, settings.mail_dir),
    )
    outbox = NotificationOutbox(jobs, clock)
    notifications = NotificationService(db, notifier, jobs, outbox, clock)
    access = GroupAccess(db, clock.time)
    deliveries = WebhookDeliveries(
        db,
        box,
        clock,
        WebhookClient(settings.webhook_timeout_s),
        _job_queue(resources, DELIVER_JOB),
        allow=AllowList.parse(settings.webhook_allowed_hosts),
        retry_base_s=settings.webhook_retry_base_s,
    )
    groups = GroupService(db, access, notifier, deliveries, clock)
    rate = Rate(settings.ws_message_burst, settings.ws_message_burst / settings.ws_message_rate)
    pipeline = MessagePipeline(realtime.log, access, clock, rate=rate)
    cache = _cache(resources)
    copies = RealtimeCopies(realtime.log, resources.redis, settings.redis_prefix)
    erasures = ErasureFollowUp(db, cache, notifier, copies, clock)
    users = UserService(
        db,
        auth,
        cache,
        build_scanner(settings.clamd_url),
        notifier,
        clock,
        erasures,
        media_dir=settings.media_dir,
        media_url_prefix=settings.media_url_prefix,
        cache_ttl_s=settings.profile_cache_ttl_s,
        exports=ExportSlots(max(1, settings.db_pool_max // 5)),
    )
    return Domain(
        clock=clock,
        auth=auth,
        users=users,
        erasures=erasures,
        access=access,
        groups=groups,
        invites=InviteService(db, groups, notifier, deliveries, outbox, clock),
        assignments=AssignmentService(db, groups, deliveries, outbox, clock),
        deliveries=deliveries,
        webhooks=WebhookService(db, box, clock, deliveries),
        pipeline=pipeline,
        recovery=RecoveryReader(
            realtime.log,
            db,
            clock,
            window=settings.recovery_window_size,
            window_s=settings.recovery_window_s,
        ),
        messages=MessageService(
            db, pipeline, realtime.log, realtime.watch, access, notifier, outbox, clock
        ),
        accounts=AccountRecovery(db, auth, users, jobs, postman, clock),
        notifications=notifications,
        outbox=outbox,
        notification_emails=NotificationEmails(db, postman, clock),
        reminders=Reminders(db, notifications, clock, lead_s=settings.reminder_lead_s),
        dead_letters=DeadLetters(db, clock),
        retention=Retention(db, clock, settings.retention_days),
    )


def build_hub(resources: Resources, realtime: Realtime, domain: Domain) -> Hub:
    """This node's sockets and their fan-out."""
    settings = resources.settings
    return Hub(
        resources.bus,
        realtime.registry,
        domain.access,
        domain.recovery,
        max_sockets=settings.ws_max_sockets_per_user,
        window=settings.recovery_window_size,
        window_s=settings.recovery_window_s,
    )


def build_persister(resources: Resources, realtime: Realtime, domain: Domain) -> Persister:
    """This node's share of moving logged messages into the database."""
    node = f"node-{uuid.uuid4().hex[:12]}"
    redis = resources.redis
    leases: Leases = LocalLeases(realtime.log.partitions)
    if redis is not None:
        leases = RedisLeases(redis, resources.partitions, node)
    persister = Persister(
        realtime.log,
        resources.db,
        node,
        leases,
        hooks=(MessageEvents(domain.deliveries), MentionHook(domain.outbox)),
        announce=realtime.watch.announce,
    )
    realtime.watch.wake_with(persister.wake)
    return persister


def _cache(resources: Resources) -> Cache:
    redis = resources.redis
    return RedisCache(redis, resources.settings.redis_prefix) if redis else MemoryCache()


def _job_queue(resources: Resources, name: str) -> DeliveryQueue:
    async def queue(ids: Sequence[uuid.UUID]) -> None:
        task = resources.broker.find_task(name)
        if task is None:
            raise RuntimeError(f"job {name} is not registered")
        for item in ids:
            await task.kiq(str(item))

    return queue
