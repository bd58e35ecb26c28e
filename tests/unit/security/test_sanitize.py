"""User text sanitising: control characters, NFC, length in code points, HTML escaping."""

from __future__ import annotations

import pytest

from server.errors import ValidationFailed
from server.security.sanitize import (
    EMAIL_SUGGESTION,
    clean_email,
    clean_text,
    clean_username,
    escape_for_search,
    normalise,
    search_form,
)


def test_normalise_strips_control_characters_but_keeps_newline_and_tab() -> None:
    """C0, C1 and DEL vanish; newline and tab survive."""
    assert normalise("a\x00b\x07c\x1bd\x7fe\x85f\x9fg\nh\ti\rj") == "abcdefg\nh\tij"


def test_normalise_composes_to_nfc() -> None:
    """A decomposed accent becomes the single precomposed code point."""
    assert normalise("e\u0301") == "\u00e9"


def test_clean_text_escapes_html() -> None:
    """Markup is stored escaped, quotes included."""
    stored = clean_text("<b>\"Tom\" & 'Jerry'</b>", field="bio", max_length=100)
    assert stored == "&lt;b&gt;&quot;Tom&quot; &amp; &#x27;Jerry&#x27;&lt;/b&gt;"


def test_clean_text_counts_code_points_as_sent() -> None:
    """Three decomposed letters are six code points as sent (JSON Schema's maxLength count).

    They are stored composed; the limit applies to what the client sent.
    """
    assert clean_text("e\u0301" * 3, field="name", max_length=6) == "\u00e9" * 3
    with pytest.raises(ValidationFailed):
        clean_text("e\u0301" * 3, field="name", max_length=5)


def test_control_characters_count_towards_the_limit_before_removal() -> None:
    """Issue 16: 201 code points with control characters were accepted for a 200 limit."""
    sent = "t" * 199 + "\x0f\x10"
    with pytest.raises(ValidationFailed):
        clean_text(sent, field="title", max_length=200)
    assert clean_text(sent[:200], field="title", max_length=200) == "t" * 199


def test_clean_text_checks_length_before_escaping() -> None:
    """An ampersand counts as one character even though it is stored as five."""
    assert clean_text("a&b", field="name", max_length=3) == "a&amp;b"


def test_clean_text_rejects_too_long_text_naming_the_field() -> None:
    """One character over the limit is a field-level validation error."""
    with pytest.raises(ValidationFailed) as caught:
        clean_text("x" * 11, field="title", max_length=10)
    assert caught.value.details["fields"] == [
        {
            "field": "title",
            "message": "title must be 0..10 characters",
            "suggestion": "Use between 0 and 10 characters",
        }
    ]


def test_clean_text_rejects_too_short_text() -> None:
    """Below the minimum length is refused."""
    with pytest.raises(ValidationFailed) as caught:
        clean_text("ab", field="name", min_length=3, max_length=10)
    assert caught.value.message == "name must be 3..10 characters"


def test_clean_text_counts_control_characters_then_removes_them() -> None:
    """The length check sees what was sent; control characters are removed afterwards."""
    assert clean_text("ab\x00\x01", field="name", min_length=2, max_length=4) == "ab"
    with pytest.raises(ValidationFailed):
        clean_text("ab\x00\x01", field="name", min_length=2, max_length=3)


def test_clean_text_blank_refused_when_not_blank_is_set() -> None:
    """Only whitespace (and control characters) counts as empty when text is required."""
    with pytest.raises(ValidationFailed) as caught:
        clean_text(" \n\t\x00 ", field="body", max_length=100, not_blank=True)
    assert caught.value.details["fields"][0] == {
        "field": "body",
        "message": "body must not be empty",
        "suggestion": "Write some text",
    }


def test_clean_text_blank_allowed_by_default() -> None:
    """Without not_blank, whitespace is a valid value."""
    assert clean_text("   ", field="bio", max_length=10) == "   "


def test_escape_for_search_matches_stored_form() -> None:
    """A search term is sanitised exactly like stored text so the two compare."""
    term = "<b>e\u0301\x00"
    assert escape_for_search(term) == clean_text(term, field="name", max_length=100)
    assert escape_for_search(term) == "&lt;b&gt;\u00e9"


def test_search_form_undoes_the_stored_escaping_and_lowers() -> None:
    """Stored text comes back as typed, lower-cased; an escaped entity stays literal."""
    typed = 'Tom & Jerry <3 "Quote" it\'s &lt; É'
    stored = clean_text(typed, field="body", max_length=100)
    assert search_form(stored) == typed.lower()
    assert "amp" not in search_form(stored)


def test_clean_email_accepts_the_longest_local_part() -> None:
    """64 characters before the @ is the RFC 5321 limit, and allowed."""
    assert clean_email("j" * 64 + "@example.com") == "j" * 64 + "@example.com"


def test_clean_email_lowercases_and_trims() -> None:
    """Surrounding spaces go and the address is lower-cased."""
    assert clean_email("  Jane.Doe+Study@Example.COM ") == "jane.doe+study@example.com"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "@example.com",
        "jane@",
        "jane@example",
        "jane@@example.com",
        "jane doe@example.com",
        "jane@-example.com",
        "jane@example.c",
        "jane.@example.com",
        "jane@example.com\nx",
        "jane@example.com\r\nbcc: eve@example.com",
        "j" * 65 + "@example.com",
        "jane@" + "e" * 250 + ".com",
    ],
)
def test_clean_email_rejects_implausible_addresses(address: str) -> None:
    """Malformed addresses are a field error on 'email' with the format suggestion."""
    with pytest.raises(ValidationFailed) as caught:
        clean_email(address)
    assert caught.value.details["fields"] == [
        {"field": "email", "message": "Email format invalid", "suggestion": EMAIL_SUGGESTION}
    ]


def test_clean_email_rejects_addresses_over_254_characters() -> None:
    """A syntactically fine address over the RFC 5321 path limit is refused."""
    local = "a" * 70
    domain = ".".join(["b" * 61] * 3) + ".com"
    address = f"{local}@{domain}"
    assert len(address) > 254
    with pytest.raises(ValidationFailed):
        clean_email(address)


def test_clean_email_accepts_254_characters() -> None:
    """Exactly at the limit is still accepted."""
    domain = ".".join(["b" * 61] * 3) + ".com"
    local = "a" * (254 - len(domain) - 1)
    address = f"{local}@{domain}"
    assert len(address) == 254
    assert clean_email(address) == address


def test_clean_username_lowercases() -> None:
    """Usernames are unique case-insensitively, so they are stored lower-cased."""
    assert clean_username("Jane_Doe.99-x") == "jane_doe.99-x"


@pytest.mark.parametrize("name", ["ab", "a" * 33, "jane doe", "jäne", "jane!", ""])
def test_clean_username_rejects_bad_names(name: str) -> None:
    """Wrong length or characters outside a-z, 0-9, '_', '.', '-' are refused."""
    with pytest.raises(ValidationFailed) as caught:
        clean_username(name)
    assert caught.value.details["fields"][0]["field"] == "username"


@pytest.mark.parametrize("name", ["abc", "a" * 32])
def test_clean_username_accepts_boundary_lengths(name: str) -> None:
    """Three and thirty-two characters are both allowed."""
    assert clean_username(name) == name
