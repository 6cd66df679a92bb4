"""API key and password hashing, and masking of personal data for logs."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "gck"
_hasher = PasswordHasher()


def generate_api_key() -> tuple[str, str, str]:
    """A new key as (full key, display prefix, hash). The full key is shown once, never stored."""
    public = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}_{public}_{secret}"
    return key, f"{KEY_PREFIX}_{public}", hash_api_key(key)


def hash_api_key(key: str) -> str:
    """SHA-256 of a key: keys carry 256 bits of randomness, so a fast hash is safe here."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str | None:
    """The display prefix of a well-formed key, or None."""
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
        return None
    return f"{parts[0]}_{parts[1]}"


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored argon2 hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign(secret: str, payload: bytes) -> str:
    """Hex HMAC-SHA256 of a payload."""
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


_PHONE_RE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phone(phone: str) -> str:
    """138****5678 style mask for one phone number."""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * len(digits)


def mask_phones_in_text(text: str) -> str:
    """Mask every mainland mobile number that appears in free text."""
    return _PHONE_RE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)
