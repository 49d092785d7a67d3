"""The `state` of a web-authorization link: signed by the bot, bound to an openid, expiring.

`[a-zA-Z0-9]`, at most 128 bytes (the platform's rule); here 74 lowercase hex characters:

    version(1) language(1) expires(8) nonce(16) binding(16) mac(32)

`mac` (HMAC-SHA256, truncated to 128 bits) covers everything before it, so a forged or altered
state is refused before any call to the platform. `binding` is an HMAC of the nonce and the
openid that received the link: the callback compares it, in constant time, with the openid the
platform returns. The openid itself is not in the URL. Single use is the callback's job (it claims
the nonce in the store); this module is pure and never touches storage.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

_VERSION = "1"
_LANGUAGES = ("zh_CN", "zh_TW", "en")
_STATE = re.compile(r"[0-9a-f]{74}")
MAX_STATE_LENGTH = 128
"""The platform's limit; anything longer in a callback is refused without parsing."""


class StateRefused(Exception):
    """A `state` the callback must refuse; `reason` is `forged` or `expired`.

    `language` is the genuine state's language when it merely expired, else None."""

    def __init__(self, reason: str, language: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.language = language


@dataclass(frozen=True, slots=True)
class VerifiedState:
    """A state whose MAC holds and that has not expired."""

    nonce: str
    expires_at: int
    language: str
    binding: str


class StateSigner:
    """Issues and verifies states with a key derived from the account's AppSecret."""

    def __init__(
        self, app_id: str, app_secret: str, ttl: float, clock: Callable[[], float] = time.time
    ) -> None:
        """`ttl`: seconds a state stays valid; `clock` lets tests move time."""
        self._key = hmac.new(
            app_secret.encode(), b"wechat-bot web-authorization state|" + app_id.encode(), "sha256"
        ).digest()
        self._ttl = ttl
        self._clock = clock

    def issue(self, openid: str, language: str) -> str:
        """A fresh state for a link sent to `openid` (whose pages will speak `language`)."""
        lang = str(_LANGUAGES.index(language)) if language in _LANGUAGES else "0"
        expires = int(self._clock() + self._ttl)
        nonce = secrets.token_hex(8)
        body = f"{_VERSION}{lang}{expires:08x}{nonce}{self._binding(nonce, openid)}"
        return body + self._mac(body)

    def verify(self, state: str) -> VerifiedState:
        """The state's fields; raises StateRefused (`forged` or `expired`)."""
        if len(state) > MAX_STATE_LENGTH or not _STATE.fullmatch(state):
            raise StateRefused("forged")
        body, mac = state[:-32], state[-32:]
        if not hmac.compare_digest(mac, self._mac(body)) or body[0] != _VERSION:
            raise StateRefused("forged")
        lang = int(body[1])
        if lang >= len(_LANGUAGES):
            raise StateRefused("forged")
        expires = int(body[2:10], 16)
        if self._clock() >= expires:
            raise StateRefused("expired", _LANGUAGES[lang])
        return VerifiedState(body[10:26], expires, _LANGUAGES[lang], body[26:42])

    def bound_to(self, state: VerifiedState, openid: str) -> bool:
        """Whether `state` was issued for `openid` (constant-time)."""
        return hmac.compare_digest(state.binding, self._binding(state.nonce, openid))

    def _binding(self, nonce: str, openid: str) -> str:
        message = f"bind|{nonce}|{openid}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, b"state|" + body.encode(), hashlib.sha256).hexdigest()[:32]
