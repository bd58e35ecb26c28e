"""scripts/loopback_only.py: a command with no network but one relayed port (how newman runs)."""

from __future__ import annotations

import asyncio
import sys

from tests.fixtures.processes import free_port

PROBE = """
import socket, sys
port, other = int(sys.argv[1]), int(sys.argv[2])
print(socket.if_nameindex())
with socket.create_connection(("127.0.0.1", port), timeout=5) as relayed:
    print(relayed.recv(64).decode())
try:
    socket.create_connection(("127.0.0.1", other), timeout=5).close()
    print("other port reachable")
except OSError:
    print("other port refused")
"""


async def test_only_the_relayed_port_is_reachable() -> None:
    """Inside: one interface (its own loopback); the relayed port answers; another does not."""

    async def hello(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello from the host")
        await writer.drain()
        writer.close()

    port, other = free_port(), free_port()
    servers = [await asyncio.start_server(hello, "127.0.0.1", p) for p in (port, other)]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.loopback_only", "--port", str(port), "--",
            sys.executable, "-c", PROBE, str(port), str(other),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        for server in servers:
            server.close()
    assert process.returncode == 0
    assert out.decode().splitlines() == [
        "[(1, 'lo')]",
        "hello from the host",
        "other port refused",
    ]
