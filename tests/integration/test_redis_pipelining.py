"""Auto-pipelined scripts on one Redis and on the local cluster: batching, errors, cancels."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from scripts.redis_cluster import LocalCluster
from server.redis_client import RedisClient, create_redis
from server.redis_pipelining import PipelinedScript
from tests.fixtures.services import REDIS_URL

ADD = """
if ARGV[1] == 'refuse' then return redis.error_reply('REFUSED on purpose') end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""


class Counted:
    """The client's ``pipeline``, counting how many pipelines were made (a spy, not a fake)."""

    def __init__(self, client: RedisClient) -> None:
        self.made = 0
        self._pipeline = client.pipeline

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.made += 1
        return self._pipeline(*args, **kwargs)


def _counting(redis: RedisClient) -> tuple[PipelinedScript, Counted]:
    """The test script on ``redis``, and a count of the pipelines the client makes from now."""
    counted = Counted(redis)
    redis.pipeline = counted  # type: ignore[method-assign]
    return PipelinedScript(redis, ADD), counted


@pytest.fixture(params=["one Redis", "cluster"])
async def redis(
    request: pytest.FixtureRequest, redis_cluster: LocalCluster
) -> AsyncIterator[RedisClient]:
    """A client of the shared test Redis, or of the shared local cluster."""
    if request.param == "cluster":
        client = create_redis(redis_cluster.url, cluster=True)
    else:
        client = create_redis(REDIS_URL)
    yield client
    await client.aclose()


async def test_calls_of_one_turn_share_a_pipeline_and_keep_their_own_results(
    redis: RedisClient, own_prefix: str
) -> None:
    """Ten calls made together: one pipeline; each its own answer, a refusal only its own."""
    script, counted = _counting(redis)
    keys = [f"{own_prefix}n{i}" for i in range(10)]
    results = await asyncio.gather(
        *(script(keys=[key], args=[i + 1]) for i, key in enumerate(keys)),
        script(keys=[f"{own_prefix}refused"], args=["refuse"]),
        return_exceptions=True,
    )
    assert results[:10] == [i + 1 for i in range(10)]
    assert isinstance(results[10], ResponseError)
    assert "REFUSED on purpose" in str(results[10])
    assert counted.made == 1
    stored = await asyncio.gather(*(redis.get(k) for k in keys))
    assert stored == [str(i + 1).encode() for i in range(10)]


async def test_a_call_alone_in_its_turn_is_sent_as_it_is(
    redis: RedisClient, own_prefix: str
) -> None:
    """One call after another: no pipeline, each answered in order."""
    script, counted = _counting(redis)
    assert await script(keys=[f"{own_prefix}n"], args=[2]) == 2
    assert await script(keys=[f"{own_prefix}n"], args=[3]) == 5
    assert counted.made == 0
    with pytest.raises(ResponseError, match="REFUSED on purpose"):
        await script(keys=[f"{own_prefix}n"], args=["refuse"])


async def test_a_redis_without_the_script_gets_it_loaded(
    redis: RedisClient, own_prefix: str
) -> None:
    """After SCRIPT FLUSH (a restarted or promoted Redis) pipelined calls still succeed."""
    script = PipelinedScript(redis, ADD)
    key = f"{own_prefix}n"
    assert await script(keys=[key], args=[1]) == 1
    await redis.script_flush()
    results = await asyncio.gather(*(script(keys=[key], args=[1]) for _ in range(4)))
    assert sorted(results) == [2, 3, 4, 5]
    await redis.script_flush()
    assert await script(keys=[key], args=[1]) == 6


async def test_a_caller_that_gives_up_leaves_the_others_their_answers(
    redis: RedisClient, own_prefix: str
) -> None:
    """One of three callers is cancelled before the pipeline answers; the others are not."""
    script = PipelinedScript(redis, ADD)
    calls = [asyncio.ensure_future(script(keys=[f"{own_prefix}n{i}"], args=[1])) for i in range(3)]
    await asyncio.sleep(0)  # every call queued
    calls[1].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert done[0] == 1
    assert isinstance(done[1], asyncio.CancelledError)
    assert done[2] == 1


def _open_connections(client: RedisClient) -> dict[tuple[str, int], list[Any]]:
    """The client's open connections, by the server they go to."""
    if isinstance(client, RedisCluster):
        return {
            (node.host, int(node.port)): [c for c in node._connections if c.is_connected]
            for node in client.get_nodes()
        }
    pool: Any = client.connection_pool
    kwargs = pool.connection_kwargs
    connections = [*pool._available_connections, *pool._in_use_connections]
    return {(kwargs["host"], int(kwargs["port"])): [c for c in connections if c.is_connected]}


async def _drop_connections(client: RedisClient) -> int:
    """Have each server close the client's connections (as a restart or a blip would)."""
    dropped = 0
    for (host, port), connections in _open_connections(client).items():
        admin = Redis(host=host, port=port)
        try:
            for connection in connections:
                local = connection._writer.get_extra_info("sockname")
                dropped += int(await admin.client_kill_filter(addr=f"{local[0]}:{local[1]}"))
        finally:
            await admin.aclose()
    return dropped


async def test_calls_whose_connections_died_are_sent_again_and_answered(
    redis: RedisClient, own_prefix: str
) -> None:
    """The servers dropped the client's connections: each pipelined call still gets its answer."""
    script = PipelinedScript(redis, ADD)
    keys = [f"{own_prefix}n{i}" for i in range(3)]
    assert await asyncio.gather(*(script(keys=[key], args=[1]) for key in keys)) == [1, 1, 1]
    assert await _drop_connections(redis) >= 1
    assert await asyncio.gather(*(script(keys=[key], args=[1]) for key in keys)) == [2, 2, 2]


async def test_calls_whose_connections_the_client_closed_are_sent_again(
    redis: RedisClient, own_prefix: str
) -> None:
    """The client closes its connections as a pipeline starts: every call is still answered.

    A cluster's slot-map refresh (a failover) disconnects each node's connections, in use or
    not; redis-py's cluster pipeline then fails every command it was about to write with an
    ``AttributeError`` (no writer). Before the fix such callers got that error (a socket's
    ``auth`` was closed 1011 in the failover test).
    """
    script = PipelinedScript(redis, ADD)
    keys = [f"{own_prefix}n{i}" for i in range(6)]
    assert await asyncio.gather(*(script(keys=[key], args=[1]) for key in keys)) == [1] * 6
    calls = [asyncio.ensure_future(script(keys=[key], args=[1])) for key in keys]
    if isinstance(redis, RedisCluster):
        await asyncio.gather(*(node.disconnect() for node in redis.get_nodes()))
    else:
        await redis.connection_pool.disconnect()
    assert await asyncio.gather(*calls) == [2] * 6


async def test_a_pipeline_that_cannot_be_sent_fails_every_call() -> None:
    """No Redis listening: each caller hears the connection error; nothing hangs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        client = create_redis(f"redis://127.0.0.1:{port}/0")
        script = PipelinedScript(client, ADD)
        results = await asyncio.wait_for(
            asyncio.gather(
                *(script(keys=["k"], args=[1]) for _ in range(3)), return_exceptions=True
            ),
            timeout=30,
        )
        await client.aclose()
    assert all(isinstance(result, RedisConnectionError) for result in results)


async def test_closing_the_loop_under_a_pipeline_cancels_its_callers(
    redis: RedisClient, own_prefix: str
) -> None:
    """The sending task is cancelled (the loop is shutting down): no caller waits forever."""
    script = PipelinedScript(redis, ADD)
    calls = [asyncio.ensure_future(script(keys=[f"{own_prefix}n{i}"], args=[1])) for i in range(2)]
    await asyncio.sleep(0)  # queued
    await asyncio.sleep(0)  # the sending task started
    for task in list(script._running):
        task.cancel()
    done = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=5)
    assert all(isinstance(result, asyncio.CancelledError) for result in done)
