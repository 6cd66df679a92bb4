"""WeChat callbacks in encrypted (安全) mode: `msg_signature` over the ciphertext, AES-256-CBC body.

Facts from WeChat's "消息加解密技术方案" (developers.weixin.qq.com, Third-party_Platforms
Technical_Plan; the official account's message encryption page says the same) and
/work/shared/PROVIDERS.md:
- the push URL carries `encrypt_type=aes`, `timestamp`, `nonce` and `msg_signature`, which is the
  hex SHA-1 of the sorted concatenation of token, timestamp, nonce and the `<Encrypt>` text;
- AESKey = Base64_Decode(EncodingAESKey + "="): 43 characters give 32 bytes; AES in CBC mode with
  the key's first 16 bytes as IV; PKCS#7 padding to a multiple of 32 bytes (K = 32, not AES's 16);
- plaintext = 16 random bytes + 4-byte big-endian length of msg + msg (the XML) + the appid.
The cipher itself is the `cryptography` package's AES; only the framing is ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import xml.etree.ElementTree as ET  # noqa: S405 - DOCTYPE/ENTITY refused before parsing
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32-byte multiples (its K), which is also a multiple of AES's 16


class WechatCryptoError(ValueError):
    """A body that does not decrypt to a message for this account."""


def message_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Hex SHA-1 of the sorted token, timestamp, nonce and ciphertext (`msg_signature`)."""
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode("utf-8"), usedforsecurity=False).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures as bytes (never raises on non-ASCII input)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise WechatCryptoError("EncodingAESKey must have 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise WechatCryptoError("EncodingAESKey is not Base64") from exc
    if len(key) != 32:
        raise WechatCryptoError("EncodingAESKey must decode to 32 bytes")
    return key


def _pad(data: bytes) -> bytes:
    size = BLOCK - len(data) % BLOCK
    return data + bytes([size]) * size


def _unpad(data: bytes) -> bytes:
    if not data:
        raise WechatCryptoError("empty plaintext")
    size = data[-1]
    if not 1 <= size <= BLOCK or data[-size:] != bytes([size]) * size:
        raise WechatCryptoError("bad padding")
    return data[:-size]


@dataclass(frozen=True)
class WechatCipher:
    """Encrypts and decrypts one account's pushes."""

    encoding_aes_key: str
    appid: str

    def _cipher(self) -> Cipher[modes.CBC]:
        key = aes_key(self.encoding_aes_key)
        return Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def encrypt(self, message: str, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of a message XML (what the `<Encrypt>` element carries)."""
        body = message.encode("utf-8")
        prefix = random_prefix if random_prefix is not None else secrets.token_bytes(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self.appid.encode("utf-8")
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(_pad(plain)) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The message XML inside a ciphertext; raises WechatCryptoError when it is not for this appid."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WechatCryptoError("ciphertext is not Base64") from exc
        if not data or len(data) % 16:
            raise WechatCryptoError("ciphertext length is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        plain = _unpad(decryptor.update(data) + decryptor.finalize())
        if len(plain) < 20:
            raise WechatCryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, appid = plain[20 : 20 + length], plain[20 + length :]
        if len(body) != length:
            raise WechatCryptoError("message length does not match")
        if not hmac.compare_digest(appid, self.appid.encode("utf-8")):
            raise WechatCryptoError("message is for another appid")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WechatCryptoError("message is not UTF-8") from exc


def encrypted_element(body: bytes | str) -> str:
    """The `<Encrypt>` text of an encrypted push; raises WechatCryptoError when there is none."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise WechatCryptoError("DOCTYPE and entities are not accepted")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD, see above
    except ET.ParseError as exc:
        raise WechatCryptoError("not well-formed XML") from exc
    element = root.find("Encrypt") if root.tag == "xml" else None
    if element is None or not (element.text or "").strip():
        raise WechatCryptoError("no <Encrypt> element")
    return (element.text or "").strip()


def encrypted_push(
    cipher: WechatCipher, token: str, message_xml: str, to_user: str, timestamp: str, nonce: str
) -> tuple[str, str]:
    """An encrypted push as WeChat sends it: (body XML, msg_signature for the URL)."""
    encrypted = cipher.encrypt(message_xml)
    body = f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return body, message_signature(token, timestamp, nonce, encrypted)
