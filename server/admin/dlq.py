"""Dead letters: jobs that failed every attempt.

``python -m server.admin dlq list [--all] [--limit N]`` shows those not replayed yet (all
with ``--all``), newest first; ``show ID`` prints one with its arguments and last error as
JSON; ``replay ID`` makes its row live again (a dead webhook delivery or notification email
is pending again) and queues the job anew with fresh attempts (once per dead letter);
``purge [--replayed]`` deletes them all (only the replayed ones with ``--replayed``).

It reads the same environment as the other processes. With Redis the replayed job goes to
the workers; on the embedded default this command runs it itself before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker

from server.container import BrokerJobs, Domain, build_domain, build_realtime
from server.errors import AppError
from server.resources import open_resources
from server.services.clock import Clock
from server.settings import Settings, SettingsError
from server.store.models import DeadLetter
from server.tasks.broker import drain
from server.tasks.jobs import register_jobs, replay_dead_letter

NAME = "dlq"
HELP = "list, show, replay and purge dead letters (jobs that failed every attempt)"
ERROR_PREVIEW = 80
MAX_LIMIT = 10_000
Action = Callable[[Domain, AsyncBroker, argparse.Namespace], Awaitable[int]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's actions and options."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--all", action="store_true", help="include replayed ones")
    listing.add_argument("--limit", type=_count, default=50, help="at most this many (50)")
    show = actions.add_parser("show", help="one dead letter as JSON")
    show.add_argument("id", type=uuid.UUID)
    replay = actions.add_parser("replay", help="queue the job again (once)")
    replay.add_argument("id", type=uuid.UUID)
    purge = actions.add_parser("purge", help="delete dead letters")
    purge.add_argument("--replayed", action="store_true", help="only those replayed")


def describe(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as plain data."""
    return {
        "id": str(letter.id),
        "task": letter.task,
        "args": letter.args,
        "kwargs": letter.kwargs,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "created_at": letter.created_at.isoformat(),
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
    }


def _line(letter: DeadLetter) -> str:
    state = "replayed" if letter.replayed_at else "waiting"
    error = " ".join(letter.last_error.split())[:ERROR_PREVIEW]
    args = ",".join(str(arg) for arg in letter.args)
    return (
        f"{letter.id}  {letter.created_at:%Y-%m-%d %H:%M:%S}  {state:8}  "
        f"{letter.task}({args})  x{letter.attempts}  {error}"
    )


def _count(text: str) -> int:
    """A positive whole number (``--limit``)."""
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= MAX_LIMIT):
        raise argparse.ArgumentTypeError(f"must be a number 1..{MAX_LIMIT}, not {text!r}")
    return int(text)


async def _list(domain: Domain, _broker: AsyncBroker, args: argparse.Namespace) -> int:
    letters = await domain.dead_letters.list(limit=args.limit, waiting=not args.all)
    for letter in letters:
        print(_line(letter))
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


async def _show(domain: Domain, _broker: AsyncBroker, args: argparse.Namespace) -> int:
    letter = await domain.dead_letters.get(args.id)
    print(json.dumps(describe(letter), indent=2))
    return 0


async def _replay(domain: Domain, broker: AsyncBroker, args: argparse.Namespace) -> int:
    letter = await replay_dead_letter(domain, BrokerJobs(broker), args.id)
    if isinstance(broker, InMemoryBroker):  # embedded default: the job runs here, now
        await drain(broker)
    print(f"replayed {letter.id}: {letter.task} queued again")
    return 0


async def _purge(domain: Domain, _broker: AsyncBroker, args: argparse.Namespace) -> int:
    removed = await domain.dead_letters.purge(replayed_only=args.replayed)
    print(f"purged {removed} dead letter(s)")
    return 0


ACTIONS: dict[str, Action] = {
    "list": _list,
    "show": _show,
    "replay": _replay,
    "purge": _purge,
}


async def execute(args: argparse.Namespace, settings: Settings) -> int:
    """Open the resources, build the use cases, and run the chosen action."""
    async with open_resources(settings) as resources:
        clock = Clock()
        domain = build_domain(resources, build_realtime(resources, clock), clock)
        broker = resources.broker
        register_jobs(broker)
        broker.state.domain = domain
        await broker.startup()
        try:
            return await ACTIONS[args.action](domain, broker, args)
        except AppError as exc:
            print(f"dlq {args.action}: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await broker.shutdown()


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run ``dlq <action>`` against the environment's database and queue."""
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"dlq: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(execute(args, settings))
