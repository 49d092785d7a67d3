"""Replay protection: WeChat's timestamps are current Unix time, so a window and a nonce cache
stop a captured request from being played again.

A nonce seen again with the *same* body is WeChat retrying a push it got no answer for; it is
let through to the dedup ledger (which never runs the handler twice). A nonce seen again with a
different body is a replay or forgery and is refused.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from enum import Enum

from bot.storage.base import Storage, StorageUnavailable

_MAX_DIGITS = 20  # far beyond any Unix time, far below a float's range


class ReplayVerdict(Enum):
    """The outcome of a replay check."""

    FRESH = "fresh"
    RETRY = "retry"  # same nonce, same body: WeChat trying again
    STALE = "stale"  # timestamp outside the window
    REPLAYED = "replayed"  # nonce reused for another body


class ReplayGuard:
    """Checks the timestamp window and remembers nonces for twice the window."""

    def __init__(
        self,
        storage: Storage,
        *,
        window: float,
        check_nonce: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._window = window
        self._check_nonce = check_nonce
        self._clock = clock
        self._ttl = max(2 * window, 60.0)
        # A purely local store's table answers at once: `check_now` needs no coroutine.
        self._local = storage.local_table

    @property
    def nonce_ttl(self) -> float:
        """How long a nonce is remembered (twice the window, at least a minute)."""
        return self._ttl

    def stale(self, timestamp: str) -> bool:
        """True when the timestamp is outside the window (or not a timestamp at all)."""
        return self._stale(timestamp)

    def nonce_claim(self, nonce: str, body: bytes) -> tuple[str | None, bytes]:
        """The key and value that remember this nonce for this body in a shared store, for a
        claim made with others in one round trip (`Storage.claim_pushes`); (None, b"") when
        nonces are not checked."""
        if not self._check_nonce:
            return None, b""
        return _key(nonce), _digest(body)

    @property
    def local(self) -> bool:
        """True when `check_now` can be used (the nonces are in this process)."""
        return self._local is not None or not self._check_nonce

    def _stale(self, timestamp: str) -> bool:
        if self._window <= 0:
            return False
        # WeChat sends ASCII digits; int() would also take signs, spaces, "_", other scripts'
        # digits, and numbers too large to subtract from a float clock (OverflowError).
        if not (len(timestamp) <= _MAX_DIGITS and timestamp.isascii() and timestamp.isdigit()):
            return True
        return abs(self._clock() - int(timestamp)) > self._window

    def check_now(self, timestamp: str, nonce: str, body: bytes) -> ReplayVerdict:
        """`check` for a local guard (`local` is True), without a coroutine."""
        if self._stale(timestamp):
            return ReplayVerdict.STALE
        return self.nonce_now(nonce, body)

    def nonce_now(self, nonce: str, body: bytes) -> ReplayVerdict:
        """The nonce part of `check_now` alone (the window was checked before: `stale`)."""
        if not self._check_nonce:
            return ReplayVerdict.FRESH
        table = self._local
        assert table is not None
        digest, key = _digest(body), _key(nonce)
        if table.add_now(key, digest, self._ttl):
            return ReplayVerdict.FRESH
        return self._judge(digest, table.get_now(key))

    async def check(self, timestamp: str, nonce: str, body: bytes) -> ReplayVerdict:
        """Classify one signed request (call after the signature holds)."""
        if self.local:
            return self.check_now(timestamp, nonce, body)
        settled = self._settled_without_nonce(timestamp)
        if settled is not None:
            return settled
        digest, key = _digest(body), _key(nonce)
        try:
            if await self._storage.add(key, digest, self._ttl):
                return ReplayVerdict.FRESH
            seen = await self._storage.get(key)
        except StorageUnavailable:
            return ReplayVerdict.FRESH  # the fallback store answers; this only happens mid-failover
        return self._judge(digest, seen)

    def _settled_without_nonce(self, timestamp: str) -> ReplayVerdict | None:
        if self._stale(timestamp):
            return ReplayVerdict.STALE
        if not self._check_nonce:
            return ReplayVerdict.FRESH
        return None

    @staticmethod
    def _judge(digest: bytes, seen: bytes | None) -> ReplayVerdict:
        if seen is None or seen == digest:
            return ReplayVerdict.RETRY
        return ReplayVerdict.REPLAYED


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


def _key(nonce: str) -> str:
    return f"nonce:{nonce}"
