"""Run one node: ``python -m server.serve`` (the Procfile's ``web`` line, and ``make run``).

uvicorn with the production socket settings (no compression, 64 KiB frames, pings every
``WS_HEARTBEAT_S``, bounded graceful shutdown), plus a drain on SIGTERM: the node stops
accepting, reports not-ready, and closes its sockets with 1001 in batches so that clients do
not all reconnect to the surviving nodes in the same instant. uvicorn then finishes what is
left (1012), and the lifespan flushes the persister.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
from typing import Any

import uvicorn

from server.http_protocol import with_head_deadline
from server.settings import Settings, SettingsError
from server.ws.uvicorn_protocol import FrameWriterProtocol

GRACEFUL_SHUTDOWN_S = 15

MAX_PORT = 65535


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a socket drain in front of its shutdown."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop listening and drain the node's sockets, then shut down as uvicorn does."""
        state: dict[str, Any] = getattr(self.lifespan, "state", {})
        node = state.get("node")
        if node is not None:
            for server in self.servers:
                server.close()
            await node.drain(node.settings.shutdown_grace_s)
        await super().shutdown(sockets)


def config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration of a node."""
    return uvicorn.Config(
        "server.app:create_app",
        factory=True,
        host=host,
        port=port,
        ws=FrameWriterProtocol,
        http=with_head_deadline(settings.http_head_timeout_s, settings.http_send_timeout_s),
        loop="auto",  # uvloop where installed (ADR 0011), else asyncio
        ws_max_size=65536,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_heartbeat_s,
        ws_ping_timeout=settings.ws_heartbeat_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=None,
    )


def port_number(text: str) -> int:
    """A TCP port, 1..65535 (the kernel would wrap a larger one to another port).

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PORT):
        raise argparse.ArgumentTypeError(f"must be a port number 1..{MAX_PORT}, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    """Serve on ``--host`` (default 127.0.0.1) and ``--port`` (``$PORT``, else 8000).

    A configuration that cannot work stops the process with one line naming the variable
    (exit status 2), not a traceback.
    """
    parser = argparse.ArgumentParser(description="Run a StudyBuddy node.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=port_number, default=os.environ.get("PORT", "8000"), help="or $PORT"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        parser.exit(2, f"studybuddy: {exc}\n")
    # Fan-out allocates many short-lived objects; collect the young generation less often so
    # full collections (which pause every socket) stay rare.
    gc.set_threshold(50_000, 20, 20)
    DrainingServer(config(settings, args.host, args.port)).run()


if __name__ == "__main__":  # pragma: no cover - the process entry point
    main()
