"""A node serves the web app and the SDK: caching headers, 304 revalidation, CSP, same origin."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.factories.users import account
from tests.fixtures.processes import ROOT
from tests.fixtures.server import RunningServer
from tests.fixtures.wsclient import socket


def directives(policy: str) -> dict[str, str]:
    """A CSP header as {directive: sources}."""
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


async def versioned_urls(client: httpx.AsyncClient) -> list[str]:
    """The ``?v=`` URLs the page names (stylesheet, icon, modules in the import map)."""
    html = (await client.get("/app/")).text
    return sorted(set(re.findall(r"/(?:app|sdk)/[\w.-]+\?v=[0-9a-f]{12}", html)))


async def test_the_page_is_revalidated_on_every_visit_under_its_own_policy(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """/app/: no-cache with ETag and Last-Modified; its CSP allows its import map by hash only."""
    response = await client.get("/app/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    assert response.headers["last-modified"].endswith(" GMT")
    policy = directives(response.headers["content-security-policy"])
    imports = response.text.split('<script type="importmap">')[1].split("</script>")[0]
    digest = base64.b64encode(hashlib.sha256(imports.encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["style-src"] == "'self'"
    host = node.base_url.removeprefix("http://")
    assert policy["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert (await client.get("/app/index.html")).content == response.content
    assert (await client.head("/app/")).headers["etag"] == response.headers["etag"]


async def test_the_page_answers_304_to_a_current_copy_and_keeps_its_policy(
    client: httpx.AsyncClient,
) -> None:
    """If-None-Match with the ETag: 304, no body, the same validators and the app's CSP."""
    first = await client.get("/app/")
    again = await client.get("/app/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == "no-cache"
    # a 304 updates the cached copy's headers: the API's policy here would break the page
    assert again.headers["content-security-policy"] == first.headers["content-security-policy"]
    stale = await client.get("/app/", headers={"If-None-Match": '"an-older-deploy"'})
    assert stale.status_code == 200 and stale.content == first.content


async def test_files_are_cached_an_hour_and_revalidate_with_304(client: httpx.AsyncClient) -> None:
    """Every versioned file: max-age=3600 with ETag and Last-Modified; 304 by ETag or date."""
    urls = await versioned_urls(client)
    assert any(url.startswith("/sdk/studybuddy.js?v=") for url in urls)
    assert any(url.startswith("/app/app.css?v=") for url in urls)
    assert len(urls) >= 7  # css, icon, 5 modules, the SDK
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=3600"
        etag, modified = response.headers["etag"], response.headers["last-modified"]
        assert url.endswith(etag.strip('"')[:12]), "the URL's version is the content's hash"
        by_tag = await client.get(url, headers={"If-None-Match": etag})
        assert (by_tag.status_code, by_tag.content) == (304, b"")
        assert by_tag.headers["cache-control"] == "public, max-age=3600"
        by_date = await client.get(url, headers={"If-Modified-Since": modified})
        assert by_date.status_code == 304
    module = await client.get("/app/app.js")
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"


async def test_the_sdk_is_the_one_in_clients_js(client: httpx.AsyncClient) -> None:
    """/sdk/ serves the SDK and its types, and nothing else of clients/js."""
    sdk = await client.get("/sdk/studybuddy.js")
    assert sdk.content == (ROOT / "clients/js/studybuddy.js").read_bytes()
    assert sdk.headers["content-type"] == "text/javascript; charset=utf-8"
    types = await client.get("/sdk/studybuddy.d.ts")
    assert types.content == (ROOT / "clients/js/studybuddy.d.ts").read_bytes()
    for path in ("/sdk/package.json", "/sdk/smoke.mjs", "/sdk/..%2Fstudybuddy.js", "/app/nope.js"):
        missing = await client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["code"] == "NOT_FOUND"


async def test_the_root_leads_to_the_app_and_the_api_keeps_its_policy(
    client: httpx.AsyncClient,
) -> None:
    """/ redirects to /app/; API and docs responses keep the policy they had."""
    root = await client.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (302, "/app/")
    assert (await client.get("/app", follow_redirects=True)).url.path == "/app/"
    for path in ("/health", "/docs", "/api/v1/users/me"):
        policy = directives((await client.get(path)).headers["content-security-policy"])
        assert policy["style-src"] == "'self' 'unsafe-inline'", path
        assert policy["connect-src"] == "'self'", path


async def test_the_links_in_notification_emails_open_the_app_at_their_view(
    client: httpx.AsyncClient,
) -> None:
    """A group, the notifications and the email settings: each a 302 into the app.

    The emails' "Open StudyBuddy" links were a 404 in the contract's JSON envelope.
    """
    group = "3f2b1c9e-6a1d-4e8b-9f0a-2c4d6e8f0a1b"
    for path, target in (
        (f"/groups/{group}", f"/app/#/groups/{group}"),
        ("/notifications", "/app/#/notifications"),
        ("/invites", "/app/#/invites"),
        ("/settings/notifications", "/app/#/settings/notifications"),
    ):
        answer = await client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (302, target), path
    assert (await client.get("/groups/not-a-uuid")).status_code == 404


async def test_the_page_may_open_a_socket_on_its_own_origin_only(
    client: httpx.AsyncClient, node: RunningServer
) -> None:
    """The node's own origin passes the handshake without CORS_ORIGINS; another port does not."""
    user = await account(client)
    ws = f"{node.ws_url}/api/v1/ws"
    async with socket(ws, user.token, origin=node.base_url) as own:
        assert own.ready["user_id"] == user.id
    host, port = node.base_url.rsplit(":", 1)
    with pytest.raises(InvalidStatus) as refused:
        async with socket(ws, origin=f"{host}:{int(port) + 1}"):
            pass
    assert refused.value.response.status_code == 403
    assert refused.value.response.headers["X-Request-ID"]  # in the envelope, as REST answers
    error = json.loads(refused.value.response.body)["error"]
    assert error["code"] == "FORBIDDEN"
