"""Run a command against one throw-away node: ``python -m scripts.api_node [--sign-in] -- CMD``.

What ``make schemathesis`` and ``make postman`` use. A new PostgreSQL database on the local
server (``TEST_POSTGRES_URL``'s, default 127.0.0.1:5432), migrated; a Redis key prefix of its
own (``REDIS_URL``, default the local Redis); one node started as the Procfile starts it
(``python -m server.serve``) on a free loopback port, with generous rate limits, an
access-token lifetime of an hour so that a long run is not cut short by either, and
``WEBHOOK_ALLOWED_HOSTS=127.0.0.1`` so that a webhook may point at a local receiver. Then ``CMD``
runs with these in its environment:

- ``STUDYBUDDY_URL``: the node's root URL;
- with ``--sign-in``: ``STUDYBUDDY_EMAIL``, ``STUDYBUDDY_PASSWORD`` and ``STUDYBUDDY_TOKEN``
  of a registered, signed-in user, and ``STUDYBUDDY_FRIEND_ID``, another user's id.

With ``--loopback-only``, ``CMD`` runs with no network but the node's port on its own
loopback (:mod:`scripts.loopback_only`).

The node, the database and the keys are removed afterwards; the exit status is ``CMD``'s.
The node's log is ``api-node.log`` in the working directory when the command fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from scripts.drill.nodes import Node
from tests.fixtures.services import REDIS_URL, drop_redis_prefix, fresh_database

PASSWORD = f"api-node-{uuid.uuid4().hex}"
"""Random per run: the document's example password must not be the test user's, or the run's
examples of a password change and an account deletion would sign the user out for good."""


def environment(database_url: str, prefix: str, media: Path) -> dict[str, str]:
    """The node's environment."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", REDIS_URL),
        "REDIS_PREFIX": prefix,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_AUTH": "1000000/60",
        "RATE_LIMIT_USER": "1000000/60",
        "RATE_LIMIT_ANON": "1000000/60",
        "ACCESS_TOKEN_TTL_S": "3600",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "MEDIA_DIR": str(media),
        "SHUTDOWN_GRACE_S": "2",
    }


async def register(base_url: str, name: str) -> dict[str, Any]:
    """Register and sign in a user; their email, id and access token."""
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    body = {
        "email": email,
        "username": f"{name}_{uuid.uuid4().hex[:8]}",
        "password": PASSWORD,
        "display_name": name.title(),
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        created = await http.post("/api/v1/auth/register", json=body)
        created.raise_for_status()
        login = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
    return {
        "email": email,
        "id": created.json()["data"]["id"],
        "token": login.json()["data"]["access_token"],
    }


async def run(command: list[str], *, sign_in: bool, loopback_only: bool = False) -> int:
    """Start the node, run ``command`` against it, clean up; ``command``'s exit status."""
    prefix = f"sbapi:{uuid.uuid4().hex[:8]}:"
    folder = Path(tempfile.mkdtemp(prefix="sbapi-"))
    log = folder / "node.log"
    try:
        async with fresh_database("sbapi") as url:
            node = Node(environment(url, prefix, folder / "media"), log)
            node.start()
            try:
                await node.wait_ready()
                env = {**os.environ, "STUDYBUDDY_URL": node.http}
                if sign_in:
                    user, friend = (
                        await register(node.http, "tester"),
                        await register(node.http, "friend"),
                    )
                    env |= {
                        "STUDYBUDDY_EMAIL": user["email"],
                        "STUDYBUDDY_PASSWORD": PASSWORD,
                        "STUDYBUDDY_TOKEN": user["token"],
                        "STUDYBUDDY_FRIEND_ID": friend["id"],
                    }
                if loopback_only:
                    relay = ["-m", "scripts.loopback_only", "--port", str(node.port), "--"]
                    command = [sys.executable, *relay, *command]
                code = await asyncio.to_thread(_call, command, env)
            finally:
                node.stop()
        if code != 0:
            shutil.copy(log, "api-node.log")
        return code
    finally:
        await drop_redis_prefix(prefix)
        shutil.rmtree(folder, ignore_errors=True)


def _call(command: list[str], env: dict[str, str]) -> int:
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603


def main() -> None:
    """Parse arguments, run, exit with the command's status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sign-in", action="store_true", help="register and sign in a user")
    parser.add_argument(
        "--loopback-only", action="store_true", help="no network for CMD but the node's port"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    sys.exit(asyncio.run(run(command, sign_in=args.sign_in, loopback_only=args.loopback_only)))


if __name__ == "__main__":
    main()
