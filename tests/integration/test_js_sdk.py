"""The JavaScript SDK (clients/js): its unit tests on Node's runner, and its smoke test on a node.

Node 20 and npm are required: a missing one fails these tests, it does not skip them. The smoke
test's ``ws`` package is installed with ``npm ci`` from the committed lock file when missing.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import ROOT, NodeProcess, migrate
from tests.fixtures.services import REDIS_URL

pytestmark = pytest.mark.slow

JS = ROOT / "clients" / "js"
SMOKE = JS / "smoke"
REQUIRED_BEHAVIOURS = (
    "full-jitter backoff stays within [0, min(cap, base * 2^n)]",
    "reconnect delays are full jitter within [0, min(cap, base * 2^n)] and reset after ready",
    "an unacked send is resent after a reconnect with the same client_msg_id, delivered once",
    "messages are delivered once per seq, in order",
    "a gap (seq > last + 1) re-subscribes with since_seq and fills the hole in order",
    "recovered: false is surfaced so the app reloads history, and live messages continue",
    "refresh is sent before the token expires, with a new token, and scheduled again",
    "every client and server frame shape survives a MessagePack round trip",
)


def tool(name: str) -> str:
    """The path of a program the JS tests need; fail (never skip) without it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: the JS SDK tests need Node 20 and npm", False)
    return path


def node_binary() -> str:
    """Node, version 20 or newer."""
    node = tool("node")
    version = subprocess.run(  # noqa: S603 - fixed arguments
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"Node {version} is too old: the JS SDK tests need Node 20 or newer", False)
    return node


def run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a program to its end, capturing its output."""
    return subprocess.run(  # noqa: S603 - fixed arguments
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def smoke_packages() -> Path:
    """clients/js/smoke with its locked npm packages installed."""
    if not (SMOKE / "node_modules" / "ws" / "package.json").is_file():
        result = run([tool("npm"), "ci", "--no-audit", "--no-fund"], SMOKE, 300)
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {SMOKE}:\n{result.stdout}\n{result.stderr}", False)
    return SMOKE


@pytest.fixture(params=["postgres-redis", "embedded"])
def sdk_node(
    request: pytest.FixtureRequest, pg_url: str, own_prefix: str, tmp_path: Path
) -> Iterator[NodeProcess]:
    """A node process for the smoke test: on PostgreSQL and Redis, or on the embedded default."""
    env = {
        "BCRYPT_ROUNDS": "4",
        "MEDIA_DIR": str(tmp_path / "media"),
        "MAIL_DIR": str(tmp_path / "mail"),
        "RATE_LIMIT_AUTH": "1000/60",
        "LOG_LEVEL": "WARNING",
    }
    if request.param == "embedded":
        env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'sdk.db'}", "REDIS_URL": ""}
        migrate(env)
    else:
        env |= {"DATABASE_URL": pg_url, "REDIS_URL": REDIS_URL, "REDIS_PREFIX": own_prefix}
    node = NodeProcess(env).start(tmp_path / "node.log")
    yield node
    node.stop()


async def test_sdk_unit_tests_pass_on_node_test_runner() -> None:
    """`node --test clients/js/test/` passes, and the behaviours the SDK promises were run."""
    result = await asyncio.to_thread(run, [node_binary(), "--test", "clients/js/test/"], ROOT, 300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail) (\d+)$", output, re.M)}
    assert counts["fail"] == 0
    assert counts["pass"] == counts["tests"] > len(REQUIRED_BEHAVIOURS)
    passed = set(re.findall(r"^ok \d+ - (.+)$", output, re.M))
    assert set(REQUIRED_BEHAVIOURS) <= passed, set(REQUIRED_BEHAVIOURS) - passed


async def test_sdk_smoke_against_a_real_node(sdk_node: NodeProcess, smoke_packages: Path) -> None:
    """Two SDK clients (JSON and MessagePack) chat through a node, drop, recover and resend."""
    command = [node_binary(), "smoke.mjs", sdk_node.base_url]
    result = await asyncio.to_thread(run, command, smoke_packages, 120)
    assert result.returncode == 0, (
        f"{result.stdout}\n{result.stderr}\n--- node log ---\n{sdk_node.log()[-4000:]}"
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {
        "smoke": "passed",
        "url": sdk_node.base_url,
        "messages": 6,
        "acks": 7,
        "reconnects": 1,
        "recovered": True,
        "refreshes": 1,
    }
