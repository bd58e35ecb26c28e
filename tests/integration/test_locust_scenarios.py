"""The real Locust scenarios against a node: a healthy one passes, faults fail the run.

Locust is not in the test environment (its pytest plugin would break the suite): it runs
as a subprocess of ``.venv-load`` (``make load-install``), against a node on PostgreSQL and
Redis. Each simulated person logs in from their own loopback address; with the contract's
auth limit (5/min per address) on, the flooder's single address must meet 429s. What is
checked is the accounting, not speed (the node shares its process with the test and the
machine with other work): the latency thresholds are widened twentyfold
(``--latency-scale``).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.admin import seed_plan
from server.admin.seed import seed
from server.admin.seed_plan import SeedPlan
from server.settings import Settings
from tests.fixtures.server import RunningServer, serve
from tests.fixtures.services import REDIS_URL, fresh_database
from tests.fixtures.settings import make_settings
from tests.fixtures.ws_fault_proxy import FaultProxy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LOCUST = ROOT / ".venv-load" / "bin" / "locust"
PLAN = SeedPlan(24, 2)


@asynccontextmanager
async def _seeded_node(prefix: str, media: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    async with fresh_database("sblocust") as url:
        settings: Settings = make_settings(url, REDIS_URL, prefix, media, **overrides)
        await seed(settings, PLAN)
        async with serve(settings) as node:
            yield node


@pytest.fixture
async def seeded_node(own_prefix: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A node on its own seeded database, with the contract's auth limit."""
    async with _seeded_node(own_prefix, tmp_path / "media", rate_limit_auth="5/60") as node:
        yield node


@pytest.fixture
async def proxied_node(own_prefix: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A seeded node with the test settings' generous auth limit.

    Behind a plain TCP proxy every client has the proxy's address.
    """
    async with _seeded_node(own_prefix, tmp_path / "media") as node:
        yield node


async def _locust(node: RunningServer, folder: Path, *args: str) -> tuple[int, str]:
    if not LOCUST.exists():
        pytest.fail("Locust's venv is missing: run `make load-install` (make test does)")
    command = [
        str(LOCUST), "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--only-summary", "-u", "12", "-r", "4", "-t", "20s",
        "--host", node.base_url, "--csv", str(folder / "run"),
        "--verdict-file", str(folder / "verdict.json"),
        "--seed-users", str(PLAN.users), "--seed-groups", str(PLAN.groups),
        "--codec", "both", "--latency-scale", "20", *args,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, output.decode(errors="replace")


def _verdict_and_errors(output: str) -> str:
    """What explains a failed run: the verdict, errors and tracebacks, not the tables."""
    keep = ("PASS ", "FAIL ", "VERDICT", "Error", "error", "Traceback", "  File", "    ")
    return "\n".join(line for line in output.splitlines() if line.startswith(keep))[-6000:]


def _rows(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (folder / "run_stats.csv").open() as stats:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}


async def test_a_healthy_node_passes_every_threshold(
    seeded_node: RunningServer, tmp_path: Path
) -> None:
    """Talkers, listeners, students and the flooder for 20 s: nothing lost, 429s where due."""
    status, output = await _locust(
        seeded_node, tmp_path, "Listener", "Chatter", "Student", "LoginFlood"
    )
    assert status == 0, _verdict_and_errors(output)
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is True
    assert verdict["ramp"]["seconds"] > 0
    figures = verdict["figures"]
    assert figures["deliveries"] > 0
    assert figures["lost"] == figures["out_of_order"] == figures["duplicated"] == 0
    assert figures["errors"] == 0
    assert figures["flood_rounds"] == figures["flood_rounds_limited"] >= 1
    rows = _rows(tmp_path)
    for key in [("WS", "connect"), ("WS", "subscribe"), ("WS", "ack"), ("WS", "delivery")]:
        assert int(rows[key]["Request Count"]) > 0, key
    login = rows[("POST", "/api/v1/auth/login")]
    assert int(login["Request Count"]) == 11
    assert int(login["Failure Count"]) == 0
    assert "VERDICT: PASS" in output


async def test_the_verdict_fails_when_a_threshold_is_missed(
    seeded_node: RunningServer, tmp_path: Path
) -> None:
    """Without distinct addresses the auth bucket bites: logins fail and so does the run.

    With ``--single-source`` every person logs in from one address, as in the issue's
    report: after five logins the node answers 429, those users stop with an error, and the
    verdict fails with exit status 1.
    """
    status, output = await _locust(seeded_node, tmp_path, "--single-source", "Student")
    assert status == 1, output[-4000:]
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is False
    assert verdict["figures"]["errors"] >= 6
    assert "VERDICT: FAIL" in output


async def test_a_dropped_and_a_reordered_message_fail_the_run(
    proxied_node: RunningServer, tmp_path: Path
) -> None:
    """Between the node and the listeners, seq 2 vanishes and seq 3 comes after seq 4.

    A test double on the wire (``FaultProxy``) breaks the contract's delivery guarantee;
    the listeners' accounting reports a loss and an out-of-order delivery, and the run
    fails with exit status 1.
    """
    proxy = FaultProxy(
        proxied_node.server.servers[0].sockets[0].getsockname()[1], drop={2}, hold={3}
    )
    await proxy.start()
    try:
        through_proxy = RunningServer(
            proxied_node.app, f"http://127.0.0.1:{proxy.port}", "", proxied_node.server
        )
        run = asyncio.create_task(_locust(through_proxy, tmp_path, "Listener"))
        await asyncio.sleep(8)
        await _post_messages(proxied_node.base_url, count=5)
        status, output = await run
    finally:
        await proxy.stop()
    assert proxy.dropped >= 1
    assert proxy.reordered >= 1
    assert status == 1, output[-4000:]
    figures = json.loads((tmp_path / "verdict.json").read_text())["figures"]
    assert figures["lost"] >= 1
    assert figures["out_of_order"] >= 1
    assert figures["deliveries"] > 0
    assert "FAIL  lost deliveries" in output


async def _post_messages(base_url: str, count: int) -> None:
    """Person 0 (in both seeded groups) posts ``count`` stamped messages to each group."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": seed_plan.email(0), "password": seed_plan.PASSWORD},
        )
        headers = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
        for number in range(count):
            for group in PLAN.groups_of(0):
                posted = await http.post(
                    f"/api/v1/study-groups/{seed_plan.group_id(group)}/messages",
                    json={
                        "body": f"note {number} #t={time.time():.6f}",
                        "client_msg_id": f"n{number}",
                    },
                    headers=headers,
                )
                assert posted.status_code == 201, posted.text
            await asyncio.sleep(0.3)
