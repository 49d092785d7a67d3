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

from collections.abc import Mapping
from typing import Protocol


class StorageUnavailable(Exception):
    """The store could not carry out a call (e.g. Redis is unreachable)."""


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

    async def ping(self) -> None:
        """Raise StorageUnavailable when the store cannot be reached."""

    async def close(self) -> None:
        """Release connections and files."""
