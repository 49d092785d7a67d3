"""The access-token cache: one refresher per account, in a process and across processes.

A process keeps its own copy of the token with a refresh deadline, so the hot path never
awaits storage. When the copy goes stale, one task per process refreshes it (single-flight);
across processes the shared key `token:{app_id}` holds the token and a lock key
`token-lock:{app_id}` elects the one instance that asks the platform, which re-checks the shared
key after taking the lock. The others poll the shared key for a bounded time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.storage.base import Storage

log = logging.getLogger(__name__)
T = TypeVar("T")

_POLL_INTERVAL = 0.05  # how often an instance without the lock re-reads the shared key


class TokenError(Exception):
    """The token could not be obtained: the token endpoint refused, or could not be reached.

    `errcode`/`errmsg` are the platform's (40013 invalid appid, 40125 invalid secret, 40164 IP
    not whitelisted, ...) or negative for local failures; `transient` says a retry may help.
    """

    def __init__(self, errcode: int, errmsg: str, *, transient: bool = False) -> None:
        """Keep the platform's code and message."""
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.transient = transient

    def __str__(self) -> str:
        """The code and message, never the credentials."""
        return f"access token: errcode {self.errcode}: {self.errmsg}"


@dataclass(frozen=True)
class _Held:
    token: str
    refresh_at: float  # when to stop using it (before it expires)
    expires_at: float


class AccessTokenCache:
    """The account's access token, fetched by one refresher at a time.

    `fetch(force_refresh)` asks the platform and returns `(token, expires_in)`; it should raise
    `TokenError` on failure (any other exception is wrapped in one).
    """

    def __init__(
        self,
        fetch: Callable[[bool], Awaitable[tuple[str, int]]],
        storage: Storage,
        *,
        app_id: str,
        refresh_margin: float = 300.0,
        lock_ttl: float = 10.0,
        lock_wait: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Share the token through `storage`; refresh `refresh_margin` seconds before expiry."""
        self._fetch = fetch
        self._storage = storage
        self._key = f"token:{app_id}"
        self._lock_key = f"token-lock:{app_id}"
        self._margin = refresh_margin
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait
        self._clock = clock  # wall clock: deadlines are shared between processes
        self._held: _Held | None = None
        self._rejected: str | None = None  # the last token the platform called invalid
        self._refreshing: asyncio.Task[str] | None = None

    async def get(self) -> str:
        """A valid token; raises TokenError when none can be obtained."""
        held = self._held
        if held is not None and self._clock() < held.refresh_at:
            return held.token
        task = self._refreshing
        if task is None or task.done():
            task = asyncio.create_task(self._refresh())
            task.add_done_callback(self._refresh_done)
            self._refreshing = task
        # shield: one cancelled caller must not cancel the refresh the others wait for
        return await asyncio.shield(task)

    async def invalidate(self, token: str) -> None:
        """The platform called `token` invalid (40001/40014/42001): stop using it everywhere."""
        self._rejected = token
        if self._held is not None and self._held.token == token:
            self._held = None
        raw = await self._storage_get()
        held = _decode(raw)
        if raw is not None and held is not None and held.token == token:
            # compare-and-delete: another instance may have stored a fresh token meanwhile
            await self._guarded(self._storage.delete_if_equals(self._key, raw), None)

    def _refresh_done(self, task: asyncio.Task[str]) -> None:
        if self._refreshing is task:  # a newer refresh may have started already
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every waiter left

    async def _refresh(self) -> str:
        """Adopt the shared token, or refresh it under the cross-process lock."""
        try:
            if (held := await self._shared()) is not None:
                return self._adopt(held)
            give_up = time.monotonic() + self._lock_wait
            while True:
                lock_id = secrets.token_hex(8)
                if await self._guarded(
                    self._storage.add(self._lock_key, lock_id.encode(), self._lock_ttl), True
                ):
                    try:
                        # re-check: the previous holder may have stored a token just now
                        if (held := await self._shared()) is not None:
                            return self._adopt(held)
                        return self._adopt(await self._fetch_and_store())
                    finally:
                        await self._guarded(
                            self._storage.delete_if_equals(self._lock_key, lock_id.encode()), None
                        )
                if time.monotonic() >= give_up:
                    raise TokenError(
                        -2, "timed out waiting for another instance's refresh", transient=True
                    )
                await asyncio.sleep(_POLL_INTERVAL)
                if (held := await self._shared()) is not None:
                    return self._adopt(held)
        except TokenError:
            raise
        except Exception as exc:  # a broken fetch must reach callers as a typed error
            raise TokenError(-2, f"token refresh failed: {type(exc).__name__}") from None

    async def _fetch_and_store(self) -> _Held:
        token, expires_in = await self._fetch(False)
        if token == self._rejected:
            # the platform handed back the token it just refused: ask for a new one
            token, expires_in = await self._fetch(True)
        now = self._clock()
        lifetime = max(expires_in - self._margin, expires_in / 2)  # short-lived tokens too
        held = _Held(token, now + lifetime, now + expires_in)
        value = json.dumps(
            {"token": token, "refresh_at": held.refresh_at, "expires_at": held.expires_at}
        ).encode()
        if expires_in > 0:
            await self._guarded(self._storage.set(self._key, value, float(expires_in)), None)
        return held

    def _adopt(self, held: _Held) -> str:
        self._held = held
        return held.token

    async def _shared(self) -> _Held | None:
        """The shared token when it is still fresh and not the one the platform refused."""
        held = _decode(await self._storage_get())
        if held is None or held.token == self._rejected or self._clock() >= held.refresh_at:
            return None
        return held

    async def _storage_get(self) -> bytes | None:
        return await self._guarded(self._storage.get(self._key), None)

    async def _guarded(self, call: Awaitable[T], fallback: T) -> T:
        """Run a storage call; when the store fails, carry on alone with `fallback`."""
        try:
            return await call
        except Exception as exc:  # a store outage must not stop the bot from calling the API
            log.warning("token storage unavailable (%s); refreshing without it", type(exc).__name__)
            return fallback


def _decode(raw: bytes | None) -> _Held | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return _Held(str(data["token"]), float(data["refresh_at"]), float(data["expires_at"]))
    except (ValueError, KeyError, TypeError):  # a corrupt entry counts as absent
        return None
