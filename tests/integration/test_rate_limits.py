"""Rate limits are counted in Redis, so they hold across nodes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.factories.mfa import TotpDevice
from tests.factories.users import account
from tests.fixtures.server import serve
from tests.fixtures.services import REDIS_URL
from tests.fixtures.settings import make_settings


@asynccontextmanager
async def _node(
    pg_url: str, tmp_path: Path, prefix: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A node with these settings, and an HTTP client of it."""
    settings = make_settings(pg_url, REDIS_URL, prefix, tmp_path, **overrides)
    async with serve(settings) as node, httpx.AsyncClient(base_url=node.base_url) as http:
        yield http


async def test_auth_bucket_is_shared_by_two_nodes(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Five auth calls per minute per address, whichever node answers; the 6th is 429."""
    prefix = own_prefix
    settings = make_settings(pg_url, REDIS_URL, prefix, tmp_path, rate_limit_auth="5/60")
    async with serve(settings) as a, serve(settings) as b:
        async with httpx.AsyncClient() as http:
            statuses = []
            for i in range(6):
                node = a if i % 2 == 0 else b
                body = {"email": "nobody@example.com", "password": "wrong-password-1"}
                response = await http.post(f"{node.base_url}/api/v1/auth/login", json=body)
                statuses.append(response.status_code)
            assert statuses == [401] * 5 + [429]
            assert response.json()["error"]["code"] == "RATE_LIMITED"
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining"] == "0"
            register = await http.post(f"{b.base_url}/api/v1/auth/register", json={})
            assert register.status_code == 429  # one bucket for every auth endpoint


async def test_user_bucket_and_headers(pg_url: str, tmp_path: Path, own_prefix: str) -> None:
    """Authenticated calls count per user and report X-RateLimit-* headers."""
    async with _node(pg_url, tmp_path, own_prefix, rate_limit_user="3/60") as http:
        user = await account(http)
        seen = [await http.get("/api/v1/users/me", headers=user.headers) for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert seen[0].headers["x-ratelimit-limit"] == "3"
        assert [r.headers["x-ratelimit-remaining"] for r in seen[:3]] == ["2", "1", "0"]
        assert int(seen[0].headers["x-ratelimit-reset"]) > 1_700_000_000
        assert (await http.get("/health")).status_code == 200  # exempt


async def test_failed_authentication_counts_against_the_address(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """401 answers draw from the per-address anonymous bucket."""
    async with _node(pg_url, tmp_path, own_prefix, rate_limit_anon="2/60") as http:
        codes = [(await http.get("/api/v1/users/me")).status_code for _ in range(3)]
        assert codes == [401, 401, 429]


async def test_trusted_proxy_header_selects_the_client(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Behind a trusted proxy, X-Forwarded-For names the client; otherwise it is ignored."""
    async with _node(
        pg_url, tmp_path, own_prefix, rate_limit_anon="1/60", trusted_proxies=["127.0.0.1"]
    ) as http:
        one = await http.get("/api/v1/users/me", headers={"X-Forwarded-For": "203.0.113.1"})
        two = await http.get("/api/v1/users/me", headers={"X-Forwarded-For": "203.0.113.2"})
        again = await http.get("/api/v1/users/me", headers={"X-Forwarded-For": "203.0.113.1"})
        assert [one.status_code, two.status_code, again.status_code] == [401, 401, 429]


async def test_a_clients_own_forwarded_line_does_not_pick_its_bucket(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """A proxy that adds its own X-Forwarded-For line names the client, whatever came first."""
    async with _node(
        pg_url, tmp_path, own_prefix, rate_limit_anon="1/60", trusted_proxies=["127.0.0.1"]
    ) as http:
        codes = []
        for spoof in ("198.51.100.1", "198.51.100.2"):
            lines = [("X-Forwarded-For", spoof), ("X-Forwarded-For", "203.0.113.7")]
            codes.append((await http.get("/api/v1/users/me", headers=lines)).status_code)
        assert codes == [401, 429]


async def test_password_checks_of_a_signed_in_user_are_limited_as_sign_in_is(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """A stolen access token is no password oracle: re-authentication is 3/min here, per user.

    Wrong guesses on change-password and account deletion share one bucket; past it, even
    the right password waits (429), and no hash is computed.
    """
    async with _node(pg_url, tmp_path, own_prefix, rate_limit_auth="3/60") as http:
        user = await account(http)  # register and login: 2 of the address's 3
        wrong = {"current_password": "not-the-password-1", "new_password": "a-new-passphrase-2"}
        guesses = [
            await http.put("/api/v1/users/me/password", headers=user.headers, json=wrong),
            await http.put("/api/v1/users/me/password", headers=user.headers, json=wrong),
            await http.request(
                "DELETE", "/api/v1/users/me", headers=user.headers, json={"password": "nope"}
            ),
        ]
        assert [g.status_code for g in guesses] == [403, 403, 403]
        right = {"current_password": user.password, "new_password": "a-new-passphrase-2"}
        limited = await http.put("/api/v1/users/me/password", headers=user.headers, json=right)
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1
        # The headers are the limit that refused, not the general bucket's (100, 9x left).
        assert limited.headers["x-ratelimit-limit"] == "3"
        assert limited.headers["x-ratelimit-remaining"] == "0"
        reset = int(limited.headers["x-ratelimit-reset"])  # the bucket full again: within 60 s
        assert int(limited.headers["retry-after"]) <= reset - time.time() <= 61


async def test_codes_tried_from_many_addresses_are_limited_per_user(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """MFA codes are counted per user: guesses spread over addresses hit the same wall."""
    async with _node(
        pg_url, tmp_path, own_prefix, rate_limit_auth="3/60", trusted_proxies=["127.0.0.1"]
    ) as http:
        address = iter(f"203.0.113.{n}" for n in range(1, 200))

        def fresh() -> dict[str, str]:  # every call from another address: no address limit
            return {"X-Forwarded-For": next(address)}

        http.headers.update(fresh())
        user = await account(http)
        setup = await http.post("/api/v1/auth/mfa/setup", headers={**user.headers, **fresh()})
        device = TotpDevice(setup.json()["data"]["secret"])
        enable = {"code": device.next_code()}
        enabled = await http.post(
            "/api/v1/auth/mfa/enable", headers={**user.headers, **fresh()}, json=enable
        )
        assert enabled.status_code == 200, enabled.text
        body = {"email": user.email, "password": user.password, "totp_code": "000000"}
        codes = [
            (await http.post("/api/v1/auth/login", json=body, headers=fresh())).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]


async def test_addresses_of_one_ipv6_slash_64_share_a_bucket(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """An IPv6 client cannot take a fresh bucket per address of its /64."""
    async with _node(
        pg_url, tmp_path, own_prefix, rate_limit_anon="1/60", trusted_proxies=["127.0.0.1"]
    ) as http:
        codes = [
            (await http.get("/api/v1/users/me", headers={"X-Forwarded-For": address})).status_code
            for address in ("2001:db8:7:7::1", "2001:db8:7:7:ffff::2", "2001:db8:7:8::1")
        ]
        assert codes == [401, 429, 401]


async def test_logout_is_not_in_the_sign_in_bucket(
    pg_url: str, tmp_path: Path, own_prefix: str
) -> None:
    """Whoever used up the sign-in bucket can still sign out (the contract lists no logout)."""
    async with _node(pg_url, tmp_path, own_prefix, rate_limit_auth="2/60") as http:
        await account(http)  # register and login: the address's 2
        assert (await http.post("/api/v1/auth/login", json={})).status_code == 429
        csrf = http.cookies["csrf_token"]
        out = await http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204, out.text
