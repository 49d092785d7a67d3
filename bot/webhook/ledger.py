"""Retries are one message: the reply ledger and the reply budget.

WeChat retries a push it got no answer for within 5 s (three tries in all). The ledger keys
each message (`Message.dedup_key`) and runs its handler once:

* the first try waits for the handler until the reply budget; an answer in time is the
  passive reply, remembered for retries;
* a handler still running at the budget makes the passive answer `success`, and its result
  goes out later through the customer-service API (`on_late`), exactly once;
* a retry while the first try runs waits for the same answer (or `success` at its own
  budget); a retry after it gets the remembered answer again.

Without the customer-service API (`hold` true when the handler starts) a late answer can only
be passive: the ledger then leaves unanswered the tries WeChat will retry (the first two; each
waits up to `HOLD` past its budget, when WeChat has dropped it), whichever try is open when the
handler finishes carries the answer, and the last try is answered within its budget. An answer
that no open try can carry goes to `on_late` (which keeps it for the follower's next message).

With a shared store (Redis) a retry that reaches another instance finds the entry there:
it waits for the owner's answer, polling, until its budget. The owner claims the message in
the shared store before its handler runs (`begin` can take a claim already made, together with
other pushes' in one round trip: `claim_for`) and publishes the answer once it is given, off
the push's critical path: the answers given meanwhile go along with the next batch's claims
(`take_unpublished`), or on their own a couple of milliseconds later when no claim comes (a
retry reaching another instance in between waits one poll longer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

from bot.storage.base import PushClaimed, Storage, StorageUnavailable

log = logging.getLogger(__name__)

SUCCESS = "success"
T = TypeVar("T")

_RUNNING = b"R"
_DONE = b"D"
_POLL_INTERVAL = 0.05
HOLD = 2.0
"""Seconds past its budget a try WeChat will retry waits (WeChat drops it at 5 s anyway)."""
TRIES = 3  # WeChat's tries of one push
# A try this long after the first is WeChat's last, whatever this instance counted.
_LAST_TRY_AFTER = 9.0
# How long an answer waits to be published with the next claims before it goes on its own.
_PUBLISH_DELAY = 0.002

SlowWatcher: TypeAlias = Callable[[Callable[[], bool]], None]
"""Told when a handler did not finish in its first step; given a test of whether it has."""

Starter: TypeAlias = Callable[[Coroutine[Any, Any, T]], "asyncio.Future[T]"]
"""Starts a handler's coroutine in a task of its own and gives its future (the task)."""


def start_task(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """A task for `coro`; on 3.12+ started eagerly (its first step runs now, inside the task).

    A handler that never waits is then done before this returns, and its answer costs no
    trip round the event loop. 3.11 has no eager tasks: its task starts on the next iteration
    (`bot.server` installs an eager starter of its own there). A loop with a task factory
    (a tracer's, an error reporter's) gets its handlers' tasks from it, as every other task.
    """
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12) and loop.get_task_factory() is None:
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)


class LedgerAnswer(NamedTuple):
    """The passive answer and how it came about."""

    body: str
    duplicate: bool  # a retry: the handler did not run for this request
    late: bool  # answered without the answer: it goes out later (customer-service API, the
    # next message), unless another try still open carries it


# A ledger entry: (expiry on the ledger's clock, the answer, or its future while it runs)
_Entry = tuple[float, "str | asyncio.Future[str]"]


class _Run:
    """A handler still running, and the tries waiting for its answer."""

    __slots__ = ("acked", "hold", "started", "tries", "waiting")

    def __init__(self, hold: bool, started: float) -> None:
        self.hold = hold  # tries WeChat will retry are left unanswered
        self.started = started
        self.tries = 0
        self.waiting = 0  # tries waiting now (an open one carries the answer)
        self.acked = False  # a try was answered `success` without the answer


class ReplyLedger(Generic[T]):
    """The bounded table of recent messages and their answers.

    `start` is how handlers are started (`start_task` unless a server installs another).
    """

    def __init__(
        self,
        *,
        size: int,
        ttl: float,
        render: Callable[[T], str],
        on_late: Callable[[T], None],
        shared: Storage | None = None,
        clock: Callable[[], float] = time.monotonic,
        hold: Callable[[], bool] = lambda: False,
        on_given: Callable[[T], None] | None = None,
    ) -> None:
        self._size = size
        self._ttl = ttl
        self._render = render
        self._on_late = on_late
        self._shared = shared
        self._clock = clock
        self._hold = hold
        self._on_given = on_given  # a handler's result whose answer was given passively
        self._runs: dict[str, _Run] = {}  # bounded by the handlers running
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._running: set[asyncio.Future[T]] = set()
        self._swept = clock()
        self._unpublished: list[tuple[str, bytes]] = []
        self._publish_timer: asyncio.TimerHandle | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self.start: Starter[T] = start_task

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def running(self) -> set[asyncio.Future[T]]:
        """Handler tasks still running (graceful shutdown waits for them)."""
        return self._running

    async def answer(
        self, key: str, produce: Callable[[], Coroutine[Any, Any, T]], deadline: float
    ) -> LedgerAnswer:
        """The passive answer for message `key`, running `produce` at most once per key.

        `deadline` is on the ledger's clock: when the request's budget runs out.
        """
        begun = self.begin(key, produce, deadline)
        return begun if isinstance(begun, LedgerAnswer) else await begun

    @property
    def ttl(self) -> float:
        """How long a message and its answer are remembered."""
        return self._ttl

    marker = _RUNNING
    """The value of a claimed message's shared key while its handler runs."""

    @staticmethod
    def claim_for(key: str) -> str:
        """The shared key that claims message `key` (holding `marker` for `ttl`), for a claim
        made with others in one round trip (`Storage.claim_pushes`)."""
        return f"dedup:{key}"

    def answers_passively(self, key: str) -> bool:
        """Whether message `key`'s answer, were it ready now, would be a passive reply: a try
        waits for it, or none was answered without it yet."""
        run = self._runs.get(key)
        return run is None or run.waiting > 0 or not run.acked

    def take_unpublished(self) -> list[tuple[str, bytes]]:
        """The answers not yet published (shared keys and values, for `ttl`): the caller
        sends them along with its claims."""
        items, self._unpublished = self._unpublished, []
        if self._publish_timer is not None:
            self._publish_timer.cancel()
            self._publish_timer = None
        return items

    def begin(
        self,
        key: str,
        produce: Callable[[], Coroutine[Any, Any, T]],
        deadline: float,
        claimed: PushClaimed | None = None,
        on_slow: SlowWatcher | None = None,
    ) -> LedgerAnswer | Awaitable[LedgerAnswer]:
        """`answer`, given at once when it is known at once (a retry of an answered message, a
        handler that finished in its first step), else as an awaitable to await in a task.

        With a shared store, `claimed` is the outcome of `claim_for(key)` when the caller made
        the claim already; without it the ledger makes it (one round trip more). `on_slow` is
        called (with a test of whether the handler finished) when this call started a handler
        that did not finish in its first step.
        """
        now = self._clock()
        entries = self._entries
        entry = entries.get(key)
        if entry is not None:
            if entry[0] > now:
                found = entry[1]
                if isinstance(found, str):
                    return LedgerAnswer(found, True, False)
                run = self._runs.get(key)
                if run is not None and not found.done():
                    return self._try(run, found, deadline, False)
                return self._wait(found, deadline)
            del entries[key]  # expired: this is a new message with an old id
        if self._shared is None:
            return self._run(key, produce, deadline, now, on_slow)
        if claimed is None:
            return self._claim_and_run(key, produce, deadline, on_slow)
        if claimed.claimed:
            return self._run_owned(key, produce, deadline, now, on_slow)
        elsewhere = claimed.found
        if elsewhere is not None and elsewhere.startswith(_DONE):
            return LedgerAnswer(elsewhere[1:].decode(errors="replace"), True, False)
        return self._duplicate_elsewhere(key, deadline)

    async def _claim_and_run(
        self,
        key: str,
        produce: Callable[[], Coroutine[Any, Any, T]],
        deadline: float,
        on_slow: SlowWatcher | None,
    ) -> LedgerAnswer:
        if not await self._claim(key):
            return await self._duplicate_elsewhere(key, deadline)
        begun = self._run_owned(key, produce, deadline, self._clock(), on_slow)
        return begun if isinstance(begun, LedgerAnswer) else await begun

    async def _duplicate_elsewhere(self, key: str, deadline: float) -> LedgerAnswer:
        return LedgerAnswer(await self._wait_shared(key, deadline), True, False)

    def _run_owned(
        self,
        key: str,
        produce: Callable[[], Coroutine[Any, Any, T]],
        deadline: float,
        now: float,
        on_slow: SlowWatcher | None,
    ) -> LedgerAnswer | Awaitable[LedgerAnswer]:
        """`_run` for a message claimed in the shared store: its answer is published there."""
        begun = self._run(key, produce, deadline, now, on_slow)
        if isinstance(begun, LedgerAnswer):
            self._publish_soon(key, begun.body)
            return begun
        entry = self._entries.get(key)
        if entry is not None and isinstance(entry[1], asyncio.Future):
            # published once it is final: what every later try, here or elsewhere, gets
            entry[1].add_done_callback(lambda done: self._publish_soon(key, done.result()))
        return begun

    def _run(
        self,
        key: str,
        produce: Callable[[], Coroutine[Any, Any, T]],
        deadline: float,
        now: float,
        on_slow: SlowWatcher | None = None,
    ) -> LedgerAnswer | Awaitable[LedgerAnswer]:
        try:
            task = self.start(produce())
        except Exception:
            log.exception("message %s: could not produce a reply", key)
            self._remember(key, SUCCESS, now)
            return LedgerAnswer(SUCCESS, False, False)
        if task.done():
            # Finished in its first step: nothing ran in between, so no retry can be waiting.
            body = self._body_of(key, task)
            self._remember(key, body, now)
            self._given(task)
            return LedgerAnswer(body, False, False)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._remember(key, answer, now)
        run = _Run(self._hold(), now)
        self._runs[key] = run
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        task.add_done_callback(lambda done: self._completed(key, run, done, answer))
        if on_slow is not None:
            on_slow(task.done)
        return self._try(run, answer, deadline, True)

    async def _try(
        self, run: _Run, answer: asyncio.Future[str], deadline: float, first: bool
    ) -> LedgerAnswer:
        """One try of a running message: the answer if it comes in time for this try, else
        `success` (late) at its budget, or past it (`HOLD`) for a try WeChat will retry."""
        run.tries += 1
        last = not run.hold or run.tries >= TRIES or self._clock() - run.started >= _LAST_TRY_AFTER
        limit = deadline if last else deadline + HOLD
        run.waiting += 1
        try:
            done = await wait_until(answer, limit - self._clock())
        except asyncio.CancelledError:
            # The request went away (WeChat dropped it, or shutdown): a later try carries the
            # answer, else it goes out late (`_completed`); with the customer-service API a
            # retry need not wait for it.
            run.waiting -= 1
            run.acked = True
            if not run.hold and not run.waiting and not answer.done():
                answer.set_result(SUCCESS)
            raise
        run.waiting -= 1
        if done:
            return LedgerAnswer(answer.result(), not first, False)
        if run.waiting:
            return LedgerAnswer(SUCCESS, not first, False)  # another open try carries it
        run.acked = True
        if last:
            answer.set_result(SUCCESS)  # later tries get `success` at once
        return LedgerAnswer(SUCCESS, not first, True)

    def _completed(
        self, key: str, run: _Run, task: asyncio.Future[T], answer: asyncio.Future[str]
    ) -> None:
        """The handler finished: an open try carries its answer, else it goes out late."""
        if self._runs.get(key) is run:
            del self._runs[key]
        if not answer.done() and (run.waiting or not run.acked):
            answer.set_result(self._body_of(key, task))
            self._given(task)
            return
        if not answer.done():
            answer.set_result(SUCCESS)
        self._deliver_late(task)

    def _body_of(self, key: str, task: asyncio.Future[T]) -> str:
        """The rendered reply of a finished handler; SUCCESS when it failed."""
        if task.cancelled() or task.exception() is not None:
            exc = None if task.cancelled() else task.exception()
            log.error("message %s: could not produce a reply", key, exc_info=exc)
            return SUCCESS
        try:
            return self._render(task.result())
        except Exception:
            log.exception("message %s: could not produce a reply", key)
            return SUCCESS

    def _remember(self, key: str, answer: str | asyncio.Future[str], now: float) -> None:
        self._entries[key] = (now + self._ttl, answer)
        self._evict(now)

    def _given(self, task: asyncio.Future[T]) -> None:
        if self._on_given is not None and not task.cancelled() and task.exception() is None:
            try:
                self._on_given(task.result())
            except Exception:
                log.exception("could not follow up a passive answer")

    def _deliver_late(self, task: asyncio.Future[T]) -> None:
        if task.cancelled():
            log.warning("a late handler was cancelled; its message stays in the journal")
            return
        if task.exception() is None:
            self._on_late(task.result())

    async def _wait(self, answer: asyncio.Future[str], deadline: float) -> LedgerAnswer:
        """A retry while the first try's handler runs: its answer, or SUCCESS at our budget."""
        done = await wait_until(answer, deadline - self._clock())
        return LedgerAnswer(answer.result() if done else SUCCESS, True, False)

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

    def put_back_unpublished(self, items: list[tuple[str, bytes]]) -> None:
        """Answers `take_unpublished` gave that did not reach the shared store: again."""
        if not items:
            return
        if not self._unpublished:
            loop = asyncio.get_running_loop()
            self._publish_timer = loop.call_later(_PUBLISH_DELAY, self._publish_all)
        self._unpublished[:0] = items

    def _publish_soon(self, key: str, body: str) -> None:
        """Publish the answer with the next claims, or with the others given meanwhile."""
        unpublished = self._unpublished
        if not unpublished:
            loop = asyncio.get_running_loop()
            self._publish_timer = loop.call_later(_PUBLISH_DELAY, self._publish_all)
        unpublished.append((f"dedup:{key}", _DONE + body.encode()))

    def _publish_all(self) -> None:
        items = self.take_unpublished()
        if not items:
            return
        task = asyncio.get_running_loop().create_task(self._set_many(items))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _set_many(self, items: list[tuple[str, bytes]]) -> None:
        assert self._shared is not None
        try:
            await self._shared.set_many(items, self._ttl)
        except StorageUnavailable:
            pass  # the shared store is away: retries that reach this instance are answered
        except Exception:
            log.exception("could not publish %d answer(s) to the shared store", len(items))

    async def flush(self) -> None:
        """Publish every answer given so far (shutdown: before the shared store closes)."""
        if self._unpublished:
            self._publish_all()
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    async def _wait_shared(self, key: str, deadline: float) -> str:
        """The owner's answer (another instance's), polled until `deadline`; SUCCESS then.

        Each poll is cut at the deadline too: a slow or frozen store never holds the retry
        past its budget.
        """
        assert self._shared is not None
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return SUCCESS
            try:
                value = await asyncio.wait_for(self._shared.get(f"dedup:{key}"), remaining)
            except (StorageUnavailable, TimeoutError):
                value = None
            if value is not None and value.startswith(_DONE):
                return value[1:].decode(errors="replace")
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


async def wait_until(future: asyncio.Future[Any], seconds: float) -> bool:
    """Wait up to `seconds` for `future`; True when it is done (never cancels it).

    A timer and a callback rather than `asyncio.wait_for`, which cancels what it waits for
    and (3.12+) must run inside a task.
    """
    if future.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    future.add_done_callback(wake)
    timer = loop.call_later(max(0.0, seconds), wake, None)
    try:
        await waiter
    finally:
        timer.cancel()
        future.remove_done_callback(wake)
    return future.done()
