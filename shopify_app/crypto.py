"""Encryption at rest for Shopify tokens (Fernet, with key rotation)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def _keys() -> list[bytes]:
    configured = [k.strip() for k in current_app.config["TOKEN_ENCRYPTION_KEYS"].split(",")]
    keys = [k.encode() for k in configured if k]
    if not keys:
        # Development only (production requires TOKEN_ENCRYPTION_KEYS): derive from SECRET_KEY.
        digest = hashlib.sha256(current_app.config["SECRET_KEY"].encode()).digest()
        keys = [base64.urlsafe_b64encode(digest)]
    return keys


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


def encrypt(plaintext: str | None) -> str | None:
    if plaintext is None:
        return None
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str | None) -> str | None:
    """The plaintext, or None when absent or not readable with any configured key."""
    if not ciphertext:
        return None
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        current_app.logger.error("stored token could not be decrypted with the configured keys")
        return None
