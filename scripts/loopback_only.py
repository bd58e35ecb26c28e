"""Run a command with no network but its own loopback, reaching one port of the host's.

``python -m scripts.loopback_only --port P -- CMD``: how ``make postman`` runs newman. ``CMD``
runs in a new network namespace (``unshare --net``; as root, or with ``--map-root-user``
otherwise) whose only interface is a loopback of its own. A relay carries each connection to
127.0.0.1:P inside it, through a Unix socket (file systems are shared across network
namespaces), to 127.0.0.1:P outside, where the node listens. Nothing else is reachable: no
other host, no name server, no other port of this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import shutil
import socket
import struct
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _relay(
    connect: Connect,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            far_reader, far_writer = await connect()
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, far_writer), _pump(far_reader, writer))

    return handle


def loopback_up() -> None:
    """Bring the namespace's ``lo`` up (what ``ip link set lo up`` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


async def inside(path: str, port: int, command: list[str]) -> int:
    """In the namespace: loopback up, 127.0.0.1:``port`` relayed to ``path``, run ``command``."""
    loopback_up()
    server = await asyncio.start_server(
        _relay(lambda: asyncio.open_unix_connection(path)), "127.0.0.1", port
    )
    async with server:
        process = await asyncio.create_subprocess_exec(*command)
        return await process.wait()


async def outside(port: int, command: list[str]) -> int:
    """Relay a Unix socket to 127.0.0.1:``port`` and run ``command`` in a new namespace."""
    folder = Path(tempfile.mkdtemp(prefix="loopback-only-"))
    path = str(folder / "relay.sock")
    server = await asyncio.start_unix_server(
        _relay(lambda: asyncio.open_connection("127.0.0.1", port)), path
    )
    unshare = ["unshare", "--net", *(["--map-root-user"] if os.geteuid() else [])]
    inner = [sys.executable, "-m", "scripts.loopback_only", "--inside", path, "--port", str(port)]
    try:
        async with server:
            process = await asyncio.create_subprocess_exec(*unshare, *inner, "--", *command)
            return await process.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Parse arguments and run; exit with the command's status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="the host port to reach")
    parser.add_argument("--inside", metavar="SOCKET", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if args.inside:
        sys.exit(asyncio.run(inside(args.inside, args.port, command)))
    sys.exit(asyncio.run(outside(args.port, command)))


if __name__ == "__main__":
    main()
