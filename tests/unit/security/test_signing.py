"""Webhook signatures: ``t=<unix>,v1=<hex HMAC-SHA256 over "<t>.<raw body>">``."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from server.security.signing import SIGNATURE_HEADER, new_secret, sign, verify

SECRET = "whsec_test-secret-ü"
BODY = b'{"id":"d1","type":"message.created","created_at":"2026-01-01T00:00:00Z","data":{}}'
T = 1_767_225_600


def reference(secret: str, body: bytes, timestamp: int) -> str:
    """The contract's HMAC, computed independently of the module under test."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def test_header_name() -> None:
    """The header carrying the signature is the contract's."""
    assert SIGNATURE_HEADER == "X-StudyBuddy-Signature"


def test_new_secret_is_prefixed_random_and_url_safe() -> None:
    """Secrets carry the ``whsec_`` prefix, 32 random bytes, and differ every time."""
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)


def test_sign_matches_an_independent_hmac() -> None:
    """The header is exactly ``t=<t>,v1=<hex>`` with the reference HMAC."""
    assert sign(SECRET, BODY, T) == f"t={T},v1={reference(SECRET, BODY, T)}"


def test_sign_known_vector() -> None:
    """A fixed vector, so a change of algorithm or key encoding cannot go unnoticed."""
    expected = hmac.new(b"whsec_abc", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("whsec_abc", b"{}", 1_700_000_000) == f"t=1700000000,v1={expected}"
    assert len(expected) == 64


def test_sign_keys_by_utf8_bytes() -> None:
    """Non-ASCII secrets are keyed by their UTF-8 encoding."""
    key = "clé-ü".encode()
    expected = hmac.new(key, b"5.body", hashlib.sha256).hexdigest()
    assert sign("clé-ü", b"body", 5) == f"t=5,v1={expected}"


def test_sign_covers_an_empty_body() -> None:
    """An empty body is still signed (over ``"<t>."``)."""
    assert sign(SECRET, b"", T) == f"t={T},v1={reference(SECRET, b'', T)}"


def test_round_trip_verifies() -> None:
    """A header made by sign verifies at the same instant."""
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=T) is True


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_timestamp_within_tolerance_verifies(skew: int) -> None:
    """Clocks may differ by up to the tolerance, either way, inclusive."""
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=T + skew) is True


@pytest.mark.parametrize("skew", [-301, 301, 86_400, -86_400])
def test_timestamp_outside_tolerance_fails(skew: int) -> None:
    """Replays of old deliveries and far-future timestamps are refused."""
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=T + skew) is False


def test_custom_tolerance() -> None:
    """The tolerance is configurable."""
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, header, BODY, now=T + 10, tolerance_s=10) is True
    assert verify(SECRET, header, BODY, now=T + 11, tolerance_s=10) is False


def test_tampered_body_fails() -> None:
    """Any change to the body breaks the signature."""
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, header, BODY + b" ", now=T) is False
    assert verify(SECRET, header, BODY.replace(b"d1", b"d2"), now=T) is False


def test_wrong_secret_fails() -> None:
    """Another webhook's secret does not verify."""
    assert verify("whsec_other", sign(SECRET, BODY, T), BODY, now=T) is False


def test_tampered_timestamp_fails() -> None:
    """The timestamp is signed: moving it forward (to dodge the replay window) fails."""
    header = sign(SECRET, BODY, T).replace(f"t={T}", f"t={T + 60}")
    assert verify(SECRET, header, BODY, now=T + 60) is False


def test_tampered_signature_fails() -> None:
    """A single flipped hex digit fails."""
    digest = reference(SECRET, BODY, T)
    flipped = ("0" if digest[0] != "0" else "1") + digest[1:]
    assert verify(SECRET, f"t={T},v1={flipped}", BODY, now=T) is False


def test_parts_in_any_order_with_unknown_parts_and_spaces() -> None:
    """``v1`` may precede ``t``; unknown schemes and surrounding spaces are ignored."""
    digest = reference(SECRET, BODY, T)
    header = f"v0=deadbeef, v1={digest} , t={T},x=y"
    assert verify(SECRET, header, BODY, now=T) is True


def test_any_of_several_v1_signatures_may_match() -> None:
    """During secret rotation several ``v1`` parts may be sent; one match suffices."""
    digest = reference(SECRET, BODY, T)
    assert verify(SECRET, f"t={T},v1={'0' * 64},v1={digest}", BODY, now=T) is True
    assert verify(SECRET, f"t={T},v1={'0' * 64},v1={'1' * 64}", BODY, now=T) is False


def test_upper_case_hex_verifies() -> None:
    """Hex digits compare case-insensitively."""
    digest = reference(SECRET, BODY, T).upper()
    assert verify(SECRET, f"t={T},v1={digest}", BODY, now=T) is True


@pytest.mark.parametrize(
    "header",
    [
        "",
        ",",
        "garbage",
        "t=,v1=",
        f"t={T}",
        f"v1={'0' * 64}",
        "t=abc,v1=00",
        "t=-5,v1=00",
        "t=1.5,v1=00",
        "t=²,v1=00",
        "t=" + "9" * 21 + ",v1=00",
        "t=" + "9" * 5000 + ",v1=00",
        f"t={T},t={T},v1=00",
        f"t={T};v1=00",
        f"t={T},v1=é",
        f"t={T},v1",
        f"t={T},v1={'0' * 64},junk",
    ],
)
def test_malformed_headers_fail_without_raising(header: str) -> None:
    """Anything malformed is simply False."""
    assert verify(SECRET, header, BODY, now=T) is False


def test_duplicate_timestamp_fails_even_with_a_valid_signature() -> None:
    """Two ``t`` parts are ambiguous, so the header is refused."""
    header = f"t={T},{sign(SECRET, BODY, T)}"
    assert verify(SECRET, header, BODY, now=T) is False


def test_non_ascii_signature_fails_even_next_to_a_valid_one() -> None:
    """A non-ASCII ``v1`` makes the header malformed rather than raising in compare_digest."""
    header = f"{sign(SECRET, BODY, T)},v1=ü"
    assert verify(SECRET, header, BODY, now=T) is False


def test_unencodable_secret_fails_without_raising() -> None:
    """A secret that is not valid UTF-8 (a lone surrogate) cannot verify anything."""
    assert verify("\ud800", f"t={T},v1={'0' * 64}", BODY, now=T) is False
