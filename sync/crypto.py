"""Encryption of secrets at rest (OAuth access and refresh tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with MultiFernet so keys can be rotated: the first key
encrypts, every key decrypts. Keys are url-safe base64 32-byte strings (`Fernet.generate_key()`).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(Exception):
    """A stored secret could not be decrypted with any configured key."""


class SecretBox:
    """Encrypts and decrypts short secrets (str in, str out) with the configured keys, newest first.

    Raises ValueError when no key is given or a key is malformed.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        try:
            fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise ValueError("TOKEN_ENCRYPTION_KEYS holds a malformed Fernet key") from exc
        self._newest = fernets[0]
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        """Return the ciphertext (ASCII) of ``plaintext``."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Return the plaintext. Raises SecretBoxError when no key fits (wrong or rotated-out key)."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretBoxError("stored secret cannot be decrypted with the configured keys") from exc

    def is_current(self, ciphertext: str) -> bool:
        """Does the newest key (the first) open ``ciphertext``? False for an older key's or no key's."""
        try:
            self._newest.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ``ciphertext`` under the newest key. Raises SecretBoxError when no key opens it."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise SecretBoxError("stored secret cannot be decrypted with the configured keys") from exc
