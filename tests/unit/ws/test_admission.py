"""Admission: a bounded number of sockets admitted at once, a bounded queue, a clear refusal."""

from __future__ import annotations

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
