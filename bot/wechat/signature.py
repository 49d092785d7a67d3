"""WeChat request signatures: sha1 over the sorted, concatenated parts (platform notes §6)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["sha1_signature", "verify_msg_signature", "verify_signature"]


def sha1_signature(*parts: str) -> str:
    """Return the lowercase sha1 hex digest of ``''.join(sorted(parts))`` encoded as UTF-8."""
    # surrogatepass: a lone surrogate in a hostile query must not raise; valid text is unchanged
    data = "".join(sorted(parts)).encode("utf-8", "surrogatepass")
    # sha1 is what the platform signs with; it is not our choice to make
    return hashlib.sha1(data).hexdigest()  # noqa: S324


def verify_signature(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    """Check the ``signature`` of a handshake or plaintext push, in constant time."""
    # compare_digest refuses non-ASCII str; such a signature can never match a hex digest anyway
    return signature.isascii() and hmac.compare_digest(
        sha1_signature(token, timestamp, nonce), signature
    )


def verify_msg_signature(
    token: str, timestamp: str, nonce: str, encrypt: str, msg_signature: str
) -> bool:
    """Check a safe-mode push's ``msg_signature`` over its ``Encrypt`` value, in constant time."""
    return msg_signature.isascii() and hmac.compare_digest(
        sha1_signature(token, timestamp, nonce, encrypt), msg_signature
    )
