r"""StudyBuddy's Locust scenarios: ``make loadtest`` runs them against a 2-node deployment.

By hand, against a running deployment whose database was seeded with
``python -m server.admin seed --users N --groups M`` (the same N and M given here)::

    .venv-load/bin/locust -f loadtests/locustfile.py --headless -u 200 -r 5 -t 3m \\
        --host http://127.0.0.1:8080 --seed-users 1000 --seed-groups 100 \\
        Listener Chatter Student LoginFlood

The user classes named at the end choose the scenario: ``Listener Chatter Student
LoginFlood`` is the ``mixed`` study evening (weights 6:1:3, one flooder), ``Chatter`` alone
is all talkers, ``Student`` alone the REST journey. ``--codec json|msgpack|both`` picks the
socket subprotocol. At the end the thresholds of ``loadtests/verdict.py`` are checked and
the exit status is 1 when one is missed. Only loopback targets are accepted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from locust import events

from loadtests.scenarios.chatter import Chatter, Listener
from loadtests.scenarios.flood import LoginFlood
from loadtests.scenarios.student import Student
from loadtests.scenarios.thresholds import judge, spawned

__all__ = ["Chatter", "Listener", "LoginFlood", "Student"]


@events.init_command_line_parser.add_listener
def options(parser: Any, **_kwargs: Any) -> None:
    """StudyBuddy's options (also settable as ``LOADTEST_*`` environment variables)."""
    group = parser.add_argument_group("StudyBuddy")
    group.add_argument(
        "--seed-users",
        type=int,
        default=1000,
        env_var="LOADTEST_SEED_USERS",
        help="people seeded with python -m server.admin seed --users",
    )
    group.add_argument(
        "--seed-groups",
        type=int,
        default=100,
        env_var="LOADTEST_SEED_GROUPS",
        help="groups seeded (--groups)",
    )
    group.add_argument(
        "--groups-per-user",
        type=int,
        default=2,
        env_var="LOADTEST_GROUPS_PER_USER",
        help="seeded --groups-per-user",
    )
    group.add_argument(
        "--people-offset",
        type=int,
        default=0,
        env_var="LOADTEST_PEOPLE_OFFSET",
        help="first seeded person to play",
    )
    group.add_argument(
        "--codec",
        choices=["json", "msgpack", "both"],
        default="json",
        env_var="LOADTEST_CODEC",
        help="socket subprotocol (both: alternate)",
    )
    group.add_argument(
        "--single-source",
        action="store_true",
        env_var="LOADTEST_SINGLE_SOURCE",
        help="everyone from one address (shows why addresses are spread)",
    )
    group.add_argument(
        "--latency-scale",
        type=float,
        default=1.0,
        env_var="LOADTEST_LATENCY_SCALE",
        help="multiply the latency thresholds (tests of the accounting only)",
    )
    group.add_argument("--verdict-file", default="", env_var="LOADTEST_VERDICT_FILE",
                       help="where to write the verdict as JSON")  # fmt: skip


@events.init.add_listener
def only_loopback(environment: Any, **_kwargs: Any) -> None:
    """Refuse to load anything but 127.0.0.1 / localhost."""
    host = urlsplit(environment.host or "").hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(f"load tests only target loopback, not {host!r}")


@events.init.add_listener
def watch_ramp(environment: Any, **_kwargs: Any) -> None:
    """Note the end of the ramp-up (``spawning_complete`` does not pass the environment)."""
    environment.events.spawning_complete.add_listener(lambda **_: spawned(environment))


events.quitting.add_listener(judge)
