"""Admission: a bounded number of sockets admitted at once, a bounded queue, a clear refusal."""

from __future__ import annotations

import json
from typing import Any

from server.ws.admission import Admission, refuse_busy


def test_handshakes_are_counted_in_and_out_against_the_limit() -> None:
    """Concurrency plus queue handshakes fit; one more does not until one leaves."""
    admission = Admission(concurrency=2, queue=1)
    assert [admission.enter() for _ in range(3)] == [True, True, True]
    assert not admission.enter()
    admission.leave()
    assert admission.enter()


async def test_without_http_denials_a_busy_node_closes_1013() -> None:
    """A server without the denial extension: accept, then close 1013 (try again later)."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await refuse_busy({"type": "websocket", "extensions": {}}, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1013


def test_a_full_node_evicts_its_oldest_silent_socket() -> None:
    """Full: the oldest socket that sent nothing makes room; talking sockets are never evicted."""
    admission = Admission(concurrency=1, queue=2)
    evicted: list[str] = []
    for name in ("first", "second", "third"):
        assert admission.enter()
        admission.silent(name, lambda name=name: evicted.append(name))  # type: ignore[misc]
    admission.spoke("first")  # it sent auth: it waits for work
    assert admission.enter()
    assert evicted == ["second"]
    admission.leave("second")  # its close went out
    admission.silent("fourth", lambda: evicted.append("fourth"))
    admission.spoke("third")
    admission.spoke("fourth")
    assert not admission.enter()  # everyone talks: a storm, refused as before
    assert evicted == ["second"]


async def test_a_busy_node_answers_the_handshake_503_with_retry_after() -> None:
    """With the denial extension: HTTP 503, Retry-After 1, SERVICE_UNAVAILABLE; no socket."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await refuse_busy({"type": "websocket", "extensions": {"websocket.http.response": {}}}, send)
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "SERVICE_UNAVAILABLE"
