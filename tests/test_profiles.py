"""The profile cache: single flight, TTL, size, failures, slow fetches, the shared store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

import pytest

from bot.client.api import UserInfo, WeChatAPI, WeChatAPIError
from bot.client.profiles import ProfileCache
from bot.storage.base import StorageUnavailable
from bot.storage.memory import MemoryStorage

OPENID = "o_profile_test"


class Clock:
    """A monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def profile(openid: str, remark: str = "Wang") -> UserInfo:
    """A profile as `user/info` returns it today."""
    raw = {
        "subscribe": 1,
        "openid": openid,
        "nickname": "",
        "language": "zh_CN",
        "remark": remark,
        "subscribe_time": 1641364601,
        "tagid_list": [2, 7],
    }
    return UserInfo.from_raw(raw)


class StubAPI:
    """`get_user_info` that counts calls, can fail, and can be held until `release()`."""

    def __init__(self, *, gated: bool = False, error: WeChatAPIError | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.error = error
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.returned = asyncio.Event()
        self.cancelled = False

    async def get_user_info(self, openid: str, lang: str = "zh_CN") -> UserInfo:
        self.calls.append((openid, lang))
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        self.returned.set()
        return profile(openid)

    def release(self) -> None:
        """Let held calls answer."""
        self.gate.set()


def cache_for(
    api: StubAPI,
    *,
    size: int = 100,
    ttl: float = 3600.0,
    timeout: float = 1.0,
    shared: MemoryStorage | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ProfileCache:
    """A cache over the stub API."""
    return ProfileCache(
        cast(WeChatAPI, api), size=size, ttl=ttl, timeout=timeout, shared=shared, clock=clock
    )


async def test_get_returns_the_profile_and_passes_the_language() -> None:
    api = StubAPI()
    cache = ProfileCache(cast(WeChatAPI, api), size=10, ttl=60.0, timeout=1.0, lang="en")
    assert await cache.get(OPENID) == profile(OPENID)
    assert api.calls == [(OPENID, "en")]


async def test_twenty_concurrent_gets_make_one_call() -> None:
    api = StubAPI(gated=True)
    cache = cache_for(api)
    gets = [asyncio.create_task(cache.get(OPENID)) for _ in range(20)]
    await asyncio.sleep(0.01)
    api.release()
    results = await asyncio.gather(*gets)
    assert results == [profile(OPENID)] * 20
    assert len(api.calls) == 1


async def test_cached_until_ttl_then_fetched_again() -> None:
    api, clock = StubAPI(), Clock()
    cache = cache_for(api, ttl=60.0, clock=clock)
    await cache.get(OPENID)
    clock.now += 59.9
    await cache.get(OPENID)
    assert len(api.calls) == 1
    clock.now += 0.1
    assert await cache.get(OPENID) == profile(OPENID)
    assert len(api.calls) == 2


async def test_size_bound_drops_the_least_recently_used() -> None:
    api = StubAPI()
    cache = cache_for(api, size=2)
    await cache.get("a")
    await cache.get("b")
    await cache.get("a")  # "a" is now the most recent
    await cache.get("c")
    assert len(cache) == 2
    await cache.get("a")
    await cache.get("c")
    assert [openid for openid, _ in api.calls] == ["a", "b", "c"]
    await cache.get("b")
    assert [openid for openid, _ in api.calls] == ["a", "b", "c", "b"]


async def test_api_error_answers_none_and_is_not_asked_again_for_30_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, clock = StubAPI(error=WeChatAPIError(45009, "api freq out of limit", "user_info")), Clock()
    cache = cache_for(api, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bot.client.profiles"):
        assert await cache.get(OPENID) is None
    assert [r.getMessage() for r in caplog.records] == [
        "user/info failed: errcode=45009 api freq out of limit"
    ]
    clock.now += 29.9
    assert await cache.get(OPENID) is None
    assert len(api.calls) == 1
    clock.now += 0.1
    api.error = None
    assert await cache.get(OPENID) == profile(OPENID)
    assert len(api.calls) == 2


async def test_failure_is_remembered_no_longer_than_the_ttl() -> None:
    api, clock = StubAPI(error=WeChatAPIError(-1, "system busy", "user_info")), Clock()
    cache = cache_for(api, ttl=10.0, clock=clock)
    assert await cache.get(OPENID) is None
    clock.now += 10.0
    api.error = None
    assert await cache.get(OPENID) == profile(OPENID)


async def test_slow_api_answers_none_then_the_background_fetch_fills_the_cache() -> None:
    api = StubAPI(gated=True)
    cache = cache_for(api, timeout=0.05)
    assert await cache.get(OPENID) is None
    assert len(cache) == 0
    api.release()
    await api.returned.wait()
    await asyncio.sleep(0)
    assert len(cache) == 1
    assert await cache.get(OPENID) == profile(OPENID)
    assert len(api.calls) == 1


async def test_second_get_while_slow_fetch_runs_joins_it() -> None:
    api = StubAPI(gated=True)
    cache = cache_for(api, timeout=0.02)
    assert await cache.get(OPENID) is None
    assert await cache.get(OPENID) is None
    assert len(api.calls) == 1
    api.release()
    await api.returned.wait()
    await cache.close()


async def test_shared_store_round_trip() -> None:
    shared = MemoryStorage()
    first_api, second_api = StubAPI(), StubAPI()
    first, second = cache_for(first_api, shared=shared), cache_for(second_api, shared=shared)
    fetched = await first.get(OPENID)
    assert fetched == profile(OPENID)
    from_shared = await second.get(OPENID)
    assert from_shared == fetched
    assert from_shared is not None and dict(from_shared.raw) == dict(fetched.raw)
    assert (len(first_api.calls), len(second_api.calls)) == (1, 0)


async def test_shared_store_with_garbage_falls_back_to_the_api() -> None:
    shared = MemoryStorage()
    await shared.set(f"profile:{OPENID}", b"not json", 60.0)
    api = StubAPI()
    assert await cache_for(api, shared=shared).get(OPENID) == profile(OPENID)
    assert len(api.calls) == 1


class DownStorage(MemoryStorage):
    """A shared store that cannot be reached."""

    async def get(self, key: str) -> bytes | None:
        raise StorageUnavailable("down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StorageUnavailable("down")

    async def delete(self, key: str) -> None:
        raise StorageUnavailable("down")


async def test_shared_store_down_still_answers_from_the_api() -> None:
    api = StubAPI()
    cache = cache_for(api, shared=DownStorage())
    assert await cache.get(OPENID) == profile(OPENID)
    await cache.forget(OPENID)  # no error either
    assert len(cache) == 0


async def test_forget_drops_the_local_and_shared_copies() -> None:
    shared = MemoryStorage()
    api = StubAPI()
    cache = cache_for(api, shared=shared)
    await cache.get(OPENID)
    await cache.get("o_other")
    await cache.forget(OPENID)
    assert len(cache) == 1
    assert await shared.get(f"profile:{OPENID}") is None
    assert await shared.get("profile:o_other") is not None
    await cache.get(OPENID)
    assert [openid for openid, _ in api.calls] == [OPENID, "o_other", OPENID]


async def test_close_cancels_background_fetches() -> None:
    api = StubAPI(gated=True)
    cache = cache_for(api, timeout=0.01)
    assert await cache.get(OPENID) is None
    await cache.close()
    assert api.cancelled is True
    assert len(cache) == 0
    api.release()
    assert await cache.get(OPENID) == profile(OPENID)  # a new fetch after close
    assert len(api.calls) == 2


async def test_close_without_fetches_is_a_no_op() -> None:
    await cache_for(StubAPI()).close()


async def test_forget_during_a_fetch_keeps_the_profile_forgotten() -> None:
    shared = MemoryStorage()
    api = StubAPI(gated=True)
    cache = cache_for(api, timeout=0.01, shared=shared)
    assert await cache.get(OPENID) is None  # the fetch goes on in the background
    await cache.forget(OPENID)  # the follower unfollowed meanwhile
    api.release()
    await asyncio.sleep(0.01)
    assert len(cache) == 0
    assert await shared.get(f"profile:{OPENID}") is None


async def test_cached_answers_a_fresh_entry_at_once_and_nothing_else() -> None:
    api, clock = StubAPI(), Clock()
    cache = cache_for(api, ttl=60.0, clock=clock)
    assert cache.cached(OPENID) == (False, None)
    await cache.get(OPENID)
    assert cache.cached(OPENID) == (True, profile(OPENID))
    clock.now += 60.0
    assert cache.cached(OPENID) == (False, None)  # expired: `get` fetches it again
    assert len(api.calls) == 1


class AnnouncingStorage(MemoryStorage):
    """A shared store whose announcements reach the listeners of every cache over it."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[str | None], None]] = []

    def listen(self, on_stale: Callable[[str | None], None]) -> None:
        self.listeners.append(on_stale)

    async def announce(self, key: str) -> None:
        for on_stale in self.listeners:
            on_stale(key)


async def test_a_profile_forgotten_elsewhere_is_dropped_with_the_fetch_in_flight() -> None:
    shared = AnnouncingStorage()
    here, there = StubAPI(), StubAPI(gated=True)
    cache_here, cache_there = cache_for(here, shared=shared), cache_for(there, shared=shared)
    await cache_here.get("o_cached")
    await cache_there.get("o_cached")  # there: from the shared copy
    fetching = asyncio.create_task(cache_there.get(OPENID))  # there: a fetch in flight
    await asyncio.sleep(0.01)

    await cache_here.forget(OPENID)
    await cache_here.forget("o_cached")

    assert await fetching is None  # the fetch read what was forgotten: not kept, not shared
    assert there.cancelled
    assert await shared.get(f"profile:{OPENID}") is None
    assert cache_there.cached("o_cached") == (False, None)


async def test_every_cached_profile_is_dropped_when_announcements_may_have_been_lost() -> None:
    shared = AnnouncingStorage()
    api = StubAPI()
    cache = cache_for(api, shared=shared)
    await cache.get(OPENID)
    shared.listeners[0](None)
    assert cache.cached(OPENID) == (False, None)
