"""The Redis client, with explicit timeouts and retries (redis-py 8 retries nothing by default)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

MAX_CONNECTIONS = 200
POOL_WAIT_S = 5.0


def create_redis(url: str) -> Redis:
    """A pooled client: 3 retries with jittered backoff, bounded connect and read times.

    The pool is a blocking one: when all its connections are busy (a reconnect storm), a
    command waits up to ``POOL_WAIT_S`` for one instead of failing at once.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=2,
        socket_timeout=5,
        socket_keepalive=True,
        health_check_interval=15,
    )
    return Redis.from_pool(pool)
