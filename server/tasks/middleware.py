"""Retries with backoff and jitter, dead letters, and job metrics, for every task.

A job that raises is queued again with its attempt number and a not-before time: the second
attempt about ``base`` seconds after the first, the third about ``4 x base`` after the second
(each delay drawn from 50% to 150% of that, so a crowd of failures does not retry in step).
After the third attempt the job is recorded as a dead letter with its arguments and its last
error (``python -m server.admin dlq``). The delay is waited out by the worker that takes the
retry, inside the job's run, so it holds no broker slot of its own and survives a restart of
the worker that failed.

``studybuddy_task_runs_total{task,result}`` counts ``ok``, ``retried`` and ``dead`` runs and
``studybuddy_task_duration_seconds{task}`` times every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from taskiq import Context, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.kicker import AsyncKicker

from server.observability.metrics import TASK_DURATION, TASK_RUNS

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
ATTEMPT = "attempt"
NOT_BEFORE = "not_before"
MAX_SLEEP_S = 3600.0


def backoff(attempt: int, base_s: float, draw: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based), ``draw`` in ``[0, 1)``."""
    return float(base_s * 4 ** (attempt - 1) * (0.5 + draw))


def attempt_of(message: TaskiqMessage) -> int:
    """Which attempt this run of the message is (1 for the first)."""
    return int(message.labels.get(ATTEMPT, 1))


def last_attempt(context: Context) -> bool:
    """True when a failure of this run dead-letters the job instead of retrying it."""
    return attempt_of(context.message) >= MAX_ATTEMPTS


class RetryMiddleware(TaskiqMiddleware):
    """Retries failed jobs, then hands them to the dead letters (``broker.state.domain``)."""

    def __init__(
        self,
        base_s: float,
        *,
        draw: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._base_s = base_s
        self._draw = draw
        self._sleep = sleep
        self._now = now

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Wait until a retry is due."""
        wait = float(message.labels.get(NOT_BEFORE, 0)) - self._now()
        if wait > 0:
            await self._sleep(min(wait, MAX_SLEEP_S))
        return message

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """Time the attempt; count a success."""
        TASK_DURATION.labels(message.task_name).observe(result.execution_time)
        if not result.is_err:
            TASK_RUNS.labels(message.task_name, "ok").inc()

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        """Queue the next attempt, or record a dead letter after the last."""
        attempt = attempt_of(message)
        if attempt < MAX_ATTEMPTS:
            try:
                await self._retry(message, attempt)
            except Exception as exc:  # the queue is down: keep the job rather than lose it
                await self._bury(message, attempt, f"{exception!r}; retry not queued: {exc!r}")
                return
            TASK_RUNS.labels(message.task_name, "retried").inc()
            return
        await self._bury(message, attempt, repr(exception))

    async def _retry(self, message: TaskiqMessage, attempt: int) -> None:
        delay = backoff(attempt, self._base_s, self._draw())
        log.warning(
            "job failed; retrying",
            extra={"task": message.task_name, "attempt": attempt, "delay_s": round(delay, 3)},
        )
        labels = {**message.labels, ATTEMPT: attempt + 1, NOT_BEFORE: self._now() + delay}
        kicker: AsyncKicker[Any, Any] = AsyncKicker(message.task_name, self.broker, labels)
        await kicker.kiq(*message.args, **message.kwargs)

    async def _bury(self, message: TaskiqMessage, attempt: int, error: str) -> None:
        TASK_RUNS.labels(message.task_name, "dead").inc()
        try:
            await self.broker.state.domain.dead_letters.record(
                message.task_name, list(message.args), dict(message.kwargs), attempt, error
            )
        except Exception:
            log.exception("could not record a dead letter", extra={"task": message.task_name})
