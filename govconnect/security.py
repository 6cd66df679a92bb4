"""API key and password hashing, and masking of personal data for logs."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

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


def normalise_username(username: str) -> str:
    """The one form of a username for lookups and sign-in limits: NFKC, trimmed, casefolded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored argon2 hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


def verify_dummy_password(password: str) -> None:
    """Spend the same argon2 work as a real check, for a name that has no account (no timing oracle)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    verify_password(_dummy_hash, password)


def secrets_equal(expected: str, given: str) -> bool:
    """Constant-time equality of two secrets as UTF-8 bytes (compare_digest on str raises on non-ASCII)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def sign(secret: str, payload: bytes) -> str:
    """Hex HMAC-SHA256 of a payload."""
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


# A mainland mobile (1[3-9] + 9 digits, optionally split 3-4-4 by a space or hyphen), with or
# without a country code written +86, 0086 or 86 (optionally followed by a space or hyphen).
_PHONE_RE = re.compile(r"(?<![0-9])((?:\+|00)?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])")
# `name=value` pairs whose value is a secret: provider callback tokens, signatures, access tokens,
# app secrets, passwords, API keys. Matched anywhere in a line (query strings, form bodies, messages).
_SECRET_PARAM_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:access_|callback_|refresh_)?token|signature|msg_signature|secret|corpsecret|appsecret"
    r"|access_key_secret|accesskeysecret|password|passwd|api_key|apikey|key|csrf|echostr|encodingaeskey)"
    r"(=|%3D)([^&\s\"'<>;,]+)"
)
# Our own API keys (gck_<prefix>_<secret>) and bearer credentials, wherever they appear.
_API_KEY_RE = re.compile(r"\b(gck_[0-9a-f]{8})_[A-Za-z0-9_-]+")
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
MASK = "***"


def mask_phone(phone: str) -> str:
    """138****5678 style mask for one phone number."""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * len(digits)


def mask_phones_in_text(text: str) -> str:
    """Mask every mainland mobile number that appears in free text (+86, 0086 and 86 forms too)."""
    return _PHONE_RE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)


def mask_secrets_in_text(text: str) -> str:
    """Mask secret query/form parameters (token=, Signature= ...), API keys and bearer credentials."""
    text = _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _API_KEY_RE.sub(lambda m: f"{m.group(1)}_{MASK}", text)
    return _BEARER_RE.sub(lambda m: f"{m.group(1)}{MASK}", text)


def mask_for_log(text: str) -> str:
    """Everything a log line must not carry: mobiles and secrets."""
    return mask_secrets_in_text(mask_phones_in_text(text))
