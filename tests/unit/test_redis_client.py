"""How the cluster client finds the keys of a stream read without asking a node."""

from __future__ import annotations

import pytest

from server.redis_client import stream_read_keys


@pytest.mark.parametrize(
    ("command", "args", "keys"),
    [
        (
            "XREADGROUP",
            (b"GROUP", "persisters", "node-1", b"COUNT", 500, b"BLOCK", 250, b"STREAMS", "s", ">"),
            ["s"],
        ),
        ("xreadgroup", ("GROUP", "g", "c", "streams", "a", "b", "0", "0"), ["a", "b"]),
        ("XREAD", (b"COUNT", 1, b"STREAMS", b"x", b"0"), [b"x"]),
        ("XREADGROUP", ("GROUP", "g", "STREAMS", "STREAMS", "k", ">"), ["k"]),  # consumer STREAMS
        ("XREAD", ("COUNT", 1), []),
        ("GET", ("key",), []),
    ],
)
def test_stream_read_keys(command: str, args: tuple[object, ...], keys: list[object]) -> None:
    """Keys follow STREAMS (searched after GROUP's two names), the first half of the rest."""
    assert stream_read_keys(command, args) == keys
