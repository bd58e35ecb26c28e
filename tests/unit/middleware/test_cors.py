"""CORS preflights: allowed ones as Starlette answers them, refused ones in the envelope."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from server.middleware.cors import ContractCORSMiddleware


def _client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/thing", lambda _request: PlainTextResponse("thing"))],
        middleware=[
            Middleware(
                ContractCORSMiddleware, allow_origins=["https://app.example"], allow_methods=["GET"]
            )
        ],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://node")


async def test_an_allowed_preflight_is_answered_as_before() -> None:
    """A listed origin and method: 200 with the allow headers."""
    async with _client() as http:
        response = await http.options(
            "/thing",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"


async def test_a_refused_preflight_names_what_was_refused_in_json() -> None:
    """Another origin and method: 400 VALIDATION_ERROR naming both."""
    async with _client() as http:
        response = await http.options(
            "/thing",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {
        "code": "VALIDATION_ERROR",
        "message": "Disallowed CORS origin, method",
        "details": {},
    }
    assert "access-control-allow-methods" in response.headers
