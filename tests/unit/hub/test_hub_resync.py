"""After a bus reconnect the hub looks again only at the groups whose channels were on it.

On a Redis Cluster each partition has its own subscriber connection; a failover reconnects
the partitions of one primary. The groups of the others lost nothing, and replaying them too
would make every shard's reconnect cost a catch-up read for every subscribed socket.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from server.bus.base import Resync
from server.bus.memory import MemoryBus
from server.hub.hub import Hub
from server.realtime.envelope import group_channel
from server.realtime.log import Replay
from server.realtime.registry import MemoryRegistry
from tests.fixtures.fake_asgi import FakeSocket, make_connection

GROUPS = [uuid.UUID(int=n) for n in (1, 2, 3)]


class ReconnectingBus(MemoryBus):
    """The in-process bus, with a reconnect the test can stage."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: list[Resync] = []

    def on_resync(self, callback: Resync) -> None:
        self.callbacks.append(callback)

    def reconnected(self, channels: frozenset[str]) -> None:
        for callback in self.callbacks:
            callback(channels)


class Members:
    """Everyone may read every group."""

    async def may_read(self, group_id: uuid.UUID, user_id: uuid.UUID) -> None:
        return None


class Log:
    """A log in which every group stands at seq 5 and nothing is missed; replays recorded."""

    def __init__(self) -> None:
        self.replays: list[uuid.UUID] = []

    async def last_seq(self, group_id: uuid.UUID) -> int:
        return 5

    async def replay(self, group_id: uuid.UUID, since_seq: int, upto: int) -> Replay:
        self.replays.append(group_id)
        return Replay(last_seq=5, frames=[], recovered=True)


async def test_a_reconnect_fills_only_the_groups_of_its_channels() -> None:
    """Three groups subscribed; the shard of one reconnects: that group alone is caught up."""
    bus, log = ReconnectingBus(), Log()
    hub = Hub(bus, MemoryRegistry(), cast(Any, Members()), log, max_sockets=3, window=10)
    hub.start()
    conn = make_connection(FakeSocket())
    assert await hub.admit(conn)
    for group_id in GROUPS:
        await hub.subscribe(conn, group_id, since_seq=None)

    bus.reconnected(frozenset({group_channel(GROUPS[1]), "u:elsewhere"}))
    for _ in range(100):
        if log.replays:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # time for reads of other groups, were any started
    await hub.stop()

    assert log.replays == [GROUPS[1]]
