"""Concurrent calls for the same key share one call and its result (Go's singleflight).

When a thousand sockets come back at once they ask the same things at the same moment: the
same group's last seq, the same user's membership. One of them asks the backend; the others
wait for that answer instead of asking again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Calls in flight, by key."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[V]] = {}

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """``call()``'s result, or the result of the identical call already in flight.

        A failure reaches every caller that shared the call.
        """
        flight = self._flights.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            result = await call()
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            future.exception()  # retrieved here: nobody else may be waiting
            raise
        finally:
            del self._flights[key]
        future.set_result(result)
        return result
