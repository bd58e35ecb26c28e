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
from server.settings import Settings
from server.ws.uvicorn_protocol import FrameWriterProtocol

GRACEFUL_SHUTDOWN_S = 15


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
        http=with_head_deadline(settings.http_head_timeout_s),
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


def main(argv: list[str] | None = None) -> None:
    """Serve on ``--host`` (default 127.0.0.1) and ``--port`` (``$PORT``, else 8000)."""
    parser = argparse.ArgumentParser(description="Run a StudyBuddy node.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    # Fan-out allocates many short-lived objects; collect the young generation less often so
    # full collections (which pause every socket) stay rare.
    gc.set_threshold(50_000, 20, 20)
    DrainingServer(config(Settings.from_env(), args.host, args.port)).run()


if __name__ == "__main__":  # pragma: no cover - the process entry point
    main()
