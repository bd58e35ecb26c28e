"""Auto-pipelining of a hot Lua script: the calls of one event-loop turn go to Redis together.

redis-py sends every command on a pooled connection of its own, and every reply wakes the
caller's process on its own. Members of a busy group send in step, so one turn of a node's
event loop often starts several appends (and, on a cluster, several rate-limit checks).
:class:`PipelinedScript` queues the calls made in one turn and sends them as one pipeline
(ioredis and Lettuce call this auto-pipelining): one write, one reply to wake for, and on a
cluster one pipeline per node, run side by side, after which the callers resume in the same
turn (so their next calls are pipelined together too). Each call keeps its own result or
error; a call alone in its turn is sent as it is.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.redis_client import LIBRARY_RACES, RedisClient

RETRY_ALONE = (NoScriptError, RedisConnectionError, RedisTimeoutError, *LIBRARY_RACES)
"""A pipelined call that failed so is sent again on its own: the script is loaded if Redis
lacks it (a restarted or promoted Redis), and a connection error gets the client's retries
(a cluster pipeline hands it back without them), as the call alone would have. So does
redis-py's error for a connection it closed itself under the pipeline (a cluster's slot-map
refresh disconnects every connection of a node, in use or not)."""


@dataclass(slots=True)
class _Call:
    keys: list[Any]
    args: list[Any]
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PipelinedScript:
    """A registered Lua script whose concurrent calls share pipelines."""

    def __init__(self, redis: RedisClient, lua: str) -> None:
        self._redis = redis
        self._script = redis.register_script(lua)
        self._queued: list[_Call] = []
        self._running: set[asyncio.Task[None]] = set()

    @property
    def sha(self) -> str:
        """The script's SHA1 (for ``EVALSHA`` in a pipeline of the caller's own)."""
        return str(self._script.sha)

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        """Run the script with ``keys`` and ``args``, pipelined with this turn's other calls.

        Raises:
            Exception: whatever Redis or the client raised for this call.
        """
        call = _Call(keys, args)
        self._queued.append(call)
        if len(self._queued) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await call.future

    def _flush(self) -> None:
        """At the end of the turn: send what was queued, in a task of its own."""
        calls, self._queued = self._queued, []
        task = asyncio.create_task(self._send(calls))
        self._running.add(task)
        task.add_done_callback(functools.partial(self._sent, calls))

    def _sent(self, calls: list[_Call], task: asyncio.Task[None]) -> None:
        """The task ended; a call it never settled (it was cancelled) is cancelled too."""
        self._running.discard(task)
        for call in calls:
            call.future.cancel()

    async def _send(self, calls: list[_Call]) -> None:
        if len(calls) == 1:
            _settle(calls[0], await self._alone(calls[0]))
            return
        pipe = self._redis.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command("EVALSHA", self.sha, len(call.keys), *call.keys, *call.args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the pipeline itself failed: every caller hears it
            results = [exc] * len(calls)
        for call, result in zip(calls, results, strict=True):
            retry = isinstance(result, RETRY_ALONE)
            _settle(call, await self._alone(call) if retry else result)

    async def _alone(self, call: _Call) -> Any:
        """One call on its own (redis-py loads the script if Redis lacks it); errors returned."""
        try:
            return await self._script(keys=call.keys, args=call.args)
        except Exception as exc:
            return exc


def _settle(call: _Call, outcome: Any) -> None:
    """Hand a call its result, or its error; a caller that gave up is skipped."""
    if call.future.done():
        return
    if isinstance(outcome, Exception):
        call.future.set_exception(outcome)
    else:
        call.future.set_result(outcome)
