"""The webhook client against receivers that misbehave on the wire (local fakes)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from server.outbound.webhook_client import PostResult, WebhookClient
from server.security.webhook_urls import WebhookTarget

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def _receiver(serve: Serve) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            await serve(reader, writer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _post(port: int, timeout_s: float) -> tuple[PostResult, float]:
    url = f"http://127.0.0.1:{port}/hooks"
    target = WebhookTarget(url=url, scheme="http", host="127.0.0.1", port=port, target="/hooks")
    started = time.monotonic()
    result = await WebhookClient(timeout_s).post(
        target, ipaddress.ip_address("127.0.0.1"), b"{}", {}
    )
    return result, time.monotonic() - started


async def test_an_endless_answer_is_not_read() -> None:
    """A 200 whose body never ends: the status is taken and the body left unread."""
    sent = 0

    async def endless(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
        chunk = b"x" * 65536
        while sent < 10**10:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    async with _receiver(endless) as port:
        result, took = await _post(port, timeout_s=5)
    assert result.ok and result.status == 200
    assert took < 3 and sent < 64 * 2**20  # a few buffers, not the body


async def test_a_trickling_receiver_cannot_outlast_the_deadline() -> None:
    """A byte every 0.3 s never trips a per-read timeout; the attempt's deadline ends it."""

    async def trickle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.3)

    async with _receiver(trickle) as port:
        result, took = await _post(port, timeout_s=1)
    assert (result.status, result.error) == (None, "timed out")
    assert took < 2.5
