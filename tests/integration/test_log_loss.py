"""A Redis that loses its data under traffic (no AOF): no seq reused, nothing acked after is lost.

Two nodes share a Redis of this test's own that persists nothing. It is SIGKILLed and started
empty, or flushed, while both nodes take sends. Messages acked before the loss but not yet
stored are gone with it (that is what running without AOF means); everything the product
promises still holds: seqs are never handed out twice, every message acked after the loss
reaches history, subscribers are told to reload, and the loss is logged and counted.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from websockets.exceptions import ConnectionClosed

from tests.factories.groups import public_group
from tests.factories.users import Account, account
from tests.fixtures.processes import NodeProcess, cluster_env, migrate
from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.wsclient import socket

pytestmark = pytest.mark.slow

PER_PHASE = 30


@dataclass
class Ledger:
    """Every ack a sender got: seq -> message id, and the seqs of each phase."""

    by_seq: dict[int, str] = field(default_factory=dict)
    phases: dict[str, list[int]] = field(default_factory=dict)

    def record(self, phase: str, ack: dict[str, Any]) -> None:
        """Keep an ack; a seq acked twice for two different messages is a reuse."""
        seq, message_id = ack["seq"], ack["message_id"]
        assert self.by_seq.setdefault(seq, message_id) == message_id, f"seq {seq} reused"
        self.phases.setdefault(phase, []).append(seq)


async def send_until_acked(url: str, user: Account, group: str, cmid: str) -> dict[str, Any]:
    """Send on a fresh socket, retrying (same client_msg_id) through an outage, up to 30 s."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            async with socket(url, user.token) as ws:
                await ws.send(
                    {"type": "send", "group_id": group, "body": cmid, "client_msg_id": cmid}
                )
                frame = await ws.recv(timeout=5)
                while frame["type"] not in ("ack", "error"):
                    frame = await ws.recv(timeout=5)
                if frame["type"] == "ack":
                    return frame
                assert frame["code"] == "SERVICE_UNAVAILABLE", frame
        except (ConnectionClosed, OSError, TimeoutError):
            pass
        assert asyncio.get_running_loop().time() < deadline, f"{cmid} was never acked"
        await asyncio.sleep(0.2)


async def phase(
    nodes: tuple[NodeProcess, NodeProcess], senders: list[Account], group: str, name: str,
    ledger: Ledger,
) -> None:  # fmt: skip
    """Each sender sends PER_PHASE messages through its own node, one at a time."""

    async def run(node: NodeProcess, user: Account) -> None:
        for n in range(PER_PHASE):
            ledger.record(
                name, await send_until_acked(node.ws_url, user, group, f"{name}-{user.id}-{n}")
            )

    await asyncio.gather(*(run(node, user) for node, user in zip(nodes, senders, strict=True)))


async def history(http: httpx.AsyncClient, user: Account, group: str) -> dict[int, str]:
    """Every stored message of the group: seq -> message id."""
    found: dict[int, str] = {}
    page = 1
    while True:
        response = await http.get(
            f"/api/v1/study-groups/{group}/messages",
            headers=user.headers,
            params={"page": str(page), "page_size": "100", "sort": "seq"},
        )
        data = response.json()["data"]
        found.update({m["seq"]: m["id"] for m in data})
        if len(data) < 100:
            return found
        page += 1


def losses_counted(node: NodeProcess) -> float:
    """The node's ``studybuddy_message_log_losses_total``."""
    text = httpx.get(f"{node.base_url}/health/metrics", timeout=5).text
    match = re.search(r"^studybuddy_message_log_losses_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def forgetful_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis of this test's own that persists nothing (no AOF, no snapshots)."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder, extra=["--appendonly", "no"]).start()
    yield server
    server.kill()


@pytest.mark.parametrize("loss", ["sigkill-and-restart", "flushall"])
async def test_a_redis_losing_its_data_reuses_no_seq_and_loses_no_later_ack(
    pg_url: str, tmp_path: Path, own_prefix: str, forgetful_redis: OwnRedis, loss: str
) -> None:
    """Before the loss, A and B take 60 sends; then Redis loses everything; then 60 more."""
    env = cluster_env(pg_url, own_prefix, tmp_path, REDIS_URL=forgetful_redis.url)
    nodes = (
        NodeProcess(env).start(tmp_path / "a.log"),
        NodeProcess(env).start(tmp_path / "b.log"),
    )
    try:
        async with httpx.AsyncClient(base_url=nodes[1].base_url, timeout=10) as http:
            owner, watcher = await account(http), await account(http)
            senders = [await account(http), await account(http)]
            group = await public_group(http, owner, watcher, *senders)
            ledger = Ledger()
            async with socket(nodes[1].ws_url, watcher.token) as live:
                await live.subscribe(group)
                await phase(nodes, senders, group, "before", ledger)
                if loss == "flushall":
                    redis_sync.Redis(port=forgetful_redis.port).flushall()
                else:
                    forgetful_redis.kill()
                    await forgetful_redis.astart()
                await phase(nodes, senders, group, "after", ledger)
                seen = await watched_seqs(live)
            assert seen == sorted(set(seen)), "a subscriber saw a seq twice or out of order"

            after = ledger.phases["after"]
            assert min(after) > max(ledger.phases["before"])  # numbering resumed above
            stored = await eventually_stored(http, watcher, group, after)
            for seq in after:
                assert stored[seq] == ledger.by_seq[seq]  # acked after the loss: stored, same id
            for seq, message_id in stored.items():
                assert ledger.by_seq.get(seq, message_id) == message_id  # no seq reused

            async with socket(nodes[0].ws_url, watcher.token) as again:
                told = await again.subscribe(group, since_seq=max(ledger.phases["before"]))
                assert told["recovered"] is False  # the client reloads history
        assert sum(losses_counted(node) for node in nodes) >= 1
        assert any("lost its counter" in node.log() for node in nodes)
    finally:
        for node in nodes:
            node.stop()


async def watched_seqs(live: Any) -> list[int]:
    """The seqs a subscriber received until the hub told it to resubscribe (or it went quiet)."""
    seqs: list[int] = []
    try:
        while True:
            frame = await live.recv(timeout=2)
            if frame["type"] == "message":
                seqs.append(frame["seq"])
    except (ConnectionClosed, TimeoutError):
        return seqs


async def eventually_stored(
    http: httpx.AsyncClient, user: Account, group: str, seqs: list[int]
) -> dict[int, str]:
    """History, once every seq of ``seqs`` is in it (the persisters' lag allowed, 10 s)."""
    for _ in range(100):
        stored = await history(http, user, group)
        if set(seqs) <= set(stored):
            return stored
        await asyncio.sleep(0.1)
    missing = sorted(set(seqs) - set(stored))
    raise AssertionError(f"acked after the loss but not stored: {missing}")


async def test_the_embedded_log_numbers_on_after_a_restart_and_jumps_after_a_crash(
    tmp_path: Path,
) -> None:
    """Embedded default: a clean restart continues at the next seq; a SIGKILL jumps and says so."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'studybuddy.db'}",
        "MEDIA_DIR": str(tmp_path / "media"),
        "REDIS_URL": "",
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_AUTH": "100000/60",
        "LOG_LEVEL": "INFO",
    }
    migrate(env)
    node = NodeProcess(env).start(tmp_path / "first.log")
    async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as http:
        user = await account(http)
        group = await public_group(http, user)
    seqs = [(await send_until_acked(node.ws_url, user, group, f"one-{n}"))["seq"] for n in range(3)]
    assert seqs == [1, 2, 3]
    node.stop()  # SIGTERM: the persister flushes, unused seqs are given back
    node = NodeProcess(env, port=node.port).start(tmp_path / "second.log")
    assert (await send_until_acked(node.ws_url, user, group, "two"))["seq"] == 4
    node.stop(signal.SIGKILL)
    node = NodeProcess(env, port=node.port).start(tmp_path / "third.log")
    try:
        jumped = (await send_until_acked(node.ws_url, user, group, "three"))["seq"]
        assert jumped > 4 + 1  # above the block the crashed process held: nothing reused
        assert "lost its counter" in node.log()
    finally:
        node.stop()
