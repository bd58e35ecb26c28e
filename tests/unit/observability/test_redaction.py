"""Redaction of secrets and PII in log fields and free text."""

from __future__ import annotations

import bcrypt
import pytest

from server.observability.redaction import REDACTED, is_sensitive_key, redact, redact_text

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_pass",
        "Passwd",
        "jwt_secret",
        "access_token",
        "Authorization",
        "Set-Cookie",
        "X-CSRF-Token",
        "api_key",
        "apiKey",
        "api-key",
        "totp_code",
        "otp",
        "code",
        "card_number",
    ],
)
def test_sensitive_keys_are_recognised(key: str) -> None:
    """Field names that suggest a secret are flagged, whatever their case."""
    assert is_sensitive_key(key) is True


@pytest.mark.parametrize("key", ["username", "email_verified", "group_id", "status_code", ""])
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    """Ordinary names pass; 'code' only matches as the whole name."""
    assert is_sensitive_key(key) is False


def test_jwts_in_text_are_masked() -> None:
    """A JWT anywhere in a sentence is replaced."""
    assert redact_text(f"token was {JWT} ok") == f"token was {REDACTED} ok"


def test_bearer_credentials_are_masked_keeping_the_scheme() -> None:
    """'Bearer <credential>' keeps the word, hides the credential."""
    assert redact_text("Authorization: Bearer abc.DEF-123~x/y=") == (
        f"Authorization: Bearer {REDACTED}"
    )
    assert redact_text("bearer opaque") == f"bearer {REDACTED}"


def test_bcrypt_hashes_are_masked() -> None:
    """A password hash inside a logged statement's parameters is replaced."""
    hashed = bcrypt.hashpw(b"analytical-engine-1843-x", bcrypt.gensalt(4)).decode()
    line = f"executing INSERT ... ('dbguser2', '{hashed}', 'x')"
    assert redact_text(line) == f"executing INSERT ... ('dbguser2', '{REDACTED}', 'x')"


@pytest.mark.parametrize("card", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"])
def test_card_numbers_are_masked(card: str) -> None:
    """13..19 digit runs, with spaces or dashes, are masked."""
    assert redact_text(f"paid with {card}.") == f"paid with {REDACTED}."


def test_short_numbers_are_kept() -> None:
    """Ids, ports and years are not card numbers."""
    assert redact_text("user 12345 on port 8080 in 2024") == "user 12345 on port 8080 in 2024"


@pytest.mark.parametrize(
    "uuid_text",
    ["12345678-1234-4234-a63e-9f09d9d7abd7", "0e4f7a9b-1c2d-4e3f-8123-456789012345"],
)
def test_uuids_whose_groups_are_digits_are_kept(uuid_text: str) -> None:
    """A user id is not a card number, though its first or last groups be all digits."""
    assert redact_text(f"user {uuid_text} signed in") == f"user {uuid_text} signed in"


def test_email_addresses_are_masked() -> None:
    """Email addresses are PII."""
    assert redact_text("login failed for jane.doe+x@example.co.uk") == (
        f"login failed for {REDACTED}"
    )


def test_plain_text_is_unchanged() -> None:
    """Nothing to hide, nothing changed."""
    assert redact_text("group created") == "group created"


def test_redact_masks_sensitive_keys_recursively() -> None:
    """Mappings and sequences are walked; sensitive keys lose their values entirely."""
    value = {
        "user": {"username": "jane", "password": "hunter2", "email": "jane@example.com"},
        "headers": [("Accept", "json"), {"Cookie": "sid=1"}],
        "attempts": 3,
        "ok": True,
        "missing": None,
    }
    assert redact(value) == {
        "user": {"username": "jane", "password": REDACTED, "email": REDACTED},
        "headers": [["Accept", "json"], {"Cookie": REDACTED}],
        "attempts": 3,
        "ok": True,
        "missing": None,
    }


def test_redact_by_key_hides_any_value() -> None:
    """A sensitive key hides even non-string values."""
    assert redact({"nested": 1}, "refresh_token") == REDACTED
    assert redact(123456, "code") == REDACTED


def test_redact_handles_non_string_keys() -> None:
    """Integer keys are inspected as text and kept."""
    assert redact({1: "a", 2: JWT}) == {1: "a", 2: REDACTED}


def test_redact_leaves_other_objects_alone() -> None:
    """Numbers and other objects pass through untouched."""
    marker = object()
    assert redact(marker) is marker
    assert redact(3.5) == 3.5
