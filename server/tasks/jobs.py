"""Background jobs. Each is a thin function that calls a service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from taskiq import AsyncBroker, Context, TaskiqDepends

from server.container import Domain


def domain_of(context: Annotated[Context, TaskiqDepends()]) -> Domain:
    """The use cases of the process running the job (app or worker)."""
    domain: Domain = context.state.domain
    return domain


async def purge_expired_sessions(
    domain: Annotated[Domain, TaskiqDepends(domain_of)],
) -> int:
    """Delete refresh tokens that expired (housekeeping); returns how many."""
    return await domain.auth.purge_expired_sessions()


async def deliver_webhook(
    delivery_id: str,
    domain: Annotated[Domain, TaskiqDepends(domain_of)],
) -> str | None:
    """Run a webhook delivery's attempts; returns its final status."""
    return await domain.deliveries.deliver(uuid.UUID(delivery_id))


async def requeue_stalled_deliveries(
    domain: Annotated[Domain, TaskiqDepends(domain_of)],
) -> int:
    """Queue again deliveries a crash or a queue outage left behind; returns how many."""
    return await domain.deliveries.requeue_stalled()


def register_jobs(broker: AsyncBroker) -> None:
    """Register every job on ``broker`` under a stable name."""
    jobs: dict[str, Any] = {
        "sessions.purge_expired": purge_expired_sessions,
        "webhooks.deliver": deliver_webhook,
        "webhooks.requeue_stalled": requeue_stalled_deliveries,
    }
    for name, job in jobs.items():
        broker.register_task(job, task_name=name)
