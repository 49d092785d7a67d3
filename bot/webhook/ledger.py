"""Retries are one message: the reply ledger and the reply budget.

WeChat retries a push it got no answer for within 5 s (three tries in all). The ledger keys
each message (`Message.dedup_key`) and runs its handler once:

* the first try waits for the handler until the reply budget; an answer in time is the
  passive reply, remembered for retries;
* a handler still running at the budget makes the passive answer `success`, and its result
  goes out later through the customer-service API (`on_late`), exactly once;
* a retry while the first try runs waits for the same answer (or `success` at its own
  budget); a retry after it gets the remembered answer again.

With a shared store (Redis) a retry that reaches another instance finds the entry there:
it waits for the owner's answer, polling, until its budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, Generic, NamedTuple, TypeVar

from bot.server.eager import Started, start, wait_until
from bot.storage.base import Storage, StorageUnavailable

log = logging.getLogger(__name__)

SUCCESS = "success"
T = TypeVar("T")

_RUNNING = b"R"
_DONE = b"D"
_POLL_INTERVAL = 0.05


class LedgerAnswer(NamedTuple):
    """The passive answer and how it came about."""

    body: str
    duplicate: bool  # a retry: the handler did not run for this request
    late: bool  # the budget passed: the result goes through the customer-service API


# A ledger entry: (expiry on the ledger's clock, the answer, or its future while it runs)
_Entry = tuple[float, "str | asyncio.Future[str]"]


class ReplyLedger(Generic[T]):
    """The bounded table of recent messages and their answers."""

    def __init__(
        self,
        *,
        size: int,
        ttl: float,
        render: Callable[[T], str],
        on_late: Callable[[T], None],
        shared: Storage | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._ttl = ttl
        self._render = render
        self._on_late = on_late
        self._shared = shared
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._running: set[asyncio.Task[T]] = set()
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def running(self) -> set[asyncio.Task[T]]:
        """Handler tasks still running (graceful shutdown waits for them)."""
        return self._running

    async def answer(
        self,
        key: str,
        produce: Callable[[], Coroutine[Any, Any, T]],
        deadline: float,
        *,
        needs_task: bool = True,
    ) -> LedgerAnswer:
        """The passive answer for message `key`, running `produce` at most once per key.

        `deadline` is on the ledger's clock: when the request's budget runs out. `produce`
        starts in a task of its own unless `needs_task` is False (`bot.server.eager.start_eagerly`).
        """
        now = self._clock()
        entries = self._entries
        entry = entries.get(key)
        if entry is not None:
            if entry[0] > now:
                found = entry[1]
                if isinstance(found, str):
                    return LedgerAnswer(found, True, False)
                return LedgerAnswer(await self._wait(found, deadline), True, False)
            del entries[key]  # expired: this is a new message with an old id
        if self._shared is not None and not await self._claim(key):
            return LedgerAnswer(await self._wait_shared(key, deadline), True, False)
        started: Started[T] | None
        try:
            started = start(produce(), needs_task=needs_task)
        except Exception:
            log.exception("message %s: could not produce a reply", key)
            started = None
        late = False
        if started is None:
            body = SUCCESS
            self._remember(key, body, now)
        elif started.task is None:
            # Finished in its first step: nothing ran in between, so no retry can be waiting.
            body = self._render_safely(key, started.value)
            self._remember(key, body, now)
        else:
            answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._remember(key, answer, now)
            task = started.task
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            try:
                done = await wait_until(task, deadline - self._clock())
            except asyncio.CancelledError:
                # The request went away (shutdown): the handler's reply still goes out late.
                task.add_done_callback(self._deliver_late)
                answer.set_result(SUCCESS)
                if self._shared is not None:
                    await asyncio.shield(self._publish(key, SUCCESS))
                raise
            late = not done
            if late:
                body = SUCCESS
                task.add_done_callback(self._deliver_late)
            elif task.exception() is not None:
                log.error("message %s: could not produce a reply", key, exc_info=task.exception())
                body = SUCCESS
            else:
                body = self._render_safely(key, task.result())
            answer.set_result(body)
        if self._shared is not None:
            await self._publish(key, body)
        return LedgerAnswer(body, False, late)

    def _remember(self, key: str, answer: str | asyncio.Future[str], now: float) -> None:
        self._entries[key] = (now + self._ttl, answer)
        self._evict(now)

    def _render_safely(self, key: str, result: T | None) -> str:
        try:
            return self._render(result)  # type: ignore[arg-type]
        except Exception:
            log.exception("message %s: could not produce a reply", key)
            return SUCCESS

    def _deliver_late(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            log.warning("a late handler was cancelled; its reply is lost")
            return
        if task.exception() is None:
            self._on_late(task.result())

    async def _wait(self, answer: asyncio.Future[str], deadline: float) -> str:
        timeout = max(0.0, deadline - self._clock())
        try:
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        except TimeoutError:
            return SUCCESS

    async def _claim(self, key: str) -> bool:
        assert self._shared is not None
        try:
            return await self._shared.add(f"dedup:{key}", _RUNNING, self._ttl)
        except StorageUnavailable:
            return True  # no shared table right now: the local one still dedups this instance

    async def _publish(self, key: str, body: str) -> None:
        assert self._shared is not None
        with contextlib.suppress(StorageUnavailable):
            await self._shared.set(f"dedup:{key}", _DONE + body.encode(), self._ttl)

    async def _wait_shared(self, key: str, deadline: float) -> str:
        assert self._shared is not None
        while True:
            try:
                value = await self._shared.get(f"dedup:{key}")
            except StorageUnavailable:
                value = None
            if value is not None and value.startswith(_DONE):
                return value[1:].decode()
            remaining = deadline - self._clock()
            if remaining <= 0:
                return SUCCESS
            await asyncio.sleep(min(_POLL_INTERVAL, remaining))

    def _evict(self, now: float) -> None:
        entries = self._entries
        while len(entries) > self._size:
            entries.popitem(last=False)
        if now - self._swept < 1.0:
            return  # expired entries go at most a second late; the size bound holds always
        self._swept = now
        while entries:
            oldest_key, oldest = next(iter(entries.items()))
            if len(entries) > self._size or oldest[0] <= now:
                del entries[oldest_key]
            else:
                break
