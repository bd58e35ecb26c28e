"""A request's head must arrive within HTTP_HEAD_TIMEOUT_S: no connection held by trickling."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings

HEAD_TIMEOUT_S = 1.0


@pytest.fixture
async def node(pg_url: str, tmp_path: Path, own_prefix: str) -> AsyncIterator[RunningServer]:
    """A node allowing one second for a request's head."""
    settings = make_settings(
        pg_url, REDIS_URL, own_prefix, tmp_path, http_head_timeout_s=HEAD_TIMEOUT_S
    )
    async with serve(settings) as running:
        yield running


async def _connect(node: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = node.base_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> float | None:
    """Seconds until the server closed the connection, or None if it is still open."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return None
    return time.monotonic() - started


async def test_a_head_sent_a_byte_at_a_time_is_cut_off(node: RunningServer) -> None:
    """Bytes keep coming, but the head is not done in time: the connection is closed."""
    reader, writer = await _connect(node)
    started = time.monotonic()
    for byte in b"GET /health HTTP/1.1\r\nHost: node\r\nX-Slow: " + b"a" * 100:
        if reader.at_eof() or writer.is_closing():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.1)
    assert await _closed_within(reader, 3) is not None
    assert time.monotonic() - started < HEAD_TIMEOUT_S + 3
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed(node: RunningServer) -> None:
    """A connection opened and left silent does not stay open."""
    reader, writer = await _connect(node)
    assert await _closed_within(reader, HEAD_TIMEOUT_S + 2) is not None
    writer.close()


async def test_prompt_requests_and_kept_alive_connections_are_served(node: RunningServer) -> None:
    """A complete head in time is answered; the next request on the connection too."""
    reader, writer = await _connect(node)
    for _ in range(2):
        writer.write(b"GET /health HTTP/1.1\r\nHost: node\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(
            next(
                line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            ).split(b":")[1]
        )
        await reader.readexactly(length)
        await asyncio.sleep(HEAD_TIMEOUT_S + 0.2)  # idle between requests: keep-alive's business
    writer.close()


UPGRADE = (
    b"GET /api/v1/ws HTTP/1.1\r\nHost: node\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


async def _answer(node: RunningServer, head: bytes) -> tuple[bytes, float | None]:
    """What the node answers to ``head``, and how soon it closed the connection after."""
    reader, writer = await _connect(node)
    writer.write(head)
    started = time.monotonic()
    answer = b""
    try:
        async with asyncio.timeout(5):
            while chunk := await reader.read(4096):
                answer += chunk
        closed: float | None = time.monotonic() - started
    except TimeoutError:
        closed = None
    writer.close()
    return answer, closed


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        (b"X-Big: " + b"a" * 9000 + b"\r\n", b"400"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(200)), b"400"),
    ],
    ids=["header-over-8KiB", "200-headers"],
)
async def test_an_upgrade_with_oversized_headers_is_answered_and_closed(
    node: RunningServer, extra: bytes, status: bytes
) -> None:
    """400 in the contract's envelope, then closed at once.

    It was never answered (uvicorn waited for a request ``websockets`` had refused) and the
    connection stayed open for as long as the client liked.
    """
    answer, closed = await _answer(node, UPGRADE + extra + b"\r\n")
    assert closed is not None and closed < 2
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"x-request-id:" in head.lower()
    assert json.loads(body)["error"]["code"] == "VALIDATION_ERROR"
