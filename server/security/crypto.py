"""Encryption of secrets at rest (TOTP seeds, webhook secrets) with Fernet."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts short secrets with a key derived from ``DATA_ENCRYPTION_KEY``."""

    def __init__(self, key_material: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest())
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> str:
        """Encrypt and authenticate ``plaintext``."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """Decrypt a value made by :meth:`seal`.

        Raises:
            ValueError: tampered with, or sealed under another key.
        """
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: wrong key or tampered value") from exc
