"""Which browser Origins may open a socket."""

from __future__ import annotations

import pytest

from server.ws.endpoint import origin_allowed

ALLOWED = ("https://app.example",)


def scope(**headers: str) -> dict[str, object]:
    """A WebSocket scope with these headers."""
    return {"headers": [(k.encode(), v.encode()) for k, v in headers.items()]}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, True),  # not a browser
        ({"origin": "https://app.example", "host": "api.example"}, True),  # listed
        ({"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"}, True),  # its own page
        ({"origin": "https://Chat.Example", "host": "chat.example"}, True),  # case-insensitive
        ({"origin": "http://127.0.0.1:8001", "host": "127.0.0.1:8000"}, False),  # another port
        ({"origin": "https://evil.example", "host": "chat.example"}, False),
        ({"origin": "https://evil.example"}, False),  # no Host at all
        ({"origin": "null", "host": "chat.example"}, False),
        ({"origin": "https://chat.example.evil", "host": "chat.example"}, False),
    ],
)
def test_origin_allowed(headers: dict[str, str], expected: bool) -> None:
    """Listed origins and the node's own origin; nothing else from a browser."""
    assert origin_allowed(scope(**headers), ALLOWED) is expected  # type: ignore[arg-type]
