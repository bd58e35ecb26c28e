"""Background jobs. Each is a thin function that calls a service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from taskiq import AsyncBroker, Context, TaskiqDepends

from server.container import Services


def services_of(context: Annotated[Context, TaskiqDepends()]) -> Services:
    """The services of the process running the job (app or worker)."""
    services: Services = context.state.services
    return services


async def purge_expired_sessions(
    services: Annotated[Services, TaskiqDepends(services_of)],
) -> int:
    """Delete refresh tokens that expired (housekeeping); returns how many."""
    return await services.auth.purge_expired_sessions()


async def deliver_webhook(
    delivery_id: str,
    services: Annotated[Services, TaskiqDepends(services_of)],
) -> str | None:
    """Run a webhook delivery's attempts; returns its final status."""
    return await services.webhooks.deliver(uuid.UUID(delivery_id))


async def requeue_stalled_deliveries(
    services: Annotated[Services, TaskiqDepends(services_of)],
) -> int:
    """Queue again deliveries a crash or a queue outage left behind; returns how many."""
    return await services.webhooks.requeue_stalled()


def register_jobs(broker: AsyncBroker) -> None:
    """Register every job on ``broker`` under a stable name."""
    jobs: dict[str, Any] = {
        "sessions.purge_expired": purge_expired_sessions,
        "webhooks.deliver": deliver_webhook,
        "webhooks.requeue_stalled": requeue_stalled_deliveries,
    }
    for name, job in jobs.items():
        broker.register_task(job, task_name=name)
