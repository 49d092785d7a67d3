"""The reply ledger: one handler run per message, the reply budget, late replies, shared tables."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from bot.storage.base import PushClaimed, StorageUnavailable
from bot.storage.memory import MemoryStorage
from bot.webhook.ledger import SUCCESS, LedgerAnswer, ReplyLedger

KEY = "msg-1"


class Clock:
    """A monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Producer:
    """A handler stand-in: counts runs and, when gated, waits for `release()`."""

    def __init__(self, result: str = "reply", gated: bool = False) -> None:
        self.result = result
        self.runs = 0
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def __call__(self) -> str:
        self.runs += 1
        await self.gate.wait()
        return self.result

    def release(self) -> None:
        """Let every waiting run finish."""
        self.gate.set()


class Ledger:
    """A ReplyLedger[str] rendering `<result>` and recording late results.

    The clock is real unless a test moves one by hand: waiting on a shared table polls until
    the clock reaches the deadline.
    """

    def __init__(
        self,
        *,
        size: int = 100,
        ttl: float = 60.0,
        shared: MemoryStorage | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.late: list[str] = []
        self.clock = clock
        self.ledger: ReplyLedger[str] = ReplyLedger(
            size=size,
            ttl=ttl,
            render=lambda result: f"<{result}>",
            on_late=self.late.append,
            shared=shared,
            clock=self.clock,
        )

    async def answer(self, key: str, produce: Producer, budget: float = 1.0) -> LedgerAnswer:
        """Answer `key` with `budget` seconds left."""
        return await self.ledger.answer(key, produce, self.clock() + budget)

    async def finish(self) -> None:
        """Wait for the handler tasks still running."""
        await asyncio.gather(*self.ledger.running)
        await asyncio.sleep(0)  # done callbacks run one loop step later


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


async def test_answer_in_time_is_the_rendered_body(ledger: Ledger) -> None:
    produce = Producer("hi")
    assert await ledger.answer(KEY, produce) == LedgerAnswer("<hi>", False, False)
    assert produce.runs == 1
    assert ledger.late == []


async def test_later_retry_gets_the_same_body_without_running_again(ledger: Ledger) -> None:
    produce = Producer("hi")
    await ledger.answer(KEY, produce)
    assert await ledger.answer(KEY, produce) == LedgerAnswer("<hi>", True, False)
    assert produce.runs == 1


async def test_concurrent_answers_run_produce_once(ledger: Ledger) -> None:
    produce = Producer("once", gated=True)
    waiting = [asyncio.create_task(ledger.answer(KEY, produce)) for _ in range(3)]
    await asyncio.sleep(0.01)
    produce.release()
    answers = await asyncio.gather(*waiting)
    assert produce.runs == 1
    assert [a.body for a in answers] == ["<once>"] * 3
    assert [a.duplicate for a in answers] == [False, True, True]


async def test_different_keys_run_separately(ledger: Ledger) -> None:
    first, second = Producer("a"), Producer("b")
    assert (await ledger.answer("k1", first)).body == "<a>"
    assert (await ledger.answer("k2", second)).body == "<b>"
    assert (first.runs, second.runs) == (1, 1)


async def test_late_answer_is_success_and_on_late_gets_the_result_once(ledger: Ledger) -> None:
    produce = Producer("slow", gated=True)
    answer = await ledger.answer(KEY, produce, budget=0.02)
    assert answer == LedgerAnswer(SUCCESS, False, True)
    assert ledger.late == []
    assert len(ledger.ledger.running) == 1
    produce.release()
    await ledger.finish()
    assert ledger.late == ["slow"]
    assert ledger.ledger.running == set()
    # a retry after it finished gets the passive answer already given, and nothing is resent
    assert await ledger.answer(KEY, produce) == LedgerAnswer(SUCCESS, True, False)
    await ledger.finish()
    assert ledger.late == ["slow"]
    assert produce.runs == 1


async def test_retry_while_late_gets_success(ledger: Ledger) -> None:
    produce = Producer("slow", gated=True)
    await ledger.answer(KEY, produce, budget=0.02)
    retry = await ledger.answer(KEY, produce, budget=0.02)
    assert retry == LedgerAnswer(SUCCESS, True, False)
    produce.release()
    await ledger.finish()
    assert ledger.late == ["slow"]
    assert produce.runs == 1


async def test_retry_with_a_shorter_budget_answers_success_at_its_own_budget(
    ledger: Ledger,
) -> None:
    produce = Producer("slowish", gated=True)
    first = asyncio.create_task(ledger.answer(KEY, produce, budget=1.5))
    await asyncio.sleep(0)
    retry = await ledger.answer(KEY, produce, budget=0.02)
    assert retry == LedgerAnswer(SUCCESS, True, False)
    produce.release()
    assert await first == LedgerAnswer("<slowish>", False, False)
    assert ledger.late == []


async def test_late_handler_that_raises_delivers_nothing(ledger: Ledger) -> None:
    gate = asyncio.Event()

    async def broken() -> str:
        await gate.wait()
        raise RuntimeError("boom")

    assert (await ledger.ledger.answer(KEY, broken, ledger.clock() + 0.02)).late is True
    gate.set()
    await asyncio.gather(*ledger.ledger.running, return_exceptions=True)
    await asyncio.sleep(0)
    assert ledger.late == []


async def test_render_raising_answers_success(caplog: pytest.LogCaptureFixture) -> None:
    def render(result: str) -> str:
        raise ValueError("cannot render")

    late: list[str] = []
    ledger: ReplyLedger[str] = ReplyLedger(
        size=10, ttl=60.0, render=render, on_late=late.append, clock=Clock()
    )
    with caplog.at_level(logging.ERROR, logger="bot.webhook.ledger"):
        answer = await ledger.answer(KEY, Producer("x"), 1001.0)
    assert answer == LedgerAnswer(SUCCESS, False, False)
    assert [r.getMessage() for r in caplog.records] == [f"message {KEY}: could not produce a reply"]


async def test_produce_raising_answers_success(ledger: Ledger) -> None:
    async def broken() -> str:
        raise RuntimeError("boom")

    answer = await ledger.ledger.answer(KEY, broken, ledger.clock() + 1.0)
    assert answer == LedgerAnswer(SUCCESS, False, False)


async def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    ledger = Ledger(ttl=60.0, clock=clock)
    produce = Producer("v")
    await ledger.answer(KEY, produce)
    clock.now += 59.9
    assert (await ledger.answer(KEY, produce)).duplicate is True
    clock.now += 0.1  # exactly ttl after the first answer: expired
    assert await ledger.answer(KEY, produce) == LedgerAnswer("<v>", False, False)
    assert produce.runs == 2


async def test_table_stays_within_size() -> None:
    ledger = Ledger(size=3)
    produce = Producer()
    for n in range(10):
        await ledger.answer(f"k{n}", produce)
    assert len(ledger.ledger) == 3
    # the newest are kept, the oldest forgotten
    assert (await ledger.answer("k9", produce)).duplicate is True
    assert (await ledger.answer("k0", produce)).duplicate is False


async def test_expired_entries_are_dropped_on_insert() -> None:
    clock = Clock()
    ledger = Ledger(size=100, ttl=60.0, clock=clock)
    produce = Producer()
    await ledger.answer("old1", produce)
    await ledger.answer("old2", produce)
    clock.now += 61.0
    await ledger.answer("new", produce)
    assert len(ledger.ledger) == 1


# --- a shared table (several instances) -----------------------------------------------------


async def test_second_instance_waits_for_the_first_ones_body() -> None:
    shared = MemoryStorage()
    one, two = Ledger(shared=shared), Ledger(shared=shared)
    owner_produce = Producer("from one", gated=True)
    other_produce = Producer("from two")
    owner = asyncio.create_task(one.answer(KEY, owner_produce))
    await asyncio.sleep(0.01)
    retry = asyncio.create_task(two.answer(KEY, other_produce))
    await asyncio.sleep(0.06)  # the retry polls at least once before the owner finishes
    assert not retry.done()
    owner_produce.release()
    assert await owner == LedgerAnswer("<from one>", False, False)
    assert await retry == LedgerAnswer("<from one>", True, False)
    assert (owner_produce.runs, other_produce.runs) == (1, 0)


async def test_second_instance_after_the_first_finished_gets_the_body_at_once() -> None:
    shared = MemoryStorage()
    one, two = Ledger(shared=shared), Ledger(shared=shared)
    await one.answer(KEY, Producer("done"))
    other_produce = Producer("never")
    assert await two.answer(KEY, other_produce) == LedgerAnswer("<done>", True, False)
    assert other_produce.runs == 0
    assert await shared.get(f"dedup:{KEY}") == b"D<done>"


async def test_second_instance_answers_success_at_its_budget() -> None:
    shared = MemoryStorage()
    one, two = Ledger(shared=shared), Ledger(shared=shared)
    owner_produce = Producer("slow", gated=True)
    owner = asyncio.create_task(one.answer(KEY, owner_produce, budget=1.5))
    await asyncio.sleep(0.01)
    assert await two.answer(KEY, Producer(), budget=0.05) == LedgerAnswer(SUCCESS, True, False)
    owner_produce.release()
    assert (await owner).body == "<slow>"


class DownStorage(MemoryStorage):
    """A shared store that is unreachable for every ephemeral call."""

    async def get(self, key: str) -> bytes | None:
        raise StorageUnavailable("down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StorageUnavailable("down")

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        raise StorageUnavailable("down")


async def test_shared_store_down_falls_back_to_the_local_table() -> None:
    ledger = Ledger(shared=DownStorage())
    produce = Producer("local", gated=True)
    waiting = [asyncio.create_task(ledger.answer(KEY, produce)) for _ in range(2)]
    await asyncio.sleep(0.01)
    produce.release()
    answers = await asyncio.gather(*waiting)
    assert answers == [LedgerAnswer("<local>", False, False), LedgerAnswer("<local>", True, False)]
    assert produce.runs == 1
    assert await ledger.answer(KEY, produce) == LedgerAnswer("<local>", True, False)


async def test_cancelled_request_still_hands_its_result_to_on_late(ledger: Ledger) -> None:
    produce = Producer("orphan", gated=True)
    first = asyncio.create_task(ledger.answer(KEY, produce, budget=1.0))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    # a retry must not wait out its whole budget for an answer nobody will set
    retry = await ledger.answer(KEY, produce, budget=0.05)
    assert retry == LedgerAnswer(SUCCESS, True, False)
    produce.release()
    await ledger.finish()
    assert ledger.late == ["orphan"]


class FrozenStorage(MemoryStorage):
    """A shared store whose reads never answer (a SIGSTOPped Redis)."""

    async def get(self, key: str) -> bytes | None:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_retry_waiting_on_a_frozen_store_answers_success_at_its_budget() -> None:
    ledger = Ledger(shared=FrozenStorage())
    running = PushClaimed(False, False, False, b"R", {})  # another instance runs the message
    started = time.monotonic()
    begun = ledger.ledger.begin(KEY, Producer(), time.monotonic() + 0.2, running)
    answer = begun if isinstance(begun, LedgerAnswer) else await begun
    assert answer == LedgerAnswer(SUCCESS, True, False)
    assert time.monotonic() - started < 0.4


async def test_an_answer_published_elsewhere_is_taken_from_the_claim_at_once() -> None:
    ledger = Ledger(shared=MemoryStorage())
    done = PushClaimed(False, False, False, b"D<from there>", {})
    begun = ledger.ledger.begin(KEY, Producer("never"), time.monotonic() + 1.0, done)
    assert begun == LedgerAnswer("<from there>", True, False)


async def test_answers_are_published_with_the_next_claims_or_on_their_own() -> None:
    shared = MemoryStorage()
    ledger = Ledger(shared=shared)
    await ledger.answer(KEY, Producer("one"))
    # taken by a claim going out now: nothing publishes them on their own any more
    taken = ledger.ledger.take_unpublished()
    assert taken == [(f"dedup:{KEY}", b"D<one>")]
    await asyncio.sleep(0.01)
    assert await shared.get(f"dedup:{KEY}") == b"R"
    # a claim that failed gives them back: they go on their own a moment later
    ledger.ledger.put_back_unpublished(taken)
    await asyncio.sleep(0.01)
    assert await shared.get(f"dedup:{KEY}") == b"D<one>"
    await ledger.answer("k2", Producer("two"))
    await ledger.ledger.flush()  # shutdown: published before the store closes
    assert await shared.get("dedup:k2") == b"D<two>"
