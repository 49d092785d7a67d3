"""Replay protection: the timestamp window and the nonce cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import odd_timestamps

from bot.storage.base import StorageUnavailable
from bot.storage.embedded import EmbeddedStorage
from bot.storage.memory import MemoryStorage
from bot.webhook.replay import ReplayGuard, ReplayVerdict

NOW = 1_700_000_000
BODY = b"<xml><MsgId>1</MsgId></xml>"


class Clock:
    """A clock that tests move by hand (wall time for the guard, monotonic for the store)."""

    def __init__(self, now: float = float(NOW)) -> None:  # a float, as time.time() gives
        self.now = now

    def __call__(self) -> float:
        return self.now


class DownStorage(MemoryStorage):
    """A store that cannot be reached."""

    @property
    def local_table(self) -> None:
        """None, as a shared store: every check reaches the calls below."""
        return None

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        raise StorageUnavailable("down")

    async def get(self, key: str) -> bytes | None:
        raise StorageUnavailable("down")


def guard(
    window: float = 300.0, check_nonce: bool = True, storage: MemoryStorage | None = None
) -> ReplayGuard:
    """A guard at NOW over a fresh memory store."""
    store = storage if storage is not None else MemoryStorage()
    return ReplayGuard(store, window=window, check_nonce=check_nonce, clock=Clock())


@pytest.mark.parametrize("offset", [0, 300, -300, 299, -1])
async def test_timestamp_inside_the_window_is_fresh(offset: int) -> None:
    assert await guard().check(str(NOW + offset), "n1", BODY) is ReplayVerdict.FRESH


@pytest.mark.parametrize("offset", [301, -301, 100_000, -NOW])
async def test_timestamp_outside_the_window_is_stale(offset: int) -> None:
    assert await guard().check(str(NOW + offset), "n1", BODY) is ReplayVerdict.STALE


@pytest.mark.parametrize("timestamp", ["", "abc", "1.7e9", "17000000OO", "9" * 5000])
async def test_non_numeric_timestamp_is_stale(timestamp: str) -> None:
    assert await guard().check(timestamp, "n1", BODY) is ReplayVerdict.STALE


@pytest.mark.parametrize("timestamp", [*odd_timestamps(NOW), "1" + "0" * 308, ""])
async def test_a_timestamp_that_is_not_plain_digits_is_stale(timestamp: str) -> None:
    local, shared = guard(), guard(storage=DownStorage())
    assert local.check_now(timestamp, "n1", BODY) is ReplayVerdict.STALE
    assert await local.check(timestamp, "n1", BODY) is ReplayVerdict.STALE
    assert await shared.check(timestamp, "n1", BODY) is ReplayVerdict.STALE


async def test_stale_request_does_not_use_up_its_nonce() -> None:
    checker = guard()
    assert await checker.check(str(NOW - 1000), "n1", BODY) is ReplayVerdict.STALE
    assert await checker.check(str(NOW), "n1", b"other") is ReplayVerdict.FRESH


@pytest.mark.parametrize("timestamp", ["0", "abc", str(NOW + 10**6)])
async def test_window_zero_disables_the_timestamp_check(timestamp: str) -> None:
    assert await guard(window=0).check(timestamp, "n1", BODY) is ReplayVerdict.FRESH


async def test_same_nonce_same_body_is_a_retry() -> None:
    checker = guard()
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.RETRY
    assert await checker.check(str(NOW + 5), "n1", BODY) is ReplayVerdict.RETRY


async def test_same_nonce_other_body_is_replayed() -> None:
    checker = guard()
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    assert await checker.check(str(NOW), "n1", BODY + b" ") is ReplayVerdict.REPLAYED
    # the first body is still the one remembered
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.RETRY


async def test_other_nonces_are_fresh() -> None:
    checker = guard()
    verdicts = [await checker.check(str(NOW), f"n{i}", BODY) for i in range(5)]
    assert verdicts == [ReplayVerdict.FRESH] * 5


async def test_check_nonce_off_is_always_fresh() -> None:
    storage = MemoryStorage()
    checker = guard(check_nonce=False, storage=storage)
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    assert await checker.check(str(NOW), "n1", b"other") is ReplayVerdict.FRESH
    assert len(storage) == 0


async def test_nonce_is_remembered_for_twice_the_window() -> None:
    store_clock = Clock(0.0)
    storage = MemoryStorage(clock=store_clock)
    checker = guard(window=300.0, storage=storage)
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    store_clock.now = 599.0
    assert await checker.check(str(NOW), "n1", b"other") is ReplayVerdict.REPLAYED
    store_clock.now = 600.0
    assert await checker.check(str(NOW), "n1", b"other") is ReplayVerdict.FRESH


async def test_nonce_is_remembered_a_minute_at_least() -> None:
    store_clock = Clock(0.0)
    storage = MemoryStorage(clock=store_clock)
    checker = guard(window=0, storage=storage)
    assert await checker.check("x", "n1", BODY) is ReplayVerdict.FRESH
    store_clock.now = 59.0
    assert await checker.check("x", "n1", b"other") is ReplayVerdict.REPLAYED
    store_clock.now = 60.0
    assert await checker.check("x", "n1", b"other") is ReplayVerdict.FRESH


async def test_nonce_keys_are_namespaced() -> None:
    storage = MemoryStorage()
    await guard(storage=storage).check(str(NOW), "abc", BODY)
    assert await storage.get("nonce:abc") is not None
    assert await storage.get("abc") is None


async def test_storage_unavailable_is_fresh() -> None:
    checker = guard(storage=DownStorage())
    assert await checker.check(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    assert await checker.check(str(NOW), "n1", b"other") is ReplayVerdict.FRESH


async def test_storage_unavailable_still_applies_the_window() -> None:
    checker = guard(storage=DownStorage())
    assert await checker.check(str(NOW + 301), "n1", BODY) is ReplayVerdict.STALE


async def test_the_local_guard_answers_at_once_like_check() -> None:
    """`check_now` (no coroutine, a plain in-process table) agrees with `check`."""
    checker = guard()
    assert checker.local
    assert checker.check_now(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    assert checker.check_now(str(NOW), "n1", BODY) is ReplayVerdict.RETRY
    assert await checker.check(str(NOW), "n1", BODY + b" ") is ReplayVerdict.REPLAYED
    assert checker.check_now(str(NOW), "n1", BODY + b" ") is ReplayVerdict.REPLAYED
    assert checker.check_now(str(NOW + 1000), "n2", BODY) is ReplayVerdict.STALE
    assert checker.check_now("abc", "n2", BODY) is ReplayVerdict.STALE
    assert guard(check_nonce=False).check_now(str(NOW), "n1", BODY) is ReplayVerdict.FRESH


def test_a_shared_store_is_not_local() -> None:
    assert not guard(storage=DownStorage()).local


async def test_a_guard_is_local_over_any_purely_local_store(tmp_path: Path) -> None:
    embedded = EmbeddedStorage(tmp_path)
    checker = ReplayGuard(embedded, window=300.0, check_nonce=True, clock=Clock())
    assert checker.local
    assert checker.check_now(str(NOW), "n1", BODY) is ReplayVerdict.FRESH
    assert await embedded.get("nonce:n1") is not None  # in the store's own table
    await embedded.close()
