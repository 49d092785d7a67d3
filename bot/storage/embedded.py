"""The store used without Redis: ephemeral keys in memory, records in SQLite."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bot.storage.base import ClaimTerms, LocalTable, PushClaim, PushClaimed
from bot.storage.memory import MemoryStorage
from bot.storage.sqlite import SQLiteRecords

DATABASE_NAME = "wechat-bot.sqlite3"


class EmbeddedStorage:
    """`MemoryStorage` for ephemeral keys and `SQLiteRecords` in `data_dir` for records.

    Ephemeral keys do not survive a restart (tokens are fetched again, dedup windows are
    seconds long); records do.
    """

    def __init__(self, data_dir: Path, max_entries: int = 10_000) -> None:
        """Create `data_dir` if missing; the database file is opened on first use."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._memory = MemoryStorage(max_entries)
        self._records = SQLiteRecords(data_dir / DATABASE_NAME, cache_size=max_entries)

    @property
    def database_path(self) -> Path:
        """The SQLite file holding the records."""
        return self._records.path

    def __len__(self) -> int:
        """The number of ephemeral entries held in memory."""
        return len(self._memory)

    @property
    def degraded(self) -> bool:
        """Never: nothing here depends on another server."""
        return False

    @property
    def local_table(self) -> LocalTable:
        """The in-memory table of ephemeral keys: this process is their only holder."""
        return self._memory

    async def get(self, key: str) -> bytes | None:
        """The value of an ephemeral key, or None when absent or expired."""
        return await self._memory.get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store an ephemeral key for `ttl` seconds, replacing any value."""
        await self._memory.set(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store the key only if absent; True when this call stored it."""
        return await self._memory.add(key, value, ttl)

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        """Store several ephemeral keys for `ttl` seconds each."""
        await self._memory.set_many(items, ttl)

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        """Store `writes`, then carry out each claim in order (see `PushClaim`); records come
        from SQLite."""
        claimed = await self._memory.claim_pushes(claims, terms, writes)
        return [
            c if c.replayed else c._replace(record=await self._records.get_record(claim.record))
            for claim, c in zip(claims, claimed, strict=True)
        ]

    async def delete(self, key: str) -> None:
        """Remove an ephemeral key (no error when absent)."""
        await self._memory.delete(key)

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        """Remove the key only while it still holds `value` (releasing a lock)."""
        return await self._memory.delete_if_equals(key, value)

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        """The record when the SQLite file's cache holds it (read-only), else None."""
        return self._records.cached_record(name)

    async def get_record(self, name: str) -> dict[str, str]:
        """All fields of a durable record ({} when there is none)."""
        return await self._records.get_record(name)

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """Set one field of a durable record."""
        await self._records.set_record_field(name, field, value)

    async def delete_record_field(self, name: str, field: str) -> None:
        """Remove one field of a durable record."""
        await self._records.delete_record_field(name, field)

    async def delete_record(self, name: str) -> None:
        """Remove a whole durable record."""
        await self._records.delete_record(name)

    async def announce(self, key: str) -> None:
        """Nothing to tell: no other process shares this store."""

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        """Never calls `on_stale`: no other process shares this store."""

    async def ping(self) -> None:
        """Raise StorageUnavailable when the database file cannot be used."""
        await self._records.ping()

    async def close(self) -> None:
        """Close the database file."""
        await self._records.close()
