"""WeChat encrypted (安全) mode framing, checked against OpenSSL's AES as an independent implementation."""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess

import pytest

from channels.wechat_crypto import (
    WechatCipher,
    WechatCryptoError,
    aes_key,
    encrypted_element,
    encrypted_push,
    message_signature,
)

ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues
APPID = "wxb11529c136998cb6"
XML = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content><![CDATA[你好 world]]></Content></xml>"


def openssl_encrypt(plain: bytes, key: bytes) -> bytes:
    """AES-256-CBC without OpenSSL's own padding; IV = the key's first 16 bytes."""
    result = subprocess.run(  # noqa: S603
        ["/usr/bin/openssl", "enc", "-aes-256-cbc", "-nopad", "-K", key.hex(), "-iv", key[:16].hex()],
        input=plain,
        capture_output=True,
        check=True,
    )
    return result.stdout


def test_key_is_the_base64_of_the_43_characters() -> None:
    assert aes_key(ENCODING_AES_KEY) == base64.b64decode(ENCODING_AES_KEY + "=")
    assert len(aes_key(ENCODING_AES_KEY)) == 32
    with pytest.raises(WechatCryptoError):
        aes_key("short")


def test_decrypts_what_openssl_encrypted_with_wechat_framing() -> None:
    body = XML.encode()
    plain = b"R" * 16 + struct.pack(">I", len(body)) + body + APPID.encode()
    pad = 32 - len(plain) % 32  # PKCS#7 to 32-byte blocks
    ciphertext = openssl_encrypt(plain + bytes([pad]) * pad, aes_key(ENCODING_AES_KEY))
    assert WechatCipher(ENCODING_AES_KEY, APPID).decrypt(base64.b64encode(ciphertext).decode()) == XML


def test_our_ciphertext_matches_openssl_for_the_same_random_prefix() -> None:
    ours = WechatCipher(ENCODING_AES_KEY, APPID).encrypt(XML, random_prefix=b"0123456789abcdef")
    body = XML.encode()
    plain = b"0123456789abcdef" + struct.pack(">I", len(body)) + body + APPID.encode()
    pad = 32 - len(plain) % 32
    assert base64.b64decode(ours) == openssl_encrypt(plain + bytes([pad]) * pad, aes_key(ENCODING_AES_KEY))


def test_other_appid_and_tampering_are_refused() -> None:
    encrypted = WechatCipher(ENCODING_AES_KEY, APPID).encrypt(XML)
    with pytest.raises(WechatCryptoError):
        WechatCipher(ENCODING_AES_KEY, "wx-someone-else").decrypt(encrypted)
    raw = bytearray(base64.b64decode(encrypted))
    raw[-1] ^= 0x55
    with pytest.raises(WechatCryptoError):
        WechatCipher(ENCODING_AES_KEY, APPID).decrypt(base64.b64encode(bytes(raw)).decode())
    for bad in ("", "not base64!", base64.b64encode(b"x" * 15).decode()):
        with pytest.raises(WechatCryptoError):
            WechatCipher(ENCODING_AES_KEY, APPID).decrypt(bad)


def test_msg_signature_is_sha1_of_the_sorted_four_values() -> None:
    expected = hashlib.sha1("".join(sorted(["tok", "1409304348", "xxxxxx", "ENC"])).encode()).hexdigest()
    assert message_signature("tok", "1409304348", "xxxxxx", "ENC") == expected


def test_encrypted_push_round_trip() -> None:
    cipher = WechatCipher(ENCODING_AES_KEY, APPID)
    body, signature = encrypted_push(cipher, "tok", XML, "gh_1", "1409304348", "nonce1")
    encrypted = encrypted_element(body)
    assert signature == message_signature("tok", "1409304348", "nonce1", encrypted)
    assert cipher.decrypt(encrypted) == XML
    with pytest.raises(WechatCryptoError):
        encrypted_element('<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>')
