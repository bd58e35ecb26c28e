"""The web app in a real browser: Debian's Chromium, two nodes on PostgreSQL and Redis, HAProxy.

Each person has a browser context of their own, pinned to a node by HAProxy's ``SB_NODE``
cookie, and reaches HAProxy through a link of their own (a :class:`CuttableProxy`): cutting it,
with the context set offline, is that person's network going away. A node is killed with
SIGKILL. Every test keeps screenshots under ``test-artifacts/<test>/`` (and traces when it
fails).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.factories.groups import public_group, run_sql
from tests.factories.users import Account, account
from tests.fixtures.browser import PHONE, Person, Stage, artifact_folder, failed, launch_browser
from tests.fixtures.haproxy import COOKIE, Haproxy
from tests.fixtures.processes import NodeProcess, cluster_env
from tests.fixtures.proxy import CuttableProxy
from tests.fixtures.services import drop_redis_prefix

pytestmark = pytest.mark.slow
WAIT_MS = 20_000
MESSAGES = "#messages li[data-seq] .body"


@dataclass
class Deployment:
    """Two nodes behind HAProxy, on the session's PostgreSQL and a Redis prefix of their own."""

    nodes: list[NodeProcess]
    proxy: Haproxy
    folder: Path
    links: list[CuttableProxy] = field(default_factory=list)

    def revive(self) -> None:
        """Start again any node a test killed, on its port, and wait until HAProxy uses it."""
        for index, node in enumerate(self.nodes):
            assert node.process is not None
            if node.process.poll() is not None:
                node.start(self.folder / f"n{index}-again.log")
                self.proxy.wait_up(index)

    async def link(self) -> CuttableProxy:
        """A person's own network link to the proxy."""
        link = CuttableProxy("127.0.0.1", self.proxy.port)
        await link.start()
        self.links.append(link)
        return link


@pytest.fixture(scope="module")
async def deployment(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """The cluster the module's tests share (each test uses its own people and groups)."""
    folder = tmp_path_factory.mktemp("webapp")
    prefix = f"sbtest:{uuid.uuid4().hex[:8]}:"
    env = cluster_env(pg_url, prefix, folder, LOG_LEVEL="WARNING", WS_MESSAGE_BURST="200")
    nodes = [NodeProcess(env) for _ in range(2)]
    for index, node in enumerate(nodes):
        await asyncio.to_thread(node.start, folder / f"n{index}.log")
    proxy = await asyncio.to_thread(Haproxy([node.port for node in nodes], folder).start)
    try:
        yield Deployment(nodes, proxy, folder)
    finally:
        proxy.stop()
        for node in nodes:
            await asyncio.to_thread(node.stop)
        await drop_redis_prefix(prefix)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the module."""
    async with launch_browser() as launched:
        yield launched


@pytest.fixture
async def stage(
    browser: Browser, deployment: Deployment, request: pytest.FixtureRequest
) -> AsyncIterator[Stage]:
    """The test's people; afterwards their screenshots (and traces, on failure) are kept."""
    await asyncio.to_thread(deployment.revive)
    stage = Stage(browser, artifact_folder(request.node.name))
    try:
        yield stage
    finally:
        await stage.finish(failed(request.node))
        for link in deployment.links:
            await link.stop()
        deployment.links.clear()


@dataclass
class Cast:
    """Alice on node 0 and Bob on node 1, members of one public group."""

    alice: Account
    bob: Account
    group_id: str
    alice_link: CuttableProxy
    bob_link: CuttableProxy


@pytest.fixture
async def cast(deployment: Deployment) -> Cast:
    """Two accounts and their group, made over REST on node 0."""
    async with httpx.AsyncClient(base_url=deployment.nodes[0].base_url, timeout=10) as http:
        alice = await account(http, display_name="Alice Liddell")
        bob = await account(http, display_name="Bob Builder")
        group_id = await public_group(http, alice, bob)
    return Cast(alice, bob, group_id, await deployment.link(), await deployment.link())


async def arrive(
    stage: Stage, name: str, link: CuttableProxy, node: int, who: Account, **options: object
) -> Person:
    """A person opens the app through their link, pinned to ``node``, and signs in."""
    base_url = f"http://127.0.0.1:{link.port}"
    person = await stage.person(name, base_url, cookies={COOKIE: f"n{node}"}, **options)  # type: ignore[arg-type]
    page = person.page
    await page.goto("/app/")
    await page.fill("#login-email", who.email)
    await page.fill("#login-password", who.password)
    await page.press("#login-password", "Enter")
    await ready(page)
    return person


async def ready(page: Page) -> None:
    """Until the page's socket is ready."""
    await expect(page.locator("body")).to_have_attribute(
        "data-connection", "ready", timeout=WAIT_MS
    )


async def enter_room(page: Page, group_id: str) -> None:
    """Pick the group in the list and wait for its history."""
    await page.click(f'#group-list button[data-group-id="{group_id}"]')
    await expect(page.locator("#room")).to_be_visible()
    loaded = page.locator("#history-start:not([hidden]), #older-button:not([hidden])")
    await expect(loaded).to_be_visible(timeout=WAIT_MS)


async def say(page: Page, text: str) -> None:
    """Type a message and press Enter."""
    await page.fill("#message-input", text)
    await page.press("#message-input", "Enter")


async def shows(page: Page, bodies: list[str]) -> None:
    """The room shows exactly these messages, in this order, each once, none pending."""
    await expect(page.locator(MESSAGES)).to_have_text(bodies, timeout=WAIT_MS)
    await expect(page.locator("#messages .pending")).to_have_count(0, timeout=WAIT_MS)


async def sockets_on(node: NodeProcess) -> int:
    """The node's ``studybuddy_ws_connections`` gauge."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{node.base_url}/health/metrics")).text
    match = re.search(r"^studybuddy_ws_connections(?:\{[^}]*\})? (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


async def until_sockets(node: NodeProcess, expected: int, timeout: float = 15) -> None:
    """Until the node holds ``expected`` sockets."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await sockets_on(node)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{count} sockets, not {expected}"
        await asyncio.sleep(0.2)


async def go_offline(person: Person, link: CuttableProxy) -> None:
    """The person's network goes away: connections dropped, the browser offline."""
    await person.context.set_offline(True)
    link.cut()
    banner = person.page.locator("#connection")
    await expect(banner).to_contain_text("You are offline", timeout=WAIT_MS)  # at once


async def come_back(person: Person, link: CuttableProxy) -> None:
    """The network is back (the browser fires `online`)."""
    link.restore()
    await person.context.set_offline(False)
    await ready(person.page)


async def post_messages(base_url: str, who: Account, group_id: str, bodies: list[str]) -> None:
    """Messages sent over REST (another client of the same person, or a bot)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10, headers=who.headers) as http:
        for body in bodies:
            response = await http.post(
                f"/api/v1/study-groups/{group_id}/messages",
                json={"body": body, "client_msg_id": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.text


async def test_two_people_on_two_nodes_chat_and_see_typing_and_presence(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """Alice (desktop, node 0) and Bob (phone, node 1) chat, see each other type and come and go."""
    alice = await arrive(stage, "alice", cast.alice_link, 0, cast.alice)
    bob = await arrive(stage, "bob-phone", cast.bob_link, 1, cast.bob, viewport=PHONE)
    await until_sockets(deployment.nodes[0], 1)
    await until_sockets(deployment.nodes[1], 1)

    await enter_room(alice.page, cast.group_id)
    await expect(bob.page.locator("#sidebar")).to_be_visible()
    await enter_room(bob.page, cast.group_id)
    await expect(bob.page.locator("#sidebar")).to_be_hidden()  # a phone shows one pane
    await expect(bob.page.locator("#room-meta")).to_contain_text("2 online", timeout=WAIT_MS)
    await expect(alice.page.locator("#room-meta")).to_contain_text("2 online", timeout=WAIT_MS)

    await alice.page.fill("#message-input", "Has anyone started problem 4?")
    typing = bob.page.locator("#typing")
    await expect(typing).to_have_text("Alice Liddell is typing…", timeout=WAIT_MS)
    await alice.page.press("#message-input", "Enter")
    await shows(bob.page, ["Has anyone started problem 4?"])
    await expect(typing).to_have_text("")
    await expect(bob.page.locator("#messages li[data-seq] .author")).to_have_text(["Alice Liddell"])

    await bob.page.fill("#message-input", "Yes: <b>use</b> the eigenvalues & vectors")
    await expect(alice.page.locator("#typing")).to_have_text(
        "Bob Builder is typing…", timeout=WAIT_MS
    )
    await bob.page.press("#message-input", "Enter")
    both = ["Has anyone started problem 4?", "Yes: <b>use</b> the eigenvalues & vectors"]
    await shows(alice.page, both)
    await shows(bob.page, both)
    await expect(alice.page.locator("#announcer")).to_contain_text("Bob Builder: Yes: <b>use</b>")

    await bob.page.click("#members-button")
    online = bob.page.locator(f'#member-list li[data-user-id="{cast.alice.id}"] .presence.online')
    await expect(online).to_have_count(1)
    await alice.page.screenshot(path=stage.folder / "alice-before-leaving.png")
    await alice.context.close()
    await expect(online).to_have_count(0, timeout=WAIT_MS)
    await expect(bob.page.locator("#room-meta")).to_contain_text("1 online")
    assert not bob.errors and not alice.errors, (alice.errors, bob.errors)


async def test_a_page_on_a_killed_node_reconnects_through_the_proxy_and_shows_each_message_once(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """Node 0 dies (SIGKILL) mid-chat: Alice's page moves to node 1, loses and doubles nothing."""
    alice = await arrive(stage, "alice", cast.alice_link, 0, cast.alice)
    bob = await arrive(stage, "bob", cast.bob_link, 1, cast.bob)
    await until_sockets(deployment.nodes[0], 1)
    await enter_room(alice.page, cast.group_id)
    await enter_room(bob.page, cast.group_id)
    sent: list[str] = []
    for i in range(3):
        for person, who in ((alice, "a"), (bob, "b")):
            sent.append(f"{who}{i}")
            await say(person.page, sent[-1])
            await shows(person.page, sent)

    deployment.nodes[0].stop(signal.SIGKILL)
    for i in range(3, 6):  # Bob goes on while Alice's node is gone
        sent.append(f"b{i}")
        await say(bob.page, sent[-1])
        await shows(bob.page, sent)
    sent.append("a3 after the crash")
    await say(alice.page, sent[-1])  # sent or queued, whichever the socket allows

    await shows(alice.page, sent)
    await shows(bob.page, sent)
    await ready(alice.page)
    await until_sockets(deployment.nodes[1], 2)
    sent.append("b6 after Alice is back")
    await say(bob.page, sent[-1])
    await shows(alice.page, sent)
    seqs = await alice.page.locator("#messages li[data-seq]").evaluate_all(
        "items => items.map((item) => Number(item.dataset.seq))"
    )
    assert seqs == list(range(1, len(sent) + 1))
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


async def test_a_page_offline_for_100_messages_recovers_them(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """Alice's network drops; Bob sends 100 messages; when it is back her page shows all."""
    alice = await arrive(stage, "alice", cast.alice_link, 0, cast.alice)
    await enter_room(alice.page, cast.group_id)
    await say(alice.page, "going into the tunnel")
    await shows(alice.page, ["going into the tunnel"])

    await go_offline(alice, cast.alice_link)
    missed = [f"missed {i:03d}" for i in range(1, 101)]
    await post_messages(deployment.nodes[1].base_url, cast.bob, cast.group_id, missed)
    await alice.page.wait_for_timeout(500)
    await expect(alice.page.locator(MESSAGES)).to_have_count(1)  # nothing can arrive offline

    await come_back(alice, cast.alice_link)
    await shows(alice.page, ["going into the tunnel", *missed])
    await expect(alice.page.locator("#connection")).to_be_hidden()
    assert not alice.errors, alice.errors


async def test_a_message_sent_while_the_socket_is_down_is_delivered_once_after_reconnecting(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """Alice sends while offline: it waits ("sending…"), then arrives once for both of them."""
    alice = await arrive(stage, "alice", cast.alice_link, 0, cast.alice)
    bob = await arrive(stage, "bob", cast.bob_link, 1, cast.bob)
    await enter_room(alice.page, cast.group_id)
    await enter_room(bob.page, cast.group_id)
    await say(bob.page, "are you there?")
    await shows(alice.page, ["are you there?"])

    await go_offline(alice, cast.alice_link)
    await say(alice.page, "yes, on a train")
    pending = alice.page.locator("#messages .pending")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("sending…")
    await expect(alice.page.locator("#connection")).to_contain_text("1 message waiting to send")
    await alice.page.screenshot(path=stage.folder / "alice-offline.png")
    await bob.page.wait_for_timeout(500)
    await expect(bob.page.locator(MESSAGES)).to_have_text(["are you there?"])

    await come_back(alice, cast.alice_link)
    both = ["are you there?", "yes, on a train"]
    await shows(alice.page, both)
    await shows(bob.page, both)
    # A socket's ack comes before a persister stores the message (contract: history within
    # 1 s), so history is read until it has both, for a few seconds at most.
    async with httpx.AsyncClient(base_url=deployment.proxy.base_url, timeout=10) as http:
        for _ in range(50):
            history = await http.get(
                f"/api/v1/study-groups/{cast.group_id}/messages",
                params={"sort": "seq"},
                headers=cast.bob.headers,
            )
            if len(history.json()["data"]) >= len(both):
                break
            await asyncio.sleep(0.1)
    assert [m["body"] for m in history.json()["data"]] == both
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


async def register_through_the_form(page: Page) -> str:
    """A new person registers (a refused password first); returns the username."""
    await page.goto("/app/")
    name = f"carol_{uuid.uuid4().hex[:8]}"
    await page.fill("#register-email", f"{name}@example.com")
    await page.fill("#register-username", name)
    await page.fill("#register-display", "Carol <Danvers>")
    await page.fill("#register-password", "short")
    await page.press("#register-password", "Enter")
    await expect(page.locator("#register-form .form-error")).to_contain_text("password")
    await expect(page.locator("#register-password")).to_have_attribute("aria-invalid", "true")
    await page.fill("#register-password", "a long enough passphrase")
    await page.press("#register-password", "Enter")
    await ready(page)
    await expect(page.locator("#no-groups")).to_be_visible()
    return name


async def find_join_and_page_back(page: Page, group_name: str, group_id: str) -> None:
    """Find the group, join it, and scroll up through its history to the start."""
    await page.click("#find-button")
    await page.fill("#find-input", group_name)
    await page.press("#find-input", "Enter")
    await page.click(f'#find-results li[data-group-id="{group_id}"] button')
    await expect(page.locator("#room-title")).to_have_text(group_name)
    await expect(page.locator(MESSAGES)).to_have_count(50, timeout=WAIT_MS)
    await expect(page.locator(MESSAGES).last).to_have_text("history 120")
    for count in (100, 120):  # older pages come as the person scrolls up
        await page.locator("#history").evaluate("history => { history.scrollTop = 0; }")
        await expect(page.locator(MESSAGES)).to_have_count(count, timeout=WAIT_MS)
    await expect(page.locator("#history-start")).to_be_visible()


async def edit_then_delete(page: Page, other: Page) -> None:
    """Send, edit (Enter saves), delete (confirmed): the other person sees each step."""
    await say(page, "hello all")
    mine = page.locator("#messages li.mine")
    await expect(mine).to_have_count(1)
    await mine.get_by_role("button", name="Edit message").click()
    await page.fill("#messages li.mine textarea", "hello everyone")
    await page.press("#messages li.mine textarea", "Enter")
    theirs = other.locator("#messages li[data-seq]").last
    await expect(theirs.locator(".body")).to_have_text("hello everyone", timeout=WAIT_MS)
    await expect(theirs.locator(".edited")).to_have_text("(edited)")
    await expect(theirs.locator(".author")).to_have_text("Carol <Danvers>")
    await mine.get_by_role("button", name="Delete message").click()
    await expect(other.locator(MESSAGES)).to_have_count(50, timeout=WAIT_MS)  # the newest page
    await expect(other.locator(MESSAGES).last).to_have_text("history 120")
    await expect(mine).to_have_count(0)


async def an_assignment_arrives(page: Page, admin: Page) -> None:
    """An admin adds an assignment; a member's open panel shows it (members cannot add)."""
    await page.click("#assignments-button")
    await expect(page.locator("#no-assignments")).to_be_visible()
    await expect(page.locator("#assignment-form")).to_be_hidden()
    await admin.click("#assignments-button")
    await admin.fill("#assignment-title", "Problem set 6")
    await admin.fill("#assignment-due", "2031-05-04T17:30")
    await admin.fill("#assignment-description", "Chapters 3 and 4")
    await admin.press("#assignment-title", "Enter")
    listed = page.locator("#assignment-list li")
    await expect(listed).to_contain_text("Problem set 6", timeout=WAIT_MS)
    await expect(listed).to_contain_text("Chapters 3 and 4", timeout=WAIT_MS)
    await expect(listed.locator("time")).to_have_attribute("datetime", "2031-05-04T17:30:00Z")
    # The admin empties the description: the edit reaches the member without it.
    await admin.click("button[aria-label='Edit assignment Problem set 6']")
    await admin.fill("#assignment-title", "Problem set 6b")
    await admin.fill("#assignment-description", "")
    await admin.press("#assignment-title", "Enter")
    await expect(listed).to_contain_text("Problem set 6b", timeout=WAIT_MS)
    await expect(listed).not_to_contain_text("Chapters 3 and 4")


async def invite(node: str, inviter: Account, username: str) -> None:
    """The inviter makes a private group and invites the user, over REST."""
    async with httpx.AsyncClient(base_url=node, timeout=10, headers=inviter.headers) as http:
        body = {"name": "Bob's private corner", "visibility": "private"}
        private = (await http.post("/api/v1/study-groups", json=body)).json()["data"]
        found = await http.get("/api/v1/users", params={"search": username})
        user_id = found.json()["data"][0]["id"]
        sent = await http.post(
            f"/api/v1/study-groups/{private['id']}/invites", json={"user_id": user_id}
        )
        assert sent.status_code == 201, sent.text


async def test_a_person_registers_joins_pages_back_edits_deletes_and_accepts_an_invite(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """Carol registers, joins Bob's group, scrolls, edits, deletes, is invited.

    Assignments and the invite reach her live; the bell shows only where notifications exist.
    """
    node = deployment.nodes[1].base_url
    await post_messages(node, cast.bob, cast.group_id, [f"history {i:03d}" for i in range(1, 121)])
    async with httpx.AsyncClient(base_url=node, timeout=10) as http:  # Alice makes Bob an admin
        promoted = await http.patch(
            f"/api/v1/study-groups/{cast.group_id}/members/{cast.bob.id}",
            json={"role": "admin"},
            headers=cast.alice.headers,
        )
        assert promoted.status_code == 200, promoted.text
        notifications = (await http.get("/api/v1/notifications")).status_code != 404
    bob = await arrive(stage, "bob", cast.bob_link, 1, cast.bob)
    await enter_room(bob.page, cast.group_id)
    carol = await stage.person("carol", f"http://127.0.0.1:{cast.alice_link.port}")
    page = carol.page
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

    name = await register_through_the_form(page)
    await expect(page.locator("#notifications-button")).to_be_visible(visible=notifications)
    await find_join_and_page_back(
        page, await bob.page.locator("#room-title").inner_text(), cast.group_id
    )
    await shows(page, [f"history {i:03d}" for i in range(1, 121)])
    await edit_then_delete(page, bob.page)
    await an_assignment_arrives(page, bob.page)
    await invite(node, cast.bob, name)
    await expect(page.locator("#invites-badge")).to_have_text("1", timeout=WAIT_MS)
    await page.click("#invites-button")
    await expect(page.locator("#invite-list")).to_contain_text("Bob's private corner")
    await page.get_by_role("button", name="Accept the invite to Bob's private corner").click()
    await expect(page.locator("#room-title")).to_have_text("Bob's private corner", timeout=WAIT_MS)
    await expect(page.locator("#group-list button")).to_have_count(2)
    assert not carol.errors and not bob.errors, (carol.errors, bob.errors)


async def test_sign_in_asks_for_the_code_when_mfa_is_on_and_a_reload_keeps_the_session(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """MFA: the code field appears after the password; a reload signs in again by the cookie."""
    from server.security.mfa import code_at, step_of

    async with httpx.AsyncClient(base_url=deployment.nodes[0].base_url, timeout=10) as http:
        setup = await http.post("/api/v1/auth/mfa/setup", headers=cast.alice.headers)
        secret = setup.json()["data"]["secret"]
        step = step_of(time.time())
        enable = await http.post(
            "/api/v1/auth/mfa/enable",
            json={"code": code_at(secret, step)},
            headers=cast.alice.headers,
        )
        assert enable.status_code == 200, enable.text

    person = await stage.person("alice", f"http://127.0.0.1:{cast.alice_link.port}")
    page = person.page
    await page.goto("/app/")
    await page.fill("#login-email", cast.alice.email)
    await page.fill("#login-password", cast.alice.password)
    await page.press("#login-password", "Enter")
    await expect(page.locator("#login-totp")).to_be_focused()
    await page.fill("#login-totp", "000000" if code_at(secret, step + 1) != "000000" else "111111")
    await page.press("#login-totp", "Enter")
    await expect(page.locator("#login-form .form-error")).to_contain_text("code", timeout=WAIT_MS)
    await expect(page.locator("#login-totp")).to_have_attribute("aria-invalid", "true")
    await page.fill("#login-totp", code_at(secret, step + 1))
    await page.press("#login-totp", "Enter")
    await ready(page)
    await enter_room(page, cast.group_id)
    await page.reload()
    await ready(page)  # no form: the refresh cookie gave the page a new token
    await expect(page.locator("#room")).to_be_visible()
    await expect(page.locator("#auth-view")).to_be_hidden()
    cookies = {c["name"]: c for c in await person.context.cookies()}
    assert cookies["refresh_token"]["httpOnly"] and not cookies["csrf_token"]["httpOnly"]
    await page.click("#account-button")
    await expect(page.locator("#mfa-status")).to_contain_text("On")
    await page.click("#logout-button")
    await expect(page.locator("#login-form")).to_be_visible(timeout=WAIT_MS)
    assert not person.errors, person.errors


async def _emailed_token(pg_url: str, who: Account, purpose: str) -> str:
    """A token as the worker would email it to ``who`` (the browser deployment runs none)."""
    token = uuid.uuid4().hex
    await run_sql(
        pg_url,
        "INSERT INTO account_tokens (id, user_id, purpose, token_hash, email, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + interval '30 minutes')",
        uuid.uuid4(),
        uuid.UUID(who.id),
        purpose,
        hashlib.sha256(token.encode()).hexdigest(),
        who.email,
    )
    return token


async def test_the_links_of_account_emails_finish_in_the_app(
    stage: Stage, deployment: Deployment, cast: Cast, pg_url: str
) -> None:
    """A verification link verifies; a reset link asks for the new password, which then works.

    The node sends the emailed paths to the app with the token moved out of the address.
    """
    person = await stage.person("alice", f"http://127.0.0.1:{cast.alice_link.port}")
    page = person.page
    verify = await _emailed_token(pg_url, cast.alice, "verify_email")
    await page.goto(f"/verify-email?token={verify}")
    await expect(page.locator("#auth-notice")).to_contain_text("verified", timeout=WAIT_MS)
    assert "token" not in page.url
    reset = await _emailed_token(pg_url, cast.alice, "reset_password")
    await page.goto(f"/reset-password?token={reset}")
    await expect(page.locator("#reset-password")).to_be_focused(timeout=WAIT_MS)
    await page.fill("#reset-password", "short")
    await page.press("#reset-password", "Enter")
    await expect(page.locator("#reset-form .form-error")).not_to_be_empty()
    await page.fill("#reset-password", "a-brand-new-passphrase-9")
    await page.press("#reset-password", "Enter")
    await expect(page.locator("#auth-notice")).to_contain_text("sign in", timeout=WAIT_MS)
    await expect(page.locator("#reset-form")).to_be_hidden()
    await page.fill("#login-email", cast.alice.email)
    await page.fill("#login-password", "a-brand-new-passphrase-9")
    await page.press("#login-password", "Enter")
    await ready(page)
    async with httpx.AsyncClient(base_url=deployment.nodes[0].base_url, timeout=10) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": cast.alice.email, "password": "a-brand-new-passphrase-9"},
        )
        assert login.json()["data"]["user"]["email_verified"] is True
    assert not person.errors, person.errors


async def test_email_links_settings_a_forgotten_password_and_signing_out_of_every_tab(
    stage: Stage, deployment: Deployment, cast: Cast, pg_url: str
) -> None:
    """What the account's emails lead to, and a sign-out that leaves no tab signed in.

    A verification link opened while signed in says so on the signed-in page (it said so on
    the hidden sign-in page); the emails' settings link opens the email switches, which save;
    signing out in one tab signs the browser's other tabs out; "Forgot your password?" asks
    for a link without leaving the page.
    """
    person = await arrive(stage, "alice", cast.alice_link, 0, cast.alice)
    page = person.page
    verify = await _emailed_token(pg_url, cast.alice, "verify_email")
    await page.goto(f"/verify-email?token={verify}")
    await expect(page.locator("#flash")).to_contain_text("verified", timeout=WAIT_MS)
    await page.goto("/settings/notifications")
    await expect(page.locator("#account-dialog")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#email-status")).to_contain_text("is verified")
    switch = page.locator('#email-settings-form input[name="assignment.created"]')
    await expect(switch).not_to_be_checked()
    await switch.check()
    await page.click('#email-settings-form button[type="submit"]')
    await expect(page.locator("#flash")).to_contain_text("saved", timeout=WAIT_MS)
    async with httpx.AsyncClient(base_url=deployment.nodes[0].base_url, timeout=10) as http:
        settings = await http.get(
            "/api/v1/users/me/notification-settings", headers=cast.alice.headers
        )
        assert settings.json()["data"]["email"]["assignment.created"] is True
    other = await person.context.new_page()
    other.on("pageerror", lambda error: person.errors.append(str(error)))
    await other.goto("/app/")
    await ready(other)
    await page.keyboard.press("Escape")
    await page.click("#account-button")
    await page.click("#logout-button")
    await expect(page.locator("#login-form")).to_be_visible(timeout=WAIT_MS)
    await expect(other.locator("#login-form")).to_be_visible(timeout=WAIT_MS)
    await page.click("#forgot-button")
    await expect(page.locator("#forgot-email")).to_be_focused()
    await page.fill("#forgot-email", cast.alice.email)
    await page.press("#forgot-email", "Enter")
    await expect(page.locator("#auth-notice")).to_contain_text("reset link", timeout=WAIT_MS)
    await expect(page.locator("#forgot-form")).to_be_hidden()
    assert not person.errors, person.errors


async def test_the_owner_moderates_messages_and_members(
    stage: Stage, deployment: Deployment, cast: Cast
) -> None:
    """The owner deletes another's message, makes them an admin, then removes them.

    The web app had no way to do what the contract lets owners and admins do.
    """
    await post_messages(deployment.nodes[0].base_url, cast.bob, cast.group_id, ["spam spam"])
    alice = await arrive(stage, "alice", cast.alice_link, 0, cast.alice)
    page = alice.page
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await enter_room(page, cast.group_id)
    await shows(page, ["spam spam"])
    await page.get_by_role("button", name="Delete message: spam spam").click()
    await expect(page.locator(MESSAGES)).to_have_count(0, timeout=WAIT_MS)
    await page.click("#members-button")
    bob = page.locator(f'#member-list li[data-user-id="{cast.bob.id}"]')
    await bob.get_by_role("button", name="Make admin: Bob Builder").click()
    await expect(bob.locator(".role")).to_have_text("admin", timeout=WAIT_MS)
    await bob.get_by_role("button", name="Remove: Bob Builder").click()
    await expect(bob).to_have_count(0, timeout=WAIT_MS)
    async with httpx.AsyncClient(base_url=deployment.nodes[0].base_url, timeout=10) as http:
        members = await http.get(
            f"/api/v1/study-groups/{cast.group_id}/members", headers=cast.alice.headers
        )
        assert [m["user_id"] for m in members.json()["data"]] == [cast.alice.id]
        history = await http.get(
            f"/api/v1/study-groups/{cast.group_id}/messages", headers=cast.alice.headers
        )
        assert history.json()["data"] == []
    assert not alice.errors, alice.errors
