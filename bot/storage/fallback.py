"""Keep serving when the shared store goes away: fall back to a local table, then recover."""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, TypeVar

from bot.storage.base import ClaimTerms, PushClaim, PushClaimed, Storage, StorageUnavailable
from bot.storage.memory import MemoryStorage

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Skipped(enum.Enum):
    # The primary was not used: down and not due for a probe, or the call failed.
    SKIPPED = enum.auto()


_SKIPPED = _Skipped.SKIPPED


class FallbackStorage:
    """`primary` (Redis) while it answers, the local `fallback` table while it does not.

    Ephemeral calls never fail: when the primary raises StorageUnavailable it is marked
    down and the call is answered from the fallback. While down, the primary is skipped
    and probed again once every `retry_interval` seconds by a single call, so the store
    recovers by itself. Writes that succeed on the primary are mirrored into the
    fallback, so an outage starts from a warm local table (recent dedup keys, the
    cached token, records read lately).

    Durable records: reads while down return the local copy (or {}); writes while down
    raise StorageUnavailable, because a preference that was not stored must be told to
    the follower rather than silently kept in one process.

    A warning is logged at most once per `log_interval` while down, an info line on
    recovery. `ping` probes the primary and never raises: check `degraded`.
    """

    def __init__(
        self,
        primary: Storage,
        fallback: MemoryStorage,
        *,
        retry_interval: float = 1.0,
        log_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap `primary`; `clock` (seconds) is injectable for tests."""
        self._primary = primary
        self._fallback = fallback
        self._retry_interval = retry_interval
        self._log_interval = log_interval
        self._clock = clock
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._last_warning: float | None = None
        self._last_error = ""

    @property
    def degraded(self) -> bool:
        """True while the primary is considered down and calls are served locally."""
        return self._down_since is not None

    @property
    def local_table(self) -> None:
        """None: the keys live in the primary (the local table only stands in for it)."""
        return None

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        """None: the primary holds the records (the local copy may be stale)."""
        return None

    async def get(self, key: str) -> bytes | None:
        """The value of an ephemeral key, or None when absent or expired."""
        value = await self._on_primary(lambda: self._primary.get(key))
        if value is _SKIPPED:
            return await self._fallback.get(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store an ephemeral key for `ttl` seconds, replacing any value."""
        await self._on_primary(lambda: self._primary.set(key, value, ttl))
        # Served locally, or mirrored for the next outage.
        await self._fallback.set(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store the key only if absent; True when this call stored it."""
        stored = await self._on_primary(lambda: self._primary.add(key, value, ttl))
        if stored is _SKIPPED:
            return await self._fallback.add(key, value, ttl)
        if stored:
            await self._fallback.set(key, value, ttl)
        return stored

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Store several ephemeral keys for `ttl` seconds each, in one round trip; while the
        primary is down, in the local table.

        Unlike `set`, what the primary stored is not mirrored locally: these are answers
        published for other instances (this one's ledger holds its own), possibly many and
        large, and the local table is bounded by count, not by size.
        """
        done = await self._on_primary(lambda: self._primary.set_many(items, ttl))
        if done is _SKIPPED:
            await self._fallback.set_many(items, ttl)

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        """Store `writes`, then carry out each claim in order, in one round trip; locally
        while the primary is down.

        Answered by the primary, the nonces and the records are mirrored into the local table
        (the dedup keys and the writes need not be: this instance's reply ledger holds its own
        messages and answers).
        """
        claimed = await self._on_primary(lambda: self._primary.claim_pushes(claims, terms, writes))
        local = self._fallback
        if claimed is _SKIPPED:
            return await local.claim_pushes(claims, terms, writes)
        nonce_ttl = terms.nonce_ttl
        for claim, outcome in zip(claims, claimed, strict=True):
            if outcome.replayed:
                continue
            if claim.nonce_key is not None:
                local.add_now(claim.nonce_key, claim.digest, nonce_ttl)
            local.put_record(claim.record, outcome.record)
        return claimed

    async def delete(self, key: str) -> None:
        """Remove an ephemeral key (no error when absent)."""
        await self._on_primary(lambda: self._primary.delete(key))
        await self._fallback.delete(key)

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Remove the key only while it still holds `value` (releasing a lock)."""
        deleted = await self._on_primary(lambda: self._primary.delete_if_equals(key, value))
        deleted_locally = await self._fallback.delete_if_equals(key, value)
        return deleted_locally if deleted is _SKIPPED else deleted

    async def get_record(self, name: str) -> dict[str, str]:
        """All fields of a durable record; the local copy (or {}) while down."""
        record = await self._on_primary(lambda: self._primary.get_record(name))
        if record is _SKIPPED:
            return await self._fallback.get_record(name)
        self._fallback.put_record(name, record)
        return record

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """Set one field of a durable record; StorageUnavailable while down."""
        done = await self._on_primary(lambda: self._primary.set_record_field(name, field, value))
        self._require_primary(done)
        await self._fallback.set_record_field(name, field, value)

    async def delete_record_field(self, name: str, field: str) -> None:
        """Remove one field of a durable record; StorageUnavailable while down."""
        done = await self._on_primary(lambda: self._primary.delete_record_field(name, field))
        self._require_primary(done)
        await self._fallback.delete_record_field(name, field)

    async def delete_record(self, name: str) -> None:
        """Remove a whole durable record; StorageUnavailable while down."""
        done = await self._on_primary(lambda: self._primary.delete_record(name))
        self._require_primary(done)
        await self._fallback.delete_record(name)

    async def announce(self, key: str) -> None:
        """Tell the other processes through the primary; never raises, and a failure does
        not count as the primary being down (the other instances drop every copy when their
        announcements come back, see `listen`)."""
        if self._down_since is not None:
            return
        with contextlib.suppress(StorageUnavailable):
            await self._primary.announce(key)

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        """The primary's announcements."""
        self._primary.listen(on_stale)

    async def ping(self) -> None:
        """Probe the primary now and update `degraded`; never raises (the fallback serves)."""
        try:
            await self._primary.ping()
        except StorageUnavailable as exc:
            self._primary_failed(exc)
            self._warn_serving_locally()
        else:
            self._primary_answered()

    async def close(self) -> None:
        """Close the primary and the fallback."""
        try:
            await self._primary.close()
        finally:
            await self._fallback.close()

    async def _on_primary(
        self, call: Callable[[], Awaitable[_T]]
    ) -> _T | Literal[_Skipped.SKIPPED]:
        """The primary's answer, or _SKIPPED when the caller must use the fallback."""
        if self._down_since is not None:
            now = self._clock()
            if now < self._next_probe:
                self._warn_serving_locally()
                return _SKIPPED
            # This call is the probe; others keep using the fallback meanwhile.
            self._next_probe = now + self._retry_interval
        try:
            result = await call()
        except StorageUnavailable as exc:
            self._primary_failed(exc)
            self._warn_serving_locally()
            return _SKIPPED
        if self._down_since is not None:
            self._primary_answered()
        return result

    def _require_primary(self, done: object) -> None:
        if done is _SKIPPED:
            raise StorageUnavailable(
                "redis unavailable: the record change was not stored (retry later)"
            )

    def _primary_failed(self, exc: StorageUnavailable) -> None:
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        self._next_probe = now + self._retry_interval
        self._last_error = str(exc)

    def _primary_answered(self) -> None:
        if self._down_since is None:
            return
        logger.info(
            "redis available again after %.1f s, serving from redis",
            self._clock() - self._down_since,
        )
        self._down_since = None
        self._last_warning = None

    def _warn_serving_locally(self) -> None:
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self._log_interval:
            return
        self._last_warning = now
        logger.warning("redis unavailable, serving from the local fallback (%s)", self._last_error)
