"""Safe-mode message encryption: WeChat's AES-256-CBC envelope (platform notes §6).

Plaintext layout: 16 random bytes + 4-byte big-endian message length + message + appid,
PKCS#7-padded to a multiple of 32 bytes; key = b64decode(EncodingAESKey + "="), IV = key[:16].
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import threading
import time
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import (
    AEADDecryptionContext,
    Cipher,
    CipherContext,
    algorithms,
    modes,
)

from bot.wechat.signature import sha1_signature

__all__ = [
    "AppIdMismatch",
    "CryptoError",
    "MessageCrypto",
    "validate_encoding_aes_key",
]

_Context = AEADDecryptionContext | CipherContext
_BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4
_MAX_MESSAGE_LEN = 0xFFFFFFFF
# Every valid padding suffix, built once so unpadding checks allocate nothing
_PADS = tuple(bytes([n]) * n for n in range(_BLOCK + 1))


class _RandomPool:
    """The system's CSPRNG read 4 KiB at a time: a reply needs 24 bytes, not a syscall."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buffer = b""
        self._pos = 0

    def reset(self) -> None:
        """Forget the buffer (a forked child must not reuse its parent's bytes)."""
        self._buffer = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        pos = self._pos
        if pos + n > len(self._buffer):
            self._buffer = secrets.token_bytes(max(self._size, n))
            pos = 0
        self._pos = pos + n
        return self._buffer[pos : pos + n]


_RANDOM = _RandomPool()
os.register_at_fork(after_in_child=_RANDOM.reset)


class CryptoError(Exception):
    """A safe-mode message could not be decrypted; ``reason`` names why, without secrets."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason


class AppIdMismatch(CryptoError):
    """The message decrypted cleanly but was sealed for another appid (the webhook answers 403)."""

    def __init__(self) -> None:
        super().__init__("appid_mismatch", "message is addressed to another appid")


def validate_encoding_aes_key(key: str) -> bytes:
    """Decode a 43-character EncodingAESKey into its 32-byte AES key; ``ValueError`` otherwise."""
    if not isinstance(key, str) or len(key) != 43:
        size = len(key) if isinstance(key, str) else type(key).__name__
        raise ValueError(f"EncodingAESKey must be 43 base64 characters (got {size})")
    try:
        raw = base64.b64decode(key + "=", validate=True)
    except ValueError:  # binascii.Error and non-ASCII text both land here
        # from None: the decoder's context must not carry the key into logs
        raise ValueError("EncodingAESKey must contain only base64 characters") from None
    if len(raw) != 32:  # a trailing "=" in the key decodes to 31 bytes
        raise ValueError("EncodingAESKey must contain only base64 characters (no '=')")
    return raw


class MessageCrypto:
    """Encrypt replies and decrypt pushes for one appid, accepting a previous key after rotation."""

    def __init__(self, encoding_aes_key: str, app_id: str, previous_key: str | None = None) -> None:
        """Prepare the ciphers once; raise ``ValueError`` for a malformed key or an empty appid."""
        if not app_id:
            raise ValueError("app_id must not be empty")
        self._app_id = app_id.encode("utf-8")
        keys = [validate_encoding_aes_key(encoding_aes_key)]
        if previous_key is not None:
            keys.append(validate_encoding_aes_key(previous_key))
        # One CBC context for every reply (whole blocks only, so it never holds bytes back):
        # the chain carries on from the previous reply, which `_seal` undoes (see there).
        self._sealer = Cipher(algorithms.AES(keys[0]), modes.CBC(keys[0][:16])).encryptor()
        self._iv = int.from_bytes(keys[0][:16], "big")
        self._chain_fix = 0  # IV XOR the last ciphertext block the context produced
        self._sealing = threading.Lock()
        # CBC decryption is ECB decryption XOR the previous ciphertext block; ECB keeps no
        # state between blocks, so one context per key serves every message (no set-up each)
        self._openers = tuple(
            (Cipher(algorithms.AES(k), modes.ECB()).decryptor(), k[:16])  # noqa: S305
            for k in keys
        )

    def encrypt(self, message: bytes | str, random16: bytes | None = None) -> str:
        """Seal ``message`` with the current key, return base64; ``random16`` is for tests."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        if random16 is None:
            random16 = _RANDOM.take(_RANDOM_LEN)
        return self._seal(body, random16)

    def _seal(self, body: bytes, random16: bytes) -> str:
        if len(random16) != _RANDOM_LEN:
            raise ValueError("random16 must be exactly 16 bytes")
        if len(body) > _MAX_MESSAGE_LEN:
            raise ValueError("message is too long for the 4-byte length field")
        unpadded = _HEADER_LEN + len(body) + len(self._app_id)
        pad = _PADS[_BLOCK - unpadded % _BLOCK]
        # The first block goes in XOR (IV XOR the chain's last block): the one long-lived CBC
        # context then encrypts exactly as a fresh one started at the IV would.
        with self._sealing:  # the context and the chain are shared: one reply at a time
            first = int.from_bytes(random16, "big") ^ self._chain_fix
            plaintext = b"".join(
                (first.to_bytes(16, "big"), len(body).to_bytes(4, "big"), body, self._app_id, pad)
            )
            sealed = self._sealer.update(plaintext)
            self._chain_fix = self._iv ^ int.from_bytes(sealed[-16:], "big")
        return base64.b64encode(sealed).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        """Open a base64 ``Encrypt`` value with the current key, then the previous one.

        Raises ``AppIdMismatch`` when some key opened it cleanly for another appid, otherwise the
        current key's ``CryptoError``; no other exception escapes.
        """
        try:
            sealed = base64.b64decode(encrypt, validate=True)
        except (ValueError, TypeError):  # binascii.Error, non-ASCII text, or not a string at all
            raise CryptoError("not_base64") from None
        if not sealed or len(sealed) % 16:
            raise CryptoError("bad_length", "ciphertext is empty or not whole AES blocks")
        errors: list[CryptoError] = []
        for opener in self._openers:
            try:
                return self._open(opener, sealed)
            except CryptoError as exc:
                errors.append(exc)
        # A clean open for another appid is the telling failure; else report the current key's
        raise next((e for e in errors if isinstance(e, AppIdMismatch)), errors[0])

    def _open(
        self, opener: tuple[AEADDecryptionContext | CipherContext, bytes], sealed: bytes
    ) -> bytes:
        """Decrypt (CBC) with one key and check padding, length field and appid."""
        ecb, iv = opener
        size = len(sealed)
        if not size or size % 16:  # a partial block would stay in the shared context
            raise CryptoError("bad_length", "ciphertext is empty or not whole AES blocks")
        chained = int.from_bytes(ecb.update(sealed), "big") ^ int.from_bytes(
            iv + sealed[:-16], "big"
        )
        plaintext = chained.to_bytes(size, "big")
        pad = plaintext[-1]
        if not 1 <= pad <= _BLOCK or not plaintext.endswith(_PADS[pad]):
            raise CryptoError("bad_padding", "PKCS#7 padding (32-byte blocks) is invalid")
        content_end = len(plaintext) - pad
        # message_end >= 20, so this also rejects a plaintext too short to hold its header
        message_end = _HEADER_LEN + int.from_bytes(plaintext[_RANDOM_LEN:_HEADER_LEN], "big")
        if message_end > content_end:
            raise CryptoError("bad_length_field", "length field points past the end")
        if not hmac.compare_digest(plaintext[message_end:content_end], self._app_id):
            raise AppIdMismatch()
        return plaintext[_HEADER_LEN:message_end]

    def encrypt_reply(
        self,
        reply_xml: str,
        token: str,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """Wrap a passive reply in the signed safe-mode envelope.

        Do not pass ``success`` or an empty body: the platform wants those unencrypted.
        ``timestamp`` defaults to now, ``nonce`` to a fresh random decimal string.
        """
        # one call to the system's randomness: 16 bytes for the envelope, 8 for the nonce
        random = _RANDOM.take(_RANDOM_LEN + 8)
        ts = str(int(time.time())) if timestamp is None else timestamp
        if nonce is None:
            nonce = f"{int.from_bytes(random[_RANDOM_LEN:], 'big') % 10**10:010d}"
        sealed = self._seal(reply_xml.encode("utf-8"), random[:_RANDOM_LEN])
        signature = sha1_signature(token, ts, nonce, sealed)
        # The caller may echo the request's nonce/timestamp: keep either from breaking the XML
        shown_ts = ts if timestamp is None else escape(ts)
        shown_nonce = nonce.replace("]]>", "]]]]><![CDATA[>")
        return (
            f"<xml><Encrypt><![CDATA[{sealed}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{shown_ts}</TimeStamp>"
            f"<Nonce><![CDATA[{shown_nonce}]]></Nonce></xml>"
        )
