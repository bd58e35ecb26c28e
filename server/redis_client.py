"""The Redis client, with explicit timeouts and retries (redis-py 8 retries nothing by default).

One Redis (a blocking pool) or a Redis Cluster (``REDIS_CLUSTER=true``: ``REDIS_URL`` names one
seed node; redis-py discovers the others and follows ``MOVED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 200
WAIT_BACKOFF_MAX_S = 5.0
POOL_WAIT_S = 5.0

RedisClient = Redis | RedisCluster
"""Either kind of client: the commands the product uses exist on both."""

LIBRARY_RACES = (AttributeError, TypeError)
"""What redis-py 8.1 raises when a connection is closed under a command about to be written
(its writer is gone): a peer's reset (redis-py issue 4287), or, on a cluster, a slot-map
refresh that disconnects pooled connections another task is opening (seen under a slot
migration: ``'NoneType' object has no attribute 'writelines'``). Nothing was sent, so the
command is retried like a ``ConnectionError``; a genuine bug still surfaces after the
retries."""


SCRIPT_CALLS = frozenset({"EVAL", "EVALSHA"})
"""Routed by their first key: every script of ours keeps its keys in one slot (a script that
did not would get Redis's own CROSSSLOT error)."""
STREAM_READS = {"XREAD": 0, "XREADGROUP": 3}
"""Where the ``STREAMS`` keyword may start (after ``GROUP group consumer``), as Redis's
own key specs say."""


class _Cluster(RedisCluster):
    """redis-py's cluster client, also retrying :data:`LIBRARY_RACES`.

    It routes stream reads by their keys itself: redis-py asks a node (``COMMAND GETKEYS``)
    for every ``XREADGROUP``, one more round trip per read, and while a primary fails over
    that question can come back empty and the read fails with "Missing key". Scripts go by
    their first key (redis-py hashes every key of every call to check they share a slot).
    """

    ERRORS_ALLOW_RETRY = (*RedisCluster.ERRORS_ALLOW_RETRY, *LIBRARY_RACES)  # type: ignore[assignment]

    async def _determine_slot(self, command: str, *args: Any) -> int:
        if command.upper() in SCRIPT_CALLS and len(args) > 2 and int(args[1]) > 0:  # noqa: PLR2004
            return self.keyslot(args[2])  # our scripts keep their keys in one slot
        keys = stream_read_keys(command, args)
        slots = {self.keyslot(key) for key in keys}
        if len(slots) == 1:
            return slots.pop()
        return await super()._determine_slot(command, *args)


def stream_read_keys(command: str, args: tuple[Any, ...]) -> list[Any]:
    """The stream keys of an ``XREAD``/``XREADGROUP`` (``STREAMS k1 k2 id1 id2``); else []."""
    start = STREAM_READS.get(command.upper())
    if start is None:
        return []
    for index in range(start, len(args)):
        if _word(args[index]) == "STREAMS":
            rest = args[index + 1 :]
            return list(rest[: len(rest) // 2])
    return []


def _word(arg: Any) -> str | None:
    """A command argument as an upper-case word, if it is text."""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace").upper()
    return arg.upper() if isinstance(arg, str) else None


async def release_orphan(cluster: RedisCluster, node: ClusterNode) -> None:
    """Close the connections of a node the client's slot map dropped while we held it.

    redis-py disconnects nodes that leave its map, but a command sent to a node object held
    from before (``target_nodes``) may open connections on it afterwards, which nothing
    would close.
    """
    if cluster.get_node(node_name=node.name) is not node:
        with contextlib.suppress(OSError, RedisConnectionError):
            await node.disconnect()


def create_redis(url: str, *, cluster: bool = False) -> RedisClient:
    """A pooled client: 3 retries with jittered backoff, bounded connect and read times.

    On one Redis the pool is a blocking one: when all its connections are busy (a reconnect
    storm), a command waits up to ``POOL_WAIT_S`` for one instead of failing at once.
    """
    options: dict[str, Any] = {
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, *LIBRARY_RACES],
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "socket_keepalive": True,
    }
    if cluster:
        return _Cluster.from_url(url, max_connections=MAX_CONNECTIONS, **options)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        health_check_interval=15,
        **options,
    )
    return Redis.from_pool(pool)


async def wait_until_answering(redis: RedisClient) -> None:
    """Return once Redis answers a ``PING``; until then retry with backoff (up to 5 s apart).

    For processes that can do nothing without Redis (the scheduler): started before Redis,
    they wait for it instead of exiting. Logged once when waiting starts, and once at the end.
    """
    backoff, waited = 0.1, False
    while True:
        try:
            await redis.ping()
        except (RedisError, RedisClusterException, OSError) as exc:
            if not waited:
                log.warning("waiting for Redis to answer", extra={"error": repr(exc)})
                waited = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, WAIT_BACKOFF_MAX_S)
        else:
            if waited:
                log.info("Redis answers")
            return


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis ``SCAN MATCH`` pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


async def unlink_matching(redis: RedisClient, pattern: str) -> int:
    """Unlink every key matching ``pattern`` (every primary of a cluster); return how many.

    A full scan of the keyspace: for rare work (an account's erasure), never a request path.
    """
    found = {key async for key in redis.scan_iter(match=pattern, count=1000)}
    for key in found:
        await redis.unlink(key)
    return len(found)
