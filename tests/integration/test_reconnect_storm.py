"""A reconnect storm: 2,000 sockets on 2 nodes, one node restarted under traffic.

Its sockets come back (full-jitter backoff, any node that answers, ``subscribe`` with
``since_seq``) and every client ends with the whole stream, each seq once, in order, within
30 s; nobody is closed as a slow consumer; the other node keeps serving its own sockets fast.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from loadtests.cluster import group_with_members, register_users
from loadtests.lean_client import Incoming, LeanSocket
from tests.fixtures.processes import NodeProcess, cluster_env

pytestmark = pytest.mark.slow

SOCKETS = 2000
USERS = 667
SEND_EVERY_S = 0.1
BACK_WITHIN_S = 30.0
OTHER_NODE_P99_S = 0.05


@dataclass
class Client:
    """One reconnecting member: what it received, how its sockets ended, its latencies."""

    user_id: str
    token: str
    home: int
    seqs: list[int] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    """(arrival time, publish-to-arrival seconds) of each message."""
    back_at: float | None = None

    def on_frame(self, sock: LeanSocket, frame: Incoming) -> None:
        if frame.type != "message":
            return
        self.seqs.append(frame.seq)  # duplicates and steps back are kept: the test looks
        created = datetime.fromisoformat(frame.created_at.replace("Z", "+00:00")).timestamp()
        self.latencies.append((time.monotonic(), sock.arrived - created))

    async def run(self, urls: list[str], group: str, stop: asyncio.Event) -> None:
        """Stay connected and subscribed until ``stop``; reconnect with full jitter."""
        attempt = 0
        while not stop.is_set():
            url = urls[(self.home + attempt) % len(urls)]
            try:
                sock = await LeanSocket.connect(url, self.on_frame, timeout=10)
            except (OSError, TimeoutError, ConnectionError, RuntimeError):
                attempt += 1
                await asyncio.sleep(random.uniform(0, min(5.0, 0.2 * 2**attempt)))
                continue
            try:
                await sock.hello(self.user_id, self.token, 10)
                since = {"since_seq": self.seqs[-1]} if self.seqs else {}
                frame = {"type": "subscribe", "group_id": group, **since}
                await sock.request(json.dumps(frame).encode(), "subscribed", 20)
                self.back_at, attempt = time.monotonic(), 0
                await asyncio.wait(
                    [sock.closed, asyncio.ensure_future(stop.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
            except (OSError, TimeoutError, ConnectionError, RuntimeError):
                attempt += 1
            finally:
                sock.close()
                if sock.closed.done():
                    self.closes.append(sock.closed.result())
            if not stop.is_set():
                await asyncio.sleep(random.uniform(0, min(5.0, 0.2 * 2**attempt)))


async def sender(url: str, user: tuple[str, str], group: str, stop: asyncio.Event) -> int:
    """Send a message every SEND_EVERY_S through the node that stays up; the last acked seq."""
    sock = await LeanSocket.connect(url, timeout=10)
    await sock.hello(*user, 10)
    last, n = 0, 0
    try:
        while not stop.is_set():
            frame = {"type": "send", "group_id": group, "body": f"m{n}", "client_msg_id": f"m{n}"}
            ack = await sock.request(json.dumps(frame).encode(), "ack", 10)
            last, n = ack.seq, n + 1
            await asyncio.sleep(SEND_EVERY_S)
    finally:
        sock.close()
    return last


async def test_a_restarted_node_s_sockets_come_back_gapless_and_the_other_node_keeps_up(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """2,000 sockets; node A SIGTERMed and started again; all back, gapless, within 30 s."""
    env = cluster_env(
        pg_url, own_prefix, tmp_path, LOG_LEVEL="WARNING", WS_MESSAGE_RATE="1000",
        WS_MESSAGE_BURST="1000",
    )  # fmt: skip
    nodes = [NodeProcess(env).start(tmp_path / f"{n}.log") for n in ("a", "b")]
    try:
        users = await register_users(nodes[1].base_url, USERS + 1, concurrency=20)
        group = await group_with_members(nodes[1].base_url, users[0][1], [t for _, t in users[1:]])
        author = users.pop()  # the sender's own socket, besides the members' three each
        clients = [Client(*users[i % USERS], home=i % 2) for i in range(SOCKETS)]
        urls = [node.ws_url for node in nodes]
        stop, sending = asyncio.Event(), asyncio.Event()
        running = [asyncio.create_task(c.run(urls, group, stop)) for c in clients]
        await _until(lambda: all(c.back_at for c in clients), 60, "the first admission")
        send = asyncio.create_task(sender(urls[1], author, group, sending))
        await asyncio.sleep(2)

        restarted_at = time.monotonic()
        nodes[0].stop(signal.SIGTERM, timeout=40)
        nodes[0] = NodeProcess(env, port=nodes[0].port).start(tmp_path / "a2.log")
        await asyncio.sleep(2)
        sending.set()
        last = await send
        await _until(
            lambda: all(c.seqs and c.seqs[-1] == last for c in clients),
            BACK_WITHIN_S - (time.monotonic() - restarted_at),
            "every client back with the last message",
        )
        stop.set()
        await asyncio.gather(*running)

        for client in clients:
            assert client.seqs == list(range(client.seqs[0], last + 1)), "a gap or a repeat"
            assert client.seqs[0] == 1
        assert not any(code == 4010 for c in clients for code in c.closes)
        during = [
            latency
            for c in clients
            if c.home == 1
            for at, latency in c.latencies
            if restarted_at <= at <= restarted_at + 10
        ]
        during.sort()
        assert during and during[int(len(during) * 0.99)] < OTHER_NODE_P99_S, during[-20:]
    finally:
        for node in nodes:
            node.stop(signal.SIGKILL)


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + max(timeout, 0.1)
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:.1f} s")
