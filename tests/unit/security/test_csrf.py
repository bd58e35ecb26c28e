"""CSRF double-submit: the header must echo the cookie."""

from __future__ import annotations

import pytest

from server.errors import Forbidden
from server.security.csrf import CSRF_COOKIE, CSRF_HEADER, check_csrf, new_csrf_token


def test_new_tokens_are_random_and_url_safe() -> None:
    """Each token is 32 random bytes, URL-safe, and unique."""
    tokens = {new_csrf_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(token) == 43 for token in tokens)


def test_names_match_the_contract() -> None:
    """The cookie and header names are the documented ones."""
    assert CSRF_COOKIE == "csrf_token"
    assert CSRF_HEADER == "X-CSRF-Token"


def test_header_echoing_the_cookie_is_accepted() -> None:
    """Same value in cookie and header passes silently."""
    token = new_csrf_token()
    check_csrf(token, token)


@pytest.mark.parametrize(
    ("cookie", "header"),
    [
        (None, "abc"),
        ("abc", None),
        ("", ""),
        (None, None),
        ("abc", "abd"),
        ("abc", "ABC"),
        ("abc", "abc "),
        ("jäne", "jane"),
    ],
)
def test_missing_or_different_tokens_are_forbidden(cookie: str | None, header: str | None) -> None:
    """A missing cookie or header, or any difference, is FORBIDDEN naming the header."""
    with pytest.raises(Forbidden, match="Missing or invalid X-CSRF-Token header"):
        check_csrf(cookie, header)
