"""Background jobs. Each is a thin function that calls a service.

Every job is retried and dead-lettered by :mod:`server.tasks.middleware`. A job whose last
failure must leave a mark on its row (a notification email becomes ``dead``, so the sweep
stops re-queueing it) checks :func:`last_attempt`; replaying a dead letter first runs the
job's reviver from :data:`REVIVERS` (:func:`replay_dead_letter`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from taskiq import AsyncBroker, Context, TaskiqDepends

from server.container import Domain
from server.services.deliveries import MAX_ATTEMPTS
from server.services.events import (
    FAN_OUT_JOB,
    NOTIFICATION_EMAIL_JOB,
    RESET_EMAIL_JOB,
    VERIFY_EMAIL_JOB,
    Jobs,
)
from server.store.models import DeadLetter, DeliveryStatus
from server.tasks.middleware import last_attempt

DELIVER_JOB = "webhooks.deliver"
RETENTION_JOB = "retention.purge"


def domain_of(context: Annotated[Context, TaskiqDepends()]) -> Domain:
    """The use cases of the process running the job (app or worker)."""
    domain: Domain = context.state.domain
    return domain


Dom = Annotated[Domain, TaskiqDepends(domain_of)]
Ctx = Annotated[Context, TaskiqDepends()]


async def purge_retention(domain: Dom) -> dict[str, int]:
    """Delete rows past their retention period (idempotent); how many of each kind went."""
    return await domain.retention.purge()


async def deliver_webhook(delivery_id: str, domain: Dom) -> str | None:
    """Run a webhook delivery's attempts; a delivery that ends ``dead`` is a dead letter."""
    status = await domain.deliveries.deliver(uuid.UUID(delivery_id))
    if status == DeliveryStatus.DEAD.value:
        error = await domain.deliveries.last_error(uuid.UUID(delivery_id))
        await domain.dead_letters.record(DELIVER_JOB, [delivery_id], {}, MAX_ATTEMPTS, error)
    return status


async def requeue_stalled_deliveries(domain: Dom) -> int:
    """Queue again deliveries a crash or a queue outage left behind; returns how many."""
    return await domain.deliveries.requeue_stalled()


async def send_verification_email(user_id: str, domain: Dom) -> bool:
    """Create a verification token and email its link."""
    return await domain.accounts.send_verification(uuid.UUID(user_id))


async def send_reset_email(email: str, domain: Dom) -> bool:
    """Create a reset token and email its link (nothing for an unknown address)."""
    return await domain.accounts.send_reset(email)


async def send_notification_email(notification_id: str, domain: Dom, context: Ctx) -> str | None:
    """Email one notification; after the last failed attempt it is marked dead."""
    target = uuid.UUID(notification_id)
    try:
        return await domain.notification_emails.send(target)
    except Exception:
        if last_attempt(context):
            await domain.notification_emails.mark_dead(target)
        raise


async def fan_out(event_id: str, domain: Dom) -> int:
    """Turn an outbox event into notifications (idempotent)."""
    return await domain.notifications.fan_out(uuid.UUID(event_id))


async def requeue_stalled_notifications(domain: Dom) -> int:
    """Queue again fan-outs and emails a lost job left behind."""
    return await domain.notifications.requeue_stalled()


async def remind_due_soon(domain: Dom) -> int:
    """Remind members of assignments now due within the lead (idempotent)."""
    return await domain.reminders.remind_due_soon()


async def finish_erasures(domain: Dom) -> int:
    """Reach the copies outside the database that an account's erasure could not (Redis away)."""
    return await domain.erasures.sweep()


JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    RETENTION_JOB: purge_retention,
    "sessions.purge_expired": purge_retention,  # its name in earlier releases (queued ones)
    DELIVER_JOB: deliver_webhook,
    "webhooks.requeue_stalled": requeue_stalled_deliveries,
    VERIFY_EMAIL_JOB: send_verification_email,
    RESET_EMAIL_JOB: send_reset_email,
    NOTIFICATION_EMAIL_JOB: send_notification_email,
    FAN_OUT_JOB: fan_out,
    "notifications.requeue_stalled": requeue_stalled_notifications,
    "reminders.due_soon": remind_due_soon,
    "accounts.finish_erasures": finish_erasures,
}


async def _revive_delivery(domain: Domain, delivery_id: str) -> None:
    await domain.deliveries.revive(uuid.UUID(delivery_id))


async def _revive_email(domain: Domain, notification_id: str) -> None:
    await domain.notification_emails.revive(uuid.UUID(notification_id))


REVIVERS: dict[str, Callable[[Domain, str], Awaitable[None]]] = {
    DELIVER_JOB: _revive_delivery,
    NOTIFICATION_EMAIL_JOB: _revive_email,
}
"""What a replay resets before queueing the job again (its row's dead state)."""


def register_jobs(broker: AsyncBroker) -> None:
    """Register every job on ``broker`` under a stable name."""
    for name, job in JOBS.items():
        broker.register_task(job, task_name=name)


async def replay_dead_letter(domain: Domain, jobs: Jobs, letter_id: uuid.UUID) -> DeadLetter:
    """Revive a dead letter's row and queue its job again.

    Raises:
        NotFound: no such dead letter.
        Conflict: replayed already.
    """
    letter = await domain.dead_letters.get(letter_id)
    revive = REVIVERS.get(letter.task)
    if revive is not None and letter.replayed_at is None:
        await revive(domain, str(letter.args[0]))
    return await domain.dead_letters.replay(letter_id, jobs)
