"""Entry point of the worker process: ``taskiq worker server.tasks.worker:broker``.

The taskiq CLI imports a broker object, so this module (an edge, like the app factory) builds
one from the environment. Nothing connects at import time: the broker and the services are
opened by the worker's start-up event and closed by its shutdown event.
"""

from __future__ import annotations

import os
import sys
from contextlib import AsyncExitStack

from taskiq import TaskiqEvents, TaskiqState

from server.container import build_domain, build_realtime
from server.observability.logging import configure_logging
from server.observability.sentry import init_sentry
from server.resources import open_resources
from server.services.clock import Clock
from server.settings import Settings
from server.tasks.broker import build_broker
from server.tasks.jobs import register_jobs

settings = Settings.from_env()
broker = build_broker(settings)
register_jobs(broker)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def startup(state: TaskiqState) -> None:
    """Open the worker's resources and the use cases its jobs call (no hub, no persister)."""
    configure_logging(settings.log_level)
    init_sentry(settings.sentry_dsn, settings.env.value)
    stack = AsyncExitStack()
    resources = await stack.enter_async_context(open_resources(settings))
    state.stack = stack
    clock = Clock()
    state.domain = build_domain(resources, build_realtime(resources, clock), clock)
    # Jobs queue jobs too (a fan-out queues emails, a sweep queues deliveries): through the
    # resources' broker, which must know them.
    register_jobs(resources.broker)
    await resources.broker.startup()
    stack.push_async_callback(resources.broker.shutdown)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def shutdown(state: TaskiqState) -> None:
    """Close what start-up opened."""
    await state.stack.aclose()


EMBEDDED = (
    "REDIS_URL is not set: on the embedded default the node (make run) runs the jobs itself "
    "(there is no queue to share); a separate worker is only needed with Redis."
)


def main() -> int:
    """``make worker``: the taskiq worker with Redis; a note on the embedded default."""
    if not settings.redis_url:
        print(EMBEDDED)
        return 0
    command = [sys.executable, "-m", "taskiq", "worker", "server.tasks.worker:broker"]
    os.execv(sys.executable, [*command, *sys.argv[1:]])  # noqa: S606  # nosec B606
    return 1  # pragma: no cover - execv does not return


if __name__ == "__main__":  # pragma: no cover - the process entry point
    sys.exit(main())
