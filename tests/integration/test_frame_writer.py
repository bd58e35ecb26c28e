"""Our uvicorn socket protocol on real sockets: the ``studybuddy.frames`` extension."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.hub.outlet import ws_frame as frame
from server.ws.uvicorn_protocol import EXTENSION, FrameWriterProtocol

Scope = dict[str, Any]


class App:
    """A tiny ASGI app that does what the client's first frame says, with the extension."""

    def __init__(self) -> None:
        self.results: list[object] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Serve one socket."""
        if scope["type"] != "websocket":
            return
        writer = scope["extensions"][EXTENSION]
        await receive()
        await send({"type": "websocket.accept"})
        command = (await receive()).get("text")
        if command == "frames":
            self.results.append(writer.write_frame(frame(b"one") + frame(b"\x01", binary=True)))
            self.results.append(writer.write_buffer_size())
        elif command == "abort":
            writer.abort_transport()
        elif command == "late":
            await send({"type": "websocket.close", "code": 4010, "reason": "slow consumer"})
            self.results.append(writer.write_frame(frame(b"too late")))
        with contextlib.suppress(Exception):
            while (await receive())["type"] != "websocket.disconnect":
                pass


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, str]]:
    """The app on uvicorn with our protocol, on a free port."""
    app = App()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=FrameWriterProtocol, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no started event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield app, f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_pre_framed_bytes_arrive_as_frames(served: tuple[App, str]) -> None:
    """Bytes handed to the extension reach the client as ordinary text and binary frames."""
    app, address = served
    async with connect(f"ws://{address}/") as ws:
        await ws.send("frames")
        assert await asyncio.wait_for(ws.recv(), 5) == "one"
        assert await asyncio.wait_for(ws.recv(), 5) == b"\x01"
    assert app.results == [True, 0]


async def test_nothing_is_written_after_the_close(served: tuple[App, str]) -> None:
    """Once the close frame is sent, the extension refuses writes: the close stays last."""
    app, address = served
    async with connect(f"ws://{address}/") as ws:
        await ws.send("late")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4010
    assert app.results == [False]


async def test_abort_drops_the_connection(served: tuple[App, str]) -> None:
    """``abort_transport`` ends the TCP connection without a close frame."""
    _, address = served
    async with connect(f"ws://{address}/") as ws:
        await ws.send("abort")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is None


async def test_a_refused_handshake_gets_an_http_error_and_the_server_carries_on(
    served: tuple[App, str],
) -> None:
    """An unsupported WebSocket version is refused before any scope exists; others still work."""
    _, address = served
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n"
    )
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.split()[1] == b"400"
    async with connect(f"ws://{address}/") as ws:
        await ws.send("frames")
        assert await asyncio.wait_for(ws.recv(), 5) == "one"
