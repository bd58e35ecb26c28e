"""With no configuration, a node runs on SQLite and in-process fan-out, as `make run` does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.factories.users import user_payload
from tests.fixtures.processes import NodeProcess, migrate

ACCESS_FIELDS = {
    "timestamp",
    "level",
    "request_id",
    "user_id",
    "endpoint",
    "method",
    "duration_ms",
    "status_code",
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node with only DATABASE_URL pointing at a fresh SQLite file (no Redis)."""
    folder = tmp_path_factory.mktemp("embedded")
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'studybuddy.db'}",
        "MEDIA_DIR": str(folder / "media"),
        "REDIS_URL": "",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "INFO",
    }
    migrate(env)
    node = NodeProcess(env).start(folder / "node.log")
    yield node
    node.stop()


def test_embedded_node_serves_health_docs_and_accounts(embedded: NodeProcess) -> None:
    """Health, docs and a register/login round trip work on SQLite."""
    with httpx.Client(base_url=embedded.base_url) as http:
        assert http.get("/health").status_code == 200
        ready = http.get("/health/ready").json()["data"]["checks"]
        assert ready == {"database": "ok", "schema": "ok"}
        assert "swagger-ui" in http.get("/docs").text
        payload = user_payload()
        assert http.post("/api/v1/auth/register", json=payload).status_code == 201
        login = http.post(
            "/api/v1/auth/login", json={"email": payload["email"], "password": payload["password"]}
        )
        assert login.status_code == 200
        token = login.json()["data"]["access_token"]
        me = http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["data"]["email"] == payload["email"]


def test_logs_are_json_lines_with_context_and_no_secrets(embedded: NodeProcess) -> None:
    """Every line is one JSON object; access lines carry the required fields; no secrets."""
    payload = user_payload()
    with httpx.Client(base_url=embedded.base_url) as http:
        http.post("/api/v1/auth/register", json=payload)
        login = http.post(
            "/api/v1/auth/login", json={"email": payload["email"], "password": payload["password"]}
        )
        token = login.json()["data"]["access_token"]
        http.get(
            "/api/v1/users/me",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-1"},
        )
    deadline = time.monotonic() + 5  # the node writes its access line after the response
    while "trace-me-1" not in embedded.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in embedded.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    access = [r for r in records if r.get("logger") == "studybuddy.access"]
    assert access and all(ACCESS_FIELDS <= set(r) for r in access)
    mine = [r for r in access if r["request_id"] == "trace-me-1"]
    assert mine and mine[0]["user_id"] and mine[0]["endpoint"] == "/api/v1/users/me"
    text = embedded.log()
    assert payload["password"] not in text
    assert token not in text
