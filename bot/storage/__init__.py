"""Storage backends and `open_storage`, which picks one from the configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.storage.base import Storage, StorageUnavailable
from bot.storage.embedded import EmbeddedStorage
from bot.storage.fallback import FallbackStorage
from bot.storage.memory import MemoryStorage
from bot.storage.redis import RedisStorage, masked_url
from bot.storage.sqlite import SQLiteRecords

__all__ = [
    "EmbeddedStorage",
    "FallbackStorage",
    "MemoryStorage",
    "RedisStorage",
    "SQLiteRecords",
    "Storage",
    "StorageUnavailable",
    "masked_url",
    "open_storage",
]


async def open_storage(
    *,
    redis_url: str | None,
    namespace: str,
    data_dir: Path,
    max_entries: int,
    timeout: float,  # noqa: ASYNC109 - per-call Redis timeout, not a deadline for this call
    observe: Callable[[str], None] | None = None,
) -> Storage:
    """The store for this process.

    Without `redis_url`: `EmbeddedStorage` in `data_dir`. With it: Redis, which must
    answer now (StorageUnavailable otherwise, so start-up can refuse to start), behind
    a `FallbackStorage` so a Redis lost later does not stop the bot. `observe` is told the
    name of every Redis round trip (metrics).
    """
    if not redis_url:
        return EmbeddedStorage(data_dir, max_entries)
    primary = await RedisStorage.connect(redis_url, namespace, timeout=timeout, observe=observe)
    return FallbackStorage(primary, MemoryStorage(max_entries))
