"""Password hashing (SHA-256 pre-hash, then bcrypt) and the password policy."""

from __future__ import annotations

from importlib import resources

import pytest

from server.errors import ValidationFailed
from server.security.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordHasher,
    check_password_policy,
    common_passwords,
)


@pytest.fixture
def hasher() -> PasswordHasher:
    """A hasher at bcrypt's minimum cost, so tests stay fast."""
    return PasswordHasher(rounds=4)


async def test_hash_is_bcrypt_at_the_configured_cost(hasher: PasswordHasher) -> None:
    """The stored form is a bcrypt string with the chosen rounds."""
    hashed = await hasher.hash("correct horse battery")
    assert hashed.startswith("$2b$04$")
    assert len(hashed) == 60


async def test_same_password_hashes_differently(hasher: PasswordHasher) -> None:
    """Every hash has its own salt."""
    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_right_password_verifies(hasher: PasswordHasher) -> None:
    """A password verifies against its own hash."""
    hashed = await hasher.hash("correct horse battery")
    assert await hasher.verify("correct horse battery", hashed) is True


async def test_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    """A different password is refused."""
    hashed = await hasher.hash("correct horse battery")
    assert await hasher.verify("correct horse battery!", hashed) is False


@pytest.mark.parametrize("length", [73, 1000])
async def test_long_passwords_hash_and_verify(hasher: PasswordHasher, length: int) -> None:
    """Passwords past bcrypt's 72-byte limit work (bcrypt 5 would raise on them)."""
    password = "p" * length
    assert len(password.encode()) == length
    hashed = await hasher.hash(password)
    assert await hasher.verify(password, hashed) is True


async def test_long_passwords_differing_after_72_bytes_do_not_match(
    hasher: PasswordHasher,
) -> None:
    """Every character counts: no silent truncation at 72 bytes."""
    hashed = await hasher.hash("a" * 72 + "b")
    assert await hasher.verify("a" * 72 + "c", hashed) is False


async def test_non_ascii_and_lone_surrogate_passwords_work(hasher: PasswordHasher) -> None:
    """Multi-byte and even unpaired-surrogate text hashes without an encoding error."""
    for password in ("pässwörd-ünïcode-🔑", "broken-\ud800-surrogate"):
        hashed = await hasher.hash(password)
        assert await hasher.verify(password, hashed) is True


async def test_verify_without_hash_is_false(hasher: PasswordHasher) -> None:
    """An unknown account (no hash) never verifies, even with the dummy's own password."""
    assert await hasher.verify("anything at all", None) is False
    assert await hasher.verify("dummy password for timing", None) is False


async def test_verify_with_empty_hash_is_false(hasher: PasswordHasher) -> None:
    """An empty stored hash is treated like a missing one."""
    assert await hasher.verify("anything at all", "") is False


def test_common_list_contains_well_known_passwords() -> None:
    """The shipped list has the classic 'password'."""
    words = common_passwords()
    assert "password" in words
    assert "" not in words


def test_common_list_includes_every_extra_entry() -> None:
    """Each line of common-passwords-extra.txt is in the list, lower-cased."""
    extra = resources.files("server.security") / "data" / "common-passwords-extra.txt"
    entries = [line.strip().lower() for line in extra.read_text(encoding="utf-8").splitlines()]
    entries = [entry for entry in entries if entry]
    assert entries
    assert set(entries) <= common_passwords()


def test_common_list_is_loaded_once() -> None:
    """The list is cached: two calls return the same object."""
    assert common_passwords() is common_passwords()


@pytest.mark.parametrize("length", [MIN_LENGTH, MAX_LENGTH])
def test_policy_accepts_boundary_lengths(length: int) -> None:
    """12 and 128 characters are both fine when the password is not common."""
    password = ("Xq7#vL2!mR9$" * 11)[:length]
    check_password_policy(password)


@pytest.mark.parametrize("length", [MIN_LENGTH - 1, MAX_LENGTH + 1, 0])
def test_policy_refuses_bad_lengths(length: int) -> None:
    """Under 12 or over 128 characters is a field error with a passphrase suggestion."""
    with pytest.raises(ValidationFailed) as caught:
        check_password_policy("Z" * length, field="new_password")
    assert caught.value.details["fields"] == [
        {
            "field": "new_password",
            "message": "Password must be 12..128 characters",
            "suggestion": "Use a passphrase of several words",
        }
    ]


def test_policy_refuses_exactly_eleven_characters() -> None:
    """One character under the minimum is refused."""
    with pytest.raises(ValidationFailed):
        check_password_policy("Xq7#vL2!mR9")


@pytest.mark.parametrize("password", ["passwordpassword", "PasswordPassword", " passwordpassword "])
def test_policy_refuses_common_passwords_whatever_the_case(password: str) -> None:
    """A listed password is refused regardless of case and surrounding spaces."""
    with pytest.raises(ValidationFailed) as caught:
        check_password_policy(password)
    assert caught.value.details["fields"] == [
        {
            "field": "password",
            "message": "This password is too common",
            "suggestion": "Choose a password that is not a common one",
        }
    ]
