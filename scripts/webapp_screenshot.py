"""Screenshots of the web app for the README: ``python -m scripts.webapp_screenshot``.

Starts a node on the embedded default (as ``make run`` does, in a temp directory, on a free
loopback port), seeds three people, their groups, a conversation and an assignment over REST,
then drives Debian's Chromium (``apt-get install -y chromium``) with Playwright: Maya on a
desktop with the assignments open while Jonas types, and Jonas on a phone. Writes
``docs/webapp.png`` and ``docs/webapp-phone.png``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess  # nosec B404 - runs this repository's own node
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright, expect

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "study-hard-together-2026"  # noqa: S105 - throw-away demo accounts
PEOPLE = {"maya": "Maya Okafor", "jonas": "Jonas Weber", "priya": "Priya Raman"}
CHAT = [
    ("jonas", "Did anyone get a clean answer for 6.3(b)? I keep ending up with a 3x3 mess."),
    ("maya", "Find the eigenvalues first: the characteristic polynomial factors nicely."),
    ("priya", "λ = 2 twice and λ = 5 for me. Then it's just the null spaces."),
    ("jonas", "Oh, so A - 2I has rank 1 → a 2-dimensional eigenspace. That's the trick!"),
    ("maya", "Exactly. Let's go over 6.4 together on Thursday before the quiz."),
    ("priya", "Works for me. I'll bring the past papers."),
]

GROUPS = [
    ("maya", {"name": "Linear Algebra: week 6", "subject": "Mathematics", "visibility": "public",
              "description": "Eigenvalues, diagonalisation and the Thursday quiz"}),
    ("jonas", {"name": "Organic Chemistry", "subject": "Chemistry", "visibility": "public"}),
    ("priya", {"name": "History of Science", "visibility": "public"}),
]  # fmt: skip
ASSIGNMENTS = [
    ("Problem set 6 (6.1 to 6.4)", 3, "Hand in on paper"),
    ("Quiz: diagonalisation", 5, None),
]


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """Migrate a fresh SQLite file and serve it, as ``make run`` does."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'screenshot.db'}",
        "REDIS_URL": "",
        "MEDIA_DIR": str(folder / "media"),
        "MAIL_DIR": str(folder / "mail"),
        "RATE_LIMIT_AUTH": "1000/60",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }
    alembic = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(alembic, env=env, cwd=ROOT, check=True, capture_output=True)  # noqa: S603  # nosec B603
    command = [sys.executable, "-m", "server.serve", "--host", "127.0.0.1", "--port", str(port)]
    log = (folder / "node.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)  # noqa: S603  # nosec B603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).is_success:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the node did not start: see {folder / 'node.log'}")


async def register(http: httpx.AsyncClient, name: str, display: str) -> dict[str, Any]:
    """Register and sign in; the account with its bearer header."""
    body = {
        "email": f"{name}@example.com",
        "username": name,
        "password": PASSWORD,
        "display_name": display,
    }
    (await http.post("/auth/register", json=body)).raise_for_status()
    login = await http.post("/auth/login", json={"email": body["email"], "password": PASSWORD})
    login.raise_for_status()
    data = login.json()["data"]
    bearer = {"Authorization": f"Bearer {data['access_token']}"}
    return {**body, "id": data["user"]["id"], "headers": bearer}


async def seed(base: str) -> tuple[dict[str, dict[str, Any]], str]:
    """People, groups, a conversation, assignments; returns the people and the main group."""
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=10) as http:
        people = {name: await register(http, name, display) for name, display in PEOPLE.items()}

        async def post(who: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = await http.post(path, json=body, headers=people[who]["headers"])
            response.raise_for_status()
            return dict(response.json()["data"])

        async def say(who: str, group: dict[str, Any], text: str) -> None:
            message = {"body": text, "client_msg_id": uuid.uuid4().hex}
            await post(who, f"/study-groups/{group['id']}/messages", message)

        groups = {owner: await post(owner, "/study-groups", body) for owner, body in GROUPS}
        main, chemistry, history = groups["maya"], groups["jonas"], groups["priya"]
        for who, group in (
            ("jonas", main),
            ("priya", main),
            ("maya", chemistry),
            ("maya", history),
        ):
            await post(who, f"/study-groups/{group['id']}/join")
        for who, text in CHAT:
            await say(who, main, text)
        await say("jonas", chemistry, "Anyone have the lab notes?")  # unread for Maya
        await say("jonas", chemistry, "Chapter 12 summary is up")
        await say("priya", history, "Reading list for Friday is pinned")
        five_pm = datetime.now(UTC).replace(hour=17, minute=0, second=0, microsecond=0)
        for title, days, note in ASSIGNMENTS:
            due_at = (five_pm + timedelta(days=days)).isoformat().replace("+00:00", "Z")
            body = {"title": title, "due_at": due_at, "description": note}
            await post("maya", f"/study-groups/{main['id']}/assignments", body)
    return people, str(main["id"])


async def sign_in(page: Page, who: dict[str, Any]) -> None:
    """Through the sign-in form, until the socket is ready."""
    await page.goto("/app/")
    await page.fill("#login-email", who["email"])
    await page.fill("#login-password", PASSWORD)
    await page.press("#login-password", "Enter")
    await expect(page.locator("body")).to_have_attribute("data-connection", "ready", timeout=20_000)


async def shoot(base: str, out: Path) -> None:
    """Maya on a desktop, Jonas on a phone."""
    people, group_id = await seed(base)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        options: dict[str, Any] = {
            "base_url": base,
            "locale": "en-GB",
            "timezone_id": "Europe/London",
        }
        maya_context = await browser.new_context(viewport={"width": 1280, "height": 760}, **options)
        jonas_context = await browser.new_context(viewport={"width": 390, "height": 780},
                                                  device_scale_factor=2, **options)  # fmt: skip
        maya, jonas = await maya_context.new_page(), await jonas_context.new_page()
        await sign_in(maya, people["maya"])
        await sign_in(jonas, people["jonas"])
        room = f'#group-list button[data-group-id="{group_id}"]'
        await jonas.click(room)
        await maya.click(room)
        await expect(maya.locator("#room-meta")).to_contain_text("2 online", timeout=10_000)
        await maya.click("#assignments-button")
        await expect(maya.locator("#assignment-list li")).to_have_count(2)
        await jonas.fill("#message-input", "See you Thursday")
        await expect(maya.locator("#typing")).to_contain_text(
            "Jonas Weber is typing", timeout=10_000
        )
        await maya.locator("#message-input").blur()
        await maya.screenshot(path=out / "webapp.png")
        await jonas.press("#message-input", "Enter")
        await expect(jonas.locator("#messages li[data-seq]")).to_have_count(len(CHAT) + 1)
        await jonas.screenshot(path=out / "webapp-phone.png")
        await browser.close()


def main() -> None:
    """Start a node, take the screenshots, stop the node."""
    with tempfile.TemporaryDirectory(prefix="sb-screenshot-") as tmp:
        port = free_port()
        node = start_node(Path(tmp), port)
        try:
            asyncio.run(shoot(f"http://127.0.0.1:{port}", ROOT / "docs"))
        finally:
            node.terminate()
            node.wait(20)
    print("wrote docs/webapp.png and docs/webapp-phone.png")


if __name__ == "__main__":
    main()
