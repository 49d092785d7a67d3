"""Durable records in an SQLite file, read through a bounded in-memory cache."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bot.storage.base import StorageUnavailable

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    name TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, field)
) WITHOUT ROWID
"""
_SELECT = "SELECT field, value FROM records WHERE name = ?"
_UPSERT = (
    "INSERT INTO records (name, field, value) VALUES (?, ?, ?) "
    "ON CONFLICT (name, field) DO UPDATE SET value = excluded.value"
)
_DELETE_FIELD = "DELETE FROM records WHERE name = ? AND field = ?"
_DELETE_RECORD = "DELETE FROM records WHERE name = ?"


class SQLiteRecords:
    """A name -> {field: value} table in an SQLite file (WAL mode).

    Every statement runs on one worker thread, so the event loop never blocks on the
    disk and the connection is only ever used by the thread that opened it. Reads go
    through a bounded LRU cache that writes keep current, so reading a follower's
    preferences is usually no I/O.
    """

    def __init__(self, path: Path, *, cache_size: int = 10_000, busy_timeout: float = 5.0) -> None:
        """Open lazily at `path`; `busy_timeout` bounds waiting on another writer's lock."""
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._cache_size = max(cache_size, 0)
        self._cache: OrderedDict[str, dict[str, str]] = OrderedDict()
        # Bumped by every write, so a read that raced a write is not cached.
        self._writes = 0
        self._closed = False
        self._conn: sqlite3.Connection | None = None  # only used on the worker thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wechat-bot-sqlite")

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        """The record when it is in the cache (read-only), else None: no coroutine, no copy."""
        cached = self._cache.get(name)
        if cached is not None:
            self._cache.move_to_end(name)
        return cached

    async def get_record(self, name: str) -> dict[str, str]:
        """All fields of a record ({} when there is none)."""
        cached = self._cache.get(name)
        if cached is not None:
            self._cache.move_to_end(name)
            return dict(cached)
        writes = self._writes
        record = await self._run(self._read, name)
        if writes == self._writes:
            self._remember(name, record)
        return dict(record)

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        """Set one field of a record."""
        await self._write(name, _UPSERT, (name, field, value))

    async def delete_record_field(self, name: str, field: str) -> None:
        """Remove one field of a record."""
        await self._write(name, _DELETE_FIELD, (name, field))

    async def delete_record(self, name: str) -> None:
        """Remove a whole record."""
        await self._write(name, _DELETE_RECORD, (name,))

    async def ping(self) -> None:
        """Raise StorageUnavailable when the file cannot be opened or read."""
        await self._run(self._ping)

    async def close(self) -> None:
        """Close the connection and stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._cache.clear()
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    async def _write(self, name: str, sql: str, params: tuple[str, ...]) -> None:
        # Forget the cached copy first: if this call is cancelled after the thread commits,
        # the next read goes to the file instead of serving a stale copy.
        self._cache.pop(name, None)
        self._writes += 1
        writes = self._writes
        record = await self._run(self._execute_and_read, name, sql, params)
        if writes == self._writes:
            self._remember(name, record)

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise StorageUnavailable(f"sqlite records at {self._path} are closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise StorageUnavailable(f"sqlite records at {self._path}: {exc}") from exc

    def _remember(self, name: str, record: dict[str, str]) -> None:
        if self._cache_size == 0:
            return
        self._cache[name] = record
        self._cache.move_to_end(name)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # The methods below run on the worker thread only.

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: commits survive a process crash; power loss may drop the last.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _read(self, name: str) -> dict[str, str]:
        rows = self._connection().execute(_SELECT, (name,)).fetchall()
        return {str(field): str(value) for field, value in rows}

    def _execute_and_read(self, name: str, sql: str, params: tuple[str, ...]) -> dict[str, str]:
        # Autocommit mode: the single statement is its own transaction.
        self._connection().execute(sql, params)
        return self._read(name)

    def _ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
