"""Mentions are read from the stored (HTML-escaped) body."""

from __future__ import annotations

import html

import pytest

from server.services.mentions import MAX_MENTIONS, mentioned


def stored(text: str) -> str:
    """The body as the server stores it."""
    return html.escape(text, quote=True)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("hi @ada", {"ada"}),
        ("@Ada and @BOB_1, @carol.d", {"ada", "bob_1", "carol.d"}),
        ("<b>@ada</b>", {"ada"}),
        ("'@ada'", {"ada"}),
        ('"@ada"&@bob', {"ada", "bob"}),
        ("see @ada.", {"ada.", "ada"}),
        ("mail ada@example.com", set()),
        ("@ab is too short, @@ada is not a mention", set()),
        ("no mentions here", set()),
    ],
)
def test_names_are_found_in_escaped_bodies(body: str, names: set[str]) -> None:
    """Escaped characters end a name; an address is not a mention; case is folded."""
    assert mentioned(stored(body)) == names


def test_at_most_a_bounded_number_of_names() -> None:
    """A body full of names is cut at MAX_MENTIONS candidates."""
    body = " ".join(f"@user{i:03d}" for i in range(200))
    assert len(mentioned(body)) == MAX_MENTIONS
