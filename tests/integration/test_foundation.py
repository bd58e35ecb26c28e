"""The node's operational surface, envelopes and headers, over a real socket."""

from __future__ import annotations

import httpx

from tests.factories.users import account
from tests.fixtures.server import RunningServer


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    """Liveness answers 200 in the success envelope."""
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ok"}, "message": "Success"}


async def test_ready_names_every_dependency(client: httpx.AsyncClient) -> None:
    """Readiness checks PostgreSQL and Redis."""
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["data"]["checks"] == {"database": "ok", "redis": "ok", "schema": "ok"}


async def test_unknown_route_is_enveloped_404_with_request_id(client: httpx.AsyncClient) -> None:
    """An unknown path gets NOT_FOUND in the error envelope, with the request id."""
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NOT_FOUND"
    assert error["request_id"] == response.headers["x-request-id"]


async def test_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    """A client's X-Request-ID comes back unchanged."""
    response = await client.get("/health", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"


async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    """A request id with odd characters is not reflected."""
    response = await client.get("/health", headers={"X-Request-ID": "<script>"})
    assert response.headers["x-request-id"] != "<script>"
    assert len(response.headers["x-request-id"]) == 32


async def test_wrong_method_is_enveloped_405(client: httpx.AsyncClient) -> None:
    """A wrong method names the allowed ones."""
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "GET" in response.headers["allow"]


async def test_malformed_json_is_a_validation_error(client: httpx.AsyncClient) -> None:
    """Broken JSON is a 400 with a clear message, not a 500."""
    response = await client.post(
        "/api/v1/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Malformed JSON")


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    """A form body where JSON is expected is refused with 415."""
    response = await client.post("/api/v1/auth/login", data={"email": "a@b.co"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_write_without_a_body_refuses_one(client: httpx.AsyncClient) -> None:
    """read-all takes no body: a field is named (400), not JSON is 415; nothing, or {}, is fine.

    It accepted any body: a client that believed read-all took a list of ids marked every
    notification read.
    """
    user = await account(client)
    url = "/api/v1/notifications/read-all"
    named = await client.post(url, headers=user.headers, json={"only_ids": ["x"]})
    assert named.status_code == 400, named.text
    fields = named.json()["error"]["details"]["fields"]
    assert fields == [
        {"field": "only_ids", "message": "Unknown field", "suggestion": "Remove this field"}
    ]
    typed = await client.post(
        url, headers={**user.headers, "Content-Type": "application/xml"}, content=b"<all/>"
    )
    assert typed.status_code == 415 and typed.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert (await client.post(url, headers=user.headers)).status_code == 204
    assert (await client.post(url, headers=user.headers, json={})).status_code == 204


async def test_oversized_json_is_413(client: httpx.AsyncClient) -> None:
    """JSON bodies over 64 KiB are refused before parsing."""
    body = b'{"email": "' + b"a" * 70_000 + b'"}'
    response = await client.post(
        "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    """CSP, nosniff, frame denial and referrer policy are always present."""
    for path in ("/health", "/docs", "/api/v1/missing"):
        headers = (await client.get(path)).headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in headers  # plain HTTP in dev


async def test_docs_load_only_local_assets(client: httpx.AsyncClient) -> None:
    """Swagger UI and ReDoc pages reference only this host, and the assets are served."""
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assert "http://" not in html and "https://" not in html
    for asset in (
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-init.js",
        "redoc.standalone.js",
    ):
        response = await client.get(f"/static/docs/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 100


async def test_openapi_describes_declared_operations(client: httpx.AsyncClient) -> None:
    """The document is OpenAPI 3.1 and lists the declared operations with schemas."""
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    register = spec["paths"]["/api/v1/auth/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RegisterBody"
    )
    assert "201" in register["responses"]
    assert "Error" in spec["components"]["schemas"]


async def test_metrics_expose_the_contract_series(client: httpx.AsyncClient) -> None:
    """Prometheus text with the series the contract names."""
    await client.get("/health")
    text = (await client.get("/health/metrics")).text
    for name in (
        "studybuddy_http_requests_total",
        "studybuddy_http_request_duration_seconds",
        "studybuddy_ws_connections",
        "studybuddy_ws_frames_total",
        "studybuddy_db_query_duration_seconds",
        "studybuddy_daily_active_users",
        "studybuddy_study_groups_created_total",
    ):
        assert name in text
    assert 'endpoint="/health"' in text


async def test_cors_preflight_allows_only_configured_origins(node: RunningServer) -> None:
    """No origins configured: a browser preflight from elsewhere is not allowed."""
    async with httpx.AsyncClient(base_url=node.base_url) as http:
        response = await http.options(
            "/api/v1/users/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and "origin" in error["message"]
    assert response.headers["x-request-id"]
