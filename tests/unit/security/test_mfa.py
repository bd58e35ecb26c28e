"""TOTP (RFC 6238): the RFC's test vectors, drift, replay protection and the otpauth URI."""

from __future__ import annotations

import base64

import pytest

from server.security.mfa import (
    DIGITS,
    STEP_S,
    code_at,
    match_step,
    new_secret,
    otpauth_uri,
    step_of,
)

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")
NOW = 1_111_111_111.0


@pytest.mark.parametrize(
    ("timestamp", "rfc_code"),
    [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ],
)
def test_rfc_6238_sha1_vectors_truncated_to_six_digits(timestamp: int, rfc_code: str) -> None:
    """The RFC's 8-digit SHA-1 codes, cut to their last 6 digits, are produced."""
    assert code_at(RFC_SECRET, step_of(timestamp)) == rfc_code[-DIGITS:]


def test_code_at_59_seconds_is_287082() -> None:
    """T=59 is step 1 and gives 287082."""
    assert step_of(59) == 1
    assert code_at(RFC_SECRET, 1) == "287082"


def test_codes_keep_leading_zeros() -> None:
    """A code below 100000 is zero-padded to six digits."""
    assert code_at(RFC_SECRET, step_of(1_234_567_890)) == "005924"


def test_secret_is_accepted_lower_case_and_without_padding() -> None:
    """Apps and users may send the secret lower-cased; padding is optional."""
    unpadded = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert code_at(unpadded.lower(), 1) == "287082"


def test_step_of_uses_thirty_second_steps() -> None:
    """Steps are 30 s wide and the boundary belongs to the next step."""
    assert STEP_S == 30
    assert step_of(0) == 0
    assert step_of(29.999) == 0
    assert step_of(30) == 1


def test_new_secret_is_160_bits_base32_without_padding() -> None:
    """A new secret decodes to 20 random bytes and differs each time."""
    secret = new_secret()
    assert len(secret) == 32
    assert "=" not in secret
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret


def test_current_code_matches_its_step() -> None:
    """The code of the current step is accepted and its step returned."""
    step = step_of(NOW)
    assert match_step(RFC_SECRET, code_at(RFC_SECRET, step), NOW, 0) == step


@pytest.mark.parametrize("drift", [-1, 1])
def test_one_step_of_drift_either_way_is_accepted(drift: int) -> None:
    """A phone 30 s behind or ahead still logs in."""
    step = step_of(NOW) + drift
    assert match_step(RFC_SECRET, code_at(RFC_SECRET, step), NOW, 0) == step


@pytest.mark.parametrize("drift", [-2, 2])
def test_two_steps_of_drift_are_refused(drift: int) -> None:
    """A code a minute off is refused."""
    code = code_at(RFC_SECRET, step_of(NOW) + drift)
    assert match_step(RFC_SECRET, code, NOW, 0) is None


def test_replayed_code_is_refused() -> None:
    """Once a step has been used, its code is not accepted again."""
    code = code_at(RFC_SECRET, step_of(NOW))
    used = match_step(RFC_SECRET, code, NOW, 0)
    assert used is not None
    assert match_step(RFC_SECRET, code, NOW, used) is None
    assert match_step(RFC_SECRET, code, NOW + 10, used) is None


def test_earlier_step_is_refused_after_a_later_one_was_used() -> None:
    """Using the current step also burns the previous (drift) step."""
    step = step_of(NOW)
    assert match_step(RFC_SECRET, code_at(RFC_SECRET, step - 1), NOW, step) is None


def test_next_step_is_accepted_after_the_previous_was_used() -> None:
    """After step n was used, the code of step n+1 still works."""
    step = step_of(NOW)
    later = NOW + STEP_S
    assert match_step(RFC_SECRET, code_at(RFC_SECRET, step + 1), later, step) == step + 1


def test_wrong_code_is_refused() -> None:
    """A well-formed but wrong code does not match."""
    valid = {code_at(RFC_SECRET, step_of(NOW) + d) for d in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    assert match_step(RFC_SECRET, wrong, NOW, 0) is None


@pytest.mark.parametrize(
    "code", [None, "", "12345", "1234567", "12a456", " 12345", "123 56", "-12345"]
)
def test_malformed_codes_are_refused(code: str | None) -> None:
    """Missing, short, long or non-digit codes never match."""
    assert match_step(RFC_SECRET, code, NOW, 0) is None


@pytest.mark.parametrize(
    "code",
    [
        "\uff12\uff18\uff17\uff10\uff18\uff12",  # full-width 287082
        "\u00b9\u00b2\u00b3\u2074\u2075\u2076",  # superscript 123456
        "\u0662\u0668\u0667\u0660\u0668\u0662",  # Arabic-Indic 287082
    ],
    ids=["full-width", "superscript", "arabic-indic"],
)
def test_non_ascii_digit_codes_are_refused(code: str) -> None:
    """Unicode digits (full-width, superscript, Arabic-Indic) are malformed, not a crash."""
    assert match_step(RFC_SECRET, code, 59, 0) is None


def test_otpauth_uri_format() -> None:
    """The URI has the issuer-prefixed label and secret, issuer, digits and period."""
    uri = otpauth_uri("JBSWY3DPEHPK3PXP", "jane@example.com")
    assert uri == (
        "otpauth://totp/StudyBuddy%3Ajane%40example.com"
        "?secret=JBSWY3DPEHPK3PXP&issuer=StudyBuddy&digits=6&period=30"
    )


def test_otpauth_uri_escapes_a_custom_issuer() -> None:
    """Spaces in the issuer are escaped in both the label and the query."""
    uri = otpauth_uri("ABC", "jane", issuer="Study Hall")
    assert (
        uri == "otpauth://totp/Study%20Hall%3Ajane?secret=ABC&issuer=Study+Hall&digits=6&period=30"
    )
