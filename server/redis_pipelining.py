"""Auto-pipelining of a hot Lua script: the calls of one event-loop turn go to Redis together.

redis-py sends every command on a pooled connection of its own, and every reply wakes the
caller's process on its own. Members of a busy group send in step, so one turn of a node's
event loop often starts several appends (and, on a cluster, several rate-limit checks).
:class:`PipelinedScript` queues the calls made in one turn and sends them as one pipeline
(ioredis and Lettuce call this auto-pipelining): one write, one reply to wake for, and on a
cluster one pipeline per node, run side by side, after which the callers resume in the same
turn (so their next calls are pipelined together too). Each call keeps its own result or
error; a call alone in its turn is sent as it is.

On a cluster the calls go straight to the node that serves their first key's slot, as the
client's slot map has it, on that node's own connections: redis-py's cluster client spends
about twice a plain client's CPU on a pipeline and a quarter more on a lone command, and a
message on a cluster takes two scripts (the author's rate limit lives in another slot). A
call the node refuses (``MOVED``, ``ASK``, ``TRYAGAIN``, a cluster down), or that meets a
connection error, is sent again through the cluster client, which follows redirects,
refreshes its slot map and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode, PipelineCommand
from redis.exceptions import (
    AskError,
    ClusterError,
    NoScriptError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.redis_client import LIBRARY_RACES, RedisClient

RETRY_ALONE = (NoScriptError, RedisConnectionError, RedisTimeoutError, *LIBRARY_RACES)
"""A pipelined call that failed so is sent again on its own: the script is loaded if Redis
lacks it (a restarted or promoted Redis), and a connection error gets the client's retries
(a cluster pipeline hands it back without them), as the call alone would have. So does
redis-py's error for a connection it closed itself under the pipeline (a cluster's slot-map
refresh disconnects every connection of a node, in use or not)."""

REROUTE = (*RETRY_ALONE, AskError, TryAgainError, ClusterError, RedisClusterException)
"""A call sent straight to a cluster node that failed so goes again through the cluster
client: a redirect (``MOVED`` is an ``ASK`` in redis-py), a slot being migrated, a cluster
in flux. The client follows the redirect, refreshes its slot map and retries."""


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
        if isinstance(self._redis, RedisCluster):
            routes = _by_node(self._redis, calls)
            if len(routes) == 1:  # the usual case: no task per node
                await self._send_to(*routes.popitem())
            else:
                await asyncio.gather(
                    *(self._send_to(node, group) for node, group in routes.items())
                )
            return
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
        await self._settle_all(calls, results, RETRY_ALONE)

    async def _send_to(self, node: ClusterNode | None, calls: list[_Call]) -> None:
        """Send ``calls`` to ``node`` on its own connections (None: each through the client)."""
        if node is None:
            await self._settle_all(calls, [await self._alone(call) for call in calls], ())
        else:
            await self._settle_all(calls, await self._on_node(node, calls), REROUTE)

    async def _settle_all(
        self, calls: list[_Call], results: list[Any], again: tuple[type[Exception], ...]
    ) -> None:
        """Hand each call its result, sending one that failed with ``again`` once more alone."""
        for call, result in zip(calls, results, strict=True):
            _settle(call, await self._alone(call) if isinstance(result, again) else result)

    async def _on_node(self, node: ClusterNode, calls: list[_Call]) -> list[Any]:
        """The calls' results or errors, as one pipeline on one of ``node``'s connections."""
        commands = [
            PipelineCommand(i, "EVALSHA", self.sha, len(c.keys), *c.keys, *c.args)
            for i, c in enumerate(calls)
        ]
        try:
            if len(commands) == 1:
                return [await node.execute_command(*commands[0].args)]
            await node.execute_pipeline(commands)
        except Exception as exc:  # the write failed, or the lone command did
            return [exc] * len(calls)
        return [command.result for command in commands]

    async def _alone(self, call: _Call) -> Any:
        """One call on its own (redis-py loads the script if Redis lacks it); errors returned."""
        try:
            return await self._script(keys=call.keys, args=call.args)
        except Exception as exc:
            return exc


def _by_node(cluster: RedisCluster, calls: list[_Call]) -> dict[ClusterNode | None, list[_Call]]:
    """The calls by the primary of their first key's slot, as the client's map has it.

    Without a map (none loaded yet) or an owner for the slot, they go through the client.
    """
    routes: dict[ClusterNode | None, list[_Call]] = {}
    for call in calls:
        node: ClusterNode | None = None
        if call.keys and cluster.nodes_manager.slots_cache:
            with contextlib.suppress(KeyError, RedisClusterException):
                node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(call.keys[0]))
        routes.setdefault(node, []).append(call)
    return routes


def _settle(call: _Call, outcome: Any) -> None:
    """Hand a call its result, or its error; a caller that gave up is skipped."""
    if call.future.done():
        return
    if isinstance(outcome, Exception):
        call.future.set_exception(outcome)
    else:
        call.future.set_result(outcome)
