"""The storage interface: one protocol, an embedded and a Redis implementation.

Two kinds of data cross requests:

* *ephemeral* keys with a TTL (access token, token lock, dedup entries and in-flight
  replies, nonces, cached profiles): bounded in memory, expiring in Redis;
* *durable records* (a follower's preferences and handlers' per-follower state): a
  name -> {field: value} mapping with no TTL, kept in SQLite or in a Redis hash.

Every call that may do I/O is a coroutine. Three synchronous members tell what a store can
answer at once, so the hot path skips a coroutine where nothing would be awaited: `degraded`,
`local_table` and `cached_record`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol


class StorageUnavailable(Exception):
    """The store could not carry out a call (e.g. Redis is unreachable)."""


class PushClaim(NamedTuple):
    """What one push needs from the shared state before its handler runs.

    Carried out in order, for a batch of pushes in one round trip (`Storage.claim_pushes`):
    store `digest` under `nonce_key` unless present (a present, different digest is a replay:
    nothing more is done for that push); store the terms' marker under `dedup_key` unless
    present (the caller then owns the message); read the follower's record `record`.
    """

    nonce_key: str | None  # None: nonces are not checked
    digest: bytes
    dedup_key: str
    record: str


class ClaimTerms(NamedTuple):
    """What is the same for every claim of a batch."""

    nonce_ttl: float
    dedup_ttl: float  # also the TTL of the writes sent along (`Storage.claim_pushes`)
    marker: bytes  # the value of a claimed dedup key


class PushClaimed(NamedTuple):
    """The outcome of one `PushClaim`."""

    nonce_seen: bool  # the nonce was stored already, with the same digest (a retry)
    replayed: bool  # the nonce was stored already with another digest (nothing else was done)
    claimed: bool  # the dedup key was stored by this call
    found: bytes | None  # the dedup key's value when it was present
    record: Mapping[str, str]  # the follower's record as it is now ({} for none)


REPLAYED = PushClaimed(True, True, False, None, {})


class LocalTable(Protocol):
    """An in-process table of ephemeral keys, answered synchronously (no coroutine, no I/O)."""

    def get_now(self, key: str) -> bytes | None:
        """`Storage.get`, answered at once."""

    def add_now(self, key: str, value: bytes, ttl: float) -> bool:
        """`Storage.add`, answered at once."""


class Storage(Protocol):
    """What the bot needs from a store; every call is bounded in time."""

    @property
    def degraded(self) -> bool:
        """True while a shared store is away and calls are served from a local fallback."""

    @property
    def local_table(self) -> LocalTable | None:
        """The table of ephemeral keys when the store is purely local (nothing shared with
        other processes), for answers without a coroutine; None when keys may live elsewhere."""

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        """A durable record when this process holds it now (read-only: no copy, no coroutine;
        {} when it is known to be empty), else None: then await `get_record`."""

    async def get(self, key: str) -> bytes | None:
        """The value of an ephemeral key, or None when absent or expired."""

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store an ephemeral key for `ttl` seconds, replacing any value."""

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store the key only if absent; True when this call stored it."""

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Store several ephemeral keys for `ttl` seconds each, in one round trip."""

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        """Store `writes` (each key for `terms.dedup_ttl`), then carry out each claim in order
        (see `PushClaim`): all in one round trip."""

    async def delete(self, key: str) -> None:
        """Remove an ephemeral key (no error when absent)."""

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Remove the key only while it still holds `value` (releasing a lock)."""

    async def get_record(self, name: str) -> dict[str, str]:
        """All fields of a durable record ({} when there is none)."""

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """Set one field of a durable record."""

    async def delete_record_field(self, name: str, field: str) -> None:
        """Remove one field of a durable record."""

    async def delete_record(self, name: str) -> None:
        """Remove a whole durable record."""

    async def announce(self, key: str) -> None:
        """Tell every process sharing the store that copies of `key` they cache are stale."""

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        """Have `on_stale(key)` called for every key announced by any process (this one too),
        and `on_stale(None)` whenever announcements may have been missed: drop every cached
        copy then. A store that nothing else shares never calls it."""

    async def ping(self) -> None:
        """Raise StorageUnavailable when the store cannot be reached."""

    async def close(self) -> None:
        """Release connections and files."""
