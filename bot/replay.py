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

    async def check(self, timestamp: str, nonce: str, body: bytes) -> ReplayVerdict:
        """Classify one signed request (call after the signature holds)."""
        if self._window > 0:
            try:
                sent = int(timestamp)
            except ValueError:
                return ReplayVerdict.STALE
            if abs(self._clock() - sent) > self._window:
                return ReplayVerdict.STALE
        if not self._check_nonce:
            return ReplayVerdict.FRESH
        digest = hashlib.blake2b(body, digest_size=16).digest()
        key = f"nonce:{nonce}"
        ttl = max(2 * self._window, 60.0)
        try:
            if await self._storage.add(key, digest, ttl):
                return ReplayVerdict.FRESH
            seen = await self._storage.get(key)
        except StorageUnavailable:
            return ReplayVerdict.FRESH  # the fallback store answers; this only happens mid-failover
        if seen is None or seen == digest:
            return ReplayVerdict.RETRY
        return ReplayVerdict.REPLAYED
