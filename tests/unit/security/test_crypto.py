"""Secrets at rest: Fernet sealing under a key derived from DATA_ENCRYPTION_KEY."""

from __future__ import annotations

import pytest

from server.security.crypto import SecretBox


def test_sealed_value_opens_to_the_plaintext() -> None:
    """Sealing then opening gives back the original text, unicode included."""
    box = SecretBox("a data key")
    for plaintext in ("JBSWY3DPEHPK3PXP", "", "ünïcödé 🔐"):
        assert box.open(box.seal(plaintext)) == plaintext


def test_sealed_value_hides_the_plaintext() -> None:
    """The sealed form is ASCII, does not contain the secret, and differs each time."""
    box = SecretBox("a data key")
    first, second = box.seal("JBSWY3DPEHPK3PXP"), box.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in first
    assert first.isascii()
    assert first != second


def test_same_key_material_opens_across_instances() -> None:
    """The key is derived deterministically, so another node with the same key can open."""
    assert SecretBox("shared").open(SecretBox("shared").seal("seed")) == "seed"


def test_wrong_key_raises_value_error() -> None:
    """A value sealed under another key cannot be opened."""
    sealed = SecretBox("key one").seal("seed")
    with pytest.raises(ValueError, match="wrong key or tampered"):
        SecretBox("key two").open(sealed)


def test_tampered_value_raises_value_error() -> None:
    """Changing one character of the token is detected."""
    box = SecretBox("a data key")
    sealed = box.seal("seed")
    index = len(sealed) // 2
    tampered = sealed[:index] + ("A" if sealed[index] != "A" else "B") + sealed[index + 1 :]
    with pytest.raises(ValueError, match="wrong key or tampered"):
        box.open(tampered)


def test_garbage_raises_value_error() -> None:
    """Something that is not a Fernet token at all is refused the same way."""
    with pytest.raises(ValueError, match="wrong key or tampered"):
        SecretBox("a data key").open("not-a-token")
