"""The in-process store: a bounded LRU of ephemeral keys with per-key deadlines."""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from types import MappingProxyType

from bot.storage.base import REPLAYED, ClaimTerms, LocalTable, PushClaim, PushClaimed

# How many of the least-recently-used entries to look at for an expired one before evicting.
_EXPIRED_SCAN = 8
# How long after a scan that found no expired entry the next one waits (seconds).
_SCAN_PAUSE = 1.0

_NO_RECORD: Mapping[str, str] = MappingProxyType({})


class MemoryStorage:
    """Ephemeral keys in a bounded LRU table; durable records in a bounded dict.

    This is on the hot path of every request (dedup and nonces), so each call is a few
    dict operations and no locks: the bot runs on a single event loop. Records live
    here only for tests and as the local copy kept by `FallbackStorage`; they are lost
    on restart.
    """

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Keep at most `max_entries` keys (and as many records); `clock` gives seconds."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        # key -> (value, deadline on `clock`); order is least- to most-recently used.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._records: dict[str, dict[str, str]] = {}
        self._next_scan = 0.0  # on `clock`: when evictions look for an expired entry again

    def __len__(self) -> int:
        """The number of ephemeral entries held (expired ones not yet dropped included)."""
        return len(self._entries)

    @property
    def degraded(self) -> bool:
        """Never: nothing here depends on another server."""
        return False

    @property
    def local_table(self) -> LocalTable | None:
        """This table itself: every key lives in this process (a subclass whose calls reach
        elsewhere answers None)."""
        return self

    def cached_record(self, name: str) -> Mapping[str, str]:
        """The record itself (read-only, no copy): every record lives in this process."""
        return self._records.get(name, _NO_RECORD)

    async def get(self, key: str) -> bytes | None:
        """The value of an ephemeral key, or None when absent or expired."""
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        """`get` without a coroutine, for callers on the hot path."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store an ephemeral key for `ttl` seconds, replacing any value."""
        self._store(key, value, self._clock() + ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store the key only if absent; True when this call stored it."""
        return self.add_now(key, value, ttl)

    def add_now(self, key: str, value: bytes, ttl: float) -> bool:
        """`add` without a coroutine, for callers on the hot path."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[1] > now:
            self._entries.move_to_end(key)
            return False
        self._store(key, value, now + ttl)
        return True

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Store several ephemeral keys for `ttl` seconds each."""
        deadline = self._clock() + ttl
        for key, value in items:
            self._store(key, value, deadline)

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        """Store `writes`, then carry out each claim in order (see `PushClaim`)."""
        await self.set_many(writes, terms.dedup_ttl)
        return [self.claim_now(claim, terms) for claim in claims]

    def claim_now(self, claim: PushClaim, terms: ClaimTerms) -> PushClaimed:
        """One claim of `claim_pushes`, answered at once."""
        nonce_key = claim.nonce_key
        nonce_seen = False
        if nonce_key is not None and not self.add_now(nonce_key, claim.digest, terms.nonce_ttl):
            seen = self.get_now(nonce_key)
            if seen is not None and seen != claim.digest:
                return REPLAYED
            nonce_seen = True
        claimed = self.add_now(claim.dedup_key, terms.marker, terms.dedup_ttl)
        found = None if claimed else self.get_now(claim.dedup_key)
        return PushClaimed(nonce_seen, False, claimed, found, self.cached_record(claim.record))

    async def delete(self, key: str) -> None:
        """Remove an ephemeral key (no error when absent)."""
        self._entries.pop(key, None)

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Remove the key only while it still holds `value` (releasing a lock)."""
        entry = self._entries.get(key)
        if entry is None or entry[1] <= self._clock():
            return False
        # Lock tokens are compared in constant time.
        if not hmac.compare_digest(entry[0], value):
            return False
        del self._entries[key]
        return True

    async def get_record(self, name: str) -> dict[str, str]:
        """All fields of a durable record ({} when there is none)."""
        return dict(self._records.get(name, {}))

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """Set one field of a durable record."""
        record = self._records.get(name)
        if record is None:
            record = self._new_record(name)
        record[field] = value

    async def delete_record_field(self, name: str, field: str) -> None:
        """Remove one field of a durable record."""
        record = self._records.get(name)
        if record is not None:
            record.pop(field, None)

    async def delete_record(self, name: str) -> None:
        """Remove a whole durable record."""
        self._records.pop(name, None)

    def put_record(self, name: str, fields: Mapping[str, str]) -> None:
        """Replace a whole record at once (the local copy `FallbackStorage` keeps)."""
        record = self._records.get(name)
        if record is None:
            if not fields:
                return  # nothing to keep: an absent record reads as {} already
            record = self._new_record(name)
        record.clear()
        record.update(fields)

    async def announce(self, key: str) -> None:
        """Nothing to tell: no other process shares this store."""

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        """Never calls `on_stale`: no other process shares this store."""

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Nothing to release: the tables are plain dicts."""

    def _store(self, key: str, value: bytes, deadline: float) -> None:
        entries = self._entries
        entries[key] = (value, deadline)
        entries.move_to_end(key)
        if len(entries) > self._max_entries:
            self._evict_one()

    def _evict_one(self) -> None:
        now = self._clock()
        victim = None
        # Prefer an expired entry among the oldest few; a full scan would make writes O(n).
        # A scan that finds none is not repeated for a second: in a full table of live keys
        # (nonces under load) it would cost every write and find nothing.
        if now >= self._next_scan:
            for key in islice(self._entries, _EXPIRED_SCAN):
                if self._entries[key][1] <= now:
                    victim = key
                    break
            else:
                self._next_scan = now + _SCAN_PAUSE
        if victim is None:
            self._entries.popitem(last=False)
        else:
            del self._entries[victim]

    def _new_record(self, name: str) -> dict[str, str]:
        if len(self._records) >= self._max_entries:
            # Dicts keep insertion order: drop the oldest record.
            del self._records[next(iter(self._records))]
        record: dict[str, str] = {}
        self._records[name] = record
        return record
