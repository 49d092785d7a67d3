"""Followers' profiles from `user/info`: cached, fetched once per follower, never in the way.

A reply waits at most `timeout` for a profile; a slow fetch goes on in the background and
fills the cache for the next message, and a failed one answers None (greetings fall back to
what is known). With a shared store (Redis) the profiles are shared across instances too, and a
profile forgotten on one instance (an unfollow) is dropped from every instance's cache at once
(`Storage.announce`), not when its TTL runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from bot.client.api import UserInfo, WeChatAPI, WeChatAPIError
from bot.storage.base import Storage, StorageUnavailable

log = logging.getLogger(__name__)

# How long a failed fetch is remembered, so a failing API is not asked on every message.
_FAILURE_TTL = 30.0


class ProfileCache:
    """A bounded TTL cache of profiles with one upstream call per follower at a time."""

    def __init__(
        self,
        api: WeChatAPI,
        *,
        size: int,
        ttl: float,
        timeout: float,
        shared: Storage | None = None,
        lang: str = "zh_CN",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._size = size
        self._ttl = ttl
        self._timeout = timeout
        self._shared = shared
        self._lang = lang
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, UserInfo | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[UserInfo | None]] = {}
        if shared is not None:
            shared.listen(self._stale)

    def _stale(self, key: str | None) -> None:
        """Another instance (or this one) forgot a profile; None: every one may be stale.

        A fetch in flight is cancelled too: it may have read the forgotten profile, and would
        store it again (here and in the shared store) for a whole TTL.
        """
        if key is None:
            self._entries.clear()
            stale = list(self._loading)
        elif key.startswith(_PREFIX):
            openid = key[len(_PREFIX) :]
            self._entries.pop(openid, None)
            stale = [openid] if openid in self._loading else []
        else:
            return
        for openid in stale:
            self._loading.pop(openid).cancel()

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, openid: str) -> tuple[bool, UserInfo | None]:
        """(True, profile) when a fresh entry is cached (the profile may be None: a remembered
        failure), else (False, None): then await `get`."""
        entry = self._entries.get(openid)
        if entry is not None and entry[0] > self._clock():
            self._entries.move_to_end(openid)
            return True, entry[1]
        return False, None

    async def get(self, openid: str) -> UserInfo | None:
        """The follower's profile, or None when it is unknown, failing or too slow right now."""
        entry = self._entries.get(openid)
        if entry is not None:
            if entry[0] > self._clock():
                self._entries.move_to_end(openid)
                return entry[1]
            del self._entries[openid]
        task = self._loading.get(openid)
        if task is None:
            task = asyncio.create_task(self._load(openid), name=f"profile:{openid}")
            self._loading[openid] = task
            task.add_done_callback(lambda _t: self._loading.pop(openid, None))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return None  # the follower was forgotten while we waited
            raise
        except TimeoutError:
            log.info("profile fetch still running after %.1fs; replying without it", self._timeout)
            return None

    async def forget(self, openid: str) -> None:
        """Drop the follower's cached profile (they unfollowed)."""
        self._entries.pop(openid, None)
        loading = self._loading.pop(openid, None)
        if loading is not None:
            loading.cancel()  # a fetch finishing now must not store the profile again
        if self._shared is not None:
            with contextlib.suppress(StorageUnavailable):
                await self._shared.delete(_key(openid))
                await self._shared.announce(_key(openid))

    async def close(self) -> None:
        """Cancel background fetches."""
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _load(self, openid: str) -> UserInfo | None:
        info = await self._from_shared(openid)
        if info is not None:
            self._remember(openid, info, self._ttl)
            return info
        try:
            info = await self._api.get_user_info(openid, self._lang)
        except WeChatAPIError as exc:
            log.warning("user/info failed: errcode=%s %s", exc.errcode, exc.errmsg)
            self._remember(openid, None, min(_FAILURE_TTL, self._ttl))
            return None
        self._remember(openid, info, self._ttl)
        if self._shared is not None:
            try:
                data = json.dumps(dict(info.raw), ensure_ascii=False).encode()
                await self._shared.set(_key(openid), data, self._ttl)
            except StorageUnavailable:
                pass
        return info

    async def _from_shared(self, openid: str) -> UserInfo | None:
        if self._shared is None:
            return None
        try:
            data = await self._shared.get(_key(openid))
        except StorageUnavailable:
            return None
        if data is None:
            return None
        try:
            return UserInfo.from_raw(json.loads(data))
        except (ValueError, TypeError, KeyError):
            return None

    def _remember(self, openid: str, info: UserInfo | None, ttl: float) -> None:
        self._entries[openid] = (self._clock() + ttl, info)
        self._entries.move_to_end(openid)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


_PREFIX = "profile:"


def _key(openid: str) -> str:
    return _PREFIX + openid
