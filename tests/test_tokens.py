"""AccessTokenCache: single-flight in a process, one refresher across processes, invalidation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence

import pytest

from bot.client.tokens import AccessTokenCache, TokenError
from bot.storage.base import ClaimTerms, PushClaim, PushClaimed, Storage, StorageUnavailable


class DictStorage:
    """A minimal in-test Storage: a dict with TTLs and an operation count."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.data: dict[str, tuple[bytes, float]] = {}
        self.ops = 0
        self.clock = clock

    # What a shared store (Redis) answers without a coroutine: nothing.
    degraded = False
    local_table = None

    def cached_record(self, name: str) -> Mapping[str, str] | None:
        return None

    async def get(self, key: str) -> bytes | None:
        self.ops += 1
        entry = self.data.get(key)
        if entry is None or entry[1] <= self.clock():
            self.data.pop(key, None)
            return None
        return entry[0]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.ops += 1
        self.data[key] = (value, self.clock() + ttl)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        for key, value in items:
            await self.set(key, value, ttl)

    async def claim_pushes(
        self,
        claims: Sequence[PushClaim],
        terms: ClaimTerms,
        writes: Sequence[tuple[str, bytes]] = (),
    ) -> list[PushClaimed]:
        raise AssertionError("the token cache claims no pushes")

    async def delete(self, key: str) -> None:
        self.ops += 1
        self.data.pop(key, None)

    async def delete_if_equals(self, key: str, value: bytes) -> bool:
        if await self.get(key) != value:
            return False
        del self.data[key]
        return True

    async def get_record(self, name: str) -> dict[str, str]:
        return {}

    async def set_record_field(self, name: str, field: str, value: str) -> None:
        pass

    async def delete_record_field(self, name: str, field: str) -> None:
        pass

    async def delete_record(self, name: str) -> None:
        pass

    async def announce(self, key: str) -> None:
        pass

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        pass


class BrokenStorage(DictStorage):
    """A store that is down (Redis unreachable)."""

    async def get(self, key: str) -> bytes | None:
        raise StorageUnavailable("down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StorageUnavailable("down")


class RacingStorage(DictStorage):
    """Another instance stores its token and releases the lock just before we take it."""

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if key == "token-lock:wx1":
            now = self.clock()
            shared = {"token": "t_racer", "refresh_at": now + 6900, "expires_at": now + 7200}
            await self.set("token:wx1", json.dumps(shared).encode(), 7200)
        return await super().add(key, value, ttl)


class Platform:
    """The token endpoint: counts fetches, hands out t1, t2, … (or a scripted answer)."""

    def __init__(self, expires_in: int = 7200, delay: float = 0.01) -> None:
        self.calls: list[bool] = []
        self.expires_in = expires_in
        self.delay = delay
        self.same_unless_forced = False
        self.error: Exception | None = None

    async def fetch(self, force_refresh: bool) -> tuple[str, int]:
        self.calls.append(force_refresh)
        await asyncio.sleep(self.delay)  # let concurrent callers pile up
        if self.error is not None:
            raise self.error
        if self.same_unless_forced and not force_refresh:
            return "t_same", self.expires_in
        return f"t{len(self.calls)}", self.expires_in


class Clock:
    """A wall clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(clock: Clock) -> DictStorage:
    return DictStorage(clock)


@pytest.fixture
def platform() -> Platform:
    return Platform()


def make_cache(
    platform: Platform, storage: Storage, clock: Clock, lock_wait: float = 5.0
) -> AccessTokenCache:
    return AccessTokenCache(platform.fetch, storage, app_id="wx1", clock=clock, lock_wait=lock_wait)


async def test_fifty_concurrent_gets_fetch_once(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    tokens = await asyncio.gather(*(cache.get() for _ in range(50)))
    assert set(tokens) == {"t1"}
    assert platform.calls == [False]
    shared = json.loads(storage.data["token:wx1"][0])
    assert shared["token"] == "t1"
    assert shared["expires_at"] == clock.now + 7200
    assert storage.data["token:wx1"][1] == clock.now + 7200  # the key dies with the token
    assert "token-lock:wx1" not in storage.data  # the lock was released


async def test_fresh_token_does_not_touch_storage(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    await cache.get()
    ops = storage.ops
    clock.now += 6899
    assert await cache.get() == "t1"
    assert storage.ops == ops


async def test_refreshes_before_expiry(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    await cache.get()
    clock.now += 6900  # within the 300 s margin
    assert await cache.get() == "t2"
    assert platform.calls == [False, False]


async def test_short_lived_token_is_used_for_half_its_life(
    storage: DictStorage, clock: Clock
) -> None:
    platform = Platform(expires_in=200)
    cache = make_cache(platform, storage, clock)
    await cache.get()
    clock.now += 99
    assert await cache.get() == "t1"
    clock.now += 1
    assert await cache.get() == "t2"


async def test_two_processes_sharing_storage_fetch_once(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    first, second = make_cache(platform, storage, clock), make_cache(platform, storage, clock)
    tokens = await asyncio.gather(*(c.get() for _ in range(50) for c in (first, second)))
    assert len(tokens) == 100
    assert set(tokens) == {"t1"}
    assert platform.calls == [False]


async def test_second_process_adopts_the_shared_token(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    await make_cache(platform, storage, clock).get()
    clock.now += 1000
    assert await make_cache(platform, storage, clock).get() == "t1"
    assert platform.calls == [False]


async def test_waits_for_the_lock_holder_and_uses_its_token(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    await storage.add("token-lock:wx1", b"other-instance", 60)
    cache = make_cache(platform, storage, clock)
    waiter = asyncio.create_task(cache.get())
    await asyncio.sleep(0.1)
    assert not waiter.done()
    # the other instance stores its token and releases the lock
    value = {"token": "t_other", "refresh_at": clock.now + 6900, "expires_at": clock.now + 7200}
    await storage.set("token:wx1", json.dumps(value).encode(), 7200)
    await storage.delete_if_equals("token-lock:wx1", b"other-instance")
    assert await asyncio.wait_for(waiter, 5) == "t_other"
    assert platform.calls == []


async def test_rechecks_the_shared_key_after_taking_the_lock(
    platform: Platform, clock: Clock
) -> None:
    storage = RacingStorage(clock)
    assert await make_cache(platform, storage, clock).get() == "t_racer"
    assert platform.calls == []
    assert "token-lock:wx1" not in storage.data


async def test_takes_over_when_the_lock_holder_died(platform: Platform, clock: Clock) -> None:
    storage = DictStorage()  # real time: the dead holder's lock expires by itself
    await storage.add("token-lock:wx1", b"dead-instance", 0.2)
    cache = make_cache(platform, storage, clock)
    assert await asyncio.wait_for(cache.get(), 5) == "t1"
    assert platform.calls == [False]


async def test_lock_wait_is_bounded(platform: Platform, storage: DictStorage, clock: Clock) -> None:
    await storage.add("token-lock:wx1", b"stuck-instance", 60)
    cache = make_cache(platform, storage, clock, lock_wait=0.2)
    with pytest.raises(TokenError) as info:
        await asyncio.wait_for(cache.get(), 5)
    assert (info.value.errcode, info.value.transient) == (-2, True)
    assert platform.calls == []


async def test_invalidate_causes_exactly_one_refetch(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    assert await cache.get() == "t1"
    await asyncio.gather(*(cache.invalidate("t1") for _ in range(20)))
    assert "token:wx1" not in storage.data
    tokens = await asyncio.gather(*(cache.get() for _ in range(50)))
    assert set(tokens) == {"t2"}
    assert platform.calls == [False, False]


async def test_invalidating_an_old_token_keeps_the_newer_one(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    await cache.get()
    await cache.invalidate("t1")
    assert await cache.get() == "t2"
    await cache.invalidate("t1")  # a late answer about the old token
    assert json.loads(storage.data["token:wx1"][0])["token"] == "t2"
    assert await cache.get() == "t2"
    assert len(platform.calls) == 2


async def test_a_refused_token_stored_again_by_a_slow_instance_is_not_adopted(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    await cache.get()
    stale = storage.data["token:wx1"]
    await cache.invalidate("t1")
    storage.data["token:wx1"] = stale  # a slow instance writes back the refused token
    assert await cache.get() == "t2"


async def test_same_token_after_invalidate_forces_a_refresh(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    platform.same_unless_forced = True
    cache = make_cache(platform, storage, clock)
    assert await cache.get() == "t_same"
    await cache.invalidate("t_same")
    assert await cache.get() == "t3"
    assert platform.calls == [False, False, True]


async def test_fetch_error_reaches_every_waiter_and_next_get_retries(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    cache = make_cache(platform, storage, clock)
    platform.error = TokenError(40164, "invalid ip 1.2.3.4, not in whitelist")
    results = await asyncio.gather(*(cache.get() for _ in range(20)), return_exceptions=True)
    assert {id(r) for r in results} == {id(platform.error)}
    assert platform.calls == [False]
    assert "token-lock:wx1" not in storage.data
    platform.error = None
    assert await cache.get() == "t2"


async def test_unexpected_fetch_error_becomes_token_error(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    platform.error = RuntimeError("secret=abc leaked in a message")
    cache = make_cache(platform, storage, clock)
    with pytest.raises(TokenError) as info:
        await cache.get()
    assert info.value.errcode == -2
    assert "abc" not in str(info.value)
    assert str(info.value) == "access token: errcode -2: token refresh failed: RuntimeError"


async def test_storage_outage_still_yields_one_fetch(platform: Platform, clock: Clock) -> None:
    cache = make_cache(platform, BrokenStorage(), clock)
    tokens = await asyncio.gather(*(cache.get() for _ in range(30)))
    assert set(tokens) == {"t1"}
    assert platform.calls == [False]
    await cache.invalidate("t1")
    assert await cache.get() == "t2"


async def test_corrupt_shared_entry_counts_as_absent(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    await storage.set("token:wx1", b"not json", 7200)
    assert await make_cache(platform, storage, clock).get() == "t1"


async def test_a_cancelled_caller_does_not_cancel_the_refresh(
    platform: Platform, storage: DictStorage, clock: Clock
) -> None:
    platform.delay = 0.1
    cache = make_cache(platform, storage, clock)
    impatient = asyncio.create_task(cache.get())
    patient = asyncio.create_task(cache.get())
    await asyncio.sleep(0.02)
    impatient.cancel()
    assert await asyncio.wait_for(patient, 5) == "t1"
    assert impatient.cancelled()
    assert platform.calls == [False]
