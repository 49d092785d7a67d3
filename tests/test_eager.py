"""Handlers start eagerly in a task of their own: no loop trip when they never wait.

`eager_starter()` (the speed layer: 3.12+'s `eager_start`, 3.11's own equivalent) and the
ledger's default `start_task` (eager on 3.12+, lazy on 3.11) both give real tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import weakref
from collections.abc import Coroutine
from typing import Any

import pytest

from bot.server.eager import eager_starter
from bot.webhook.ledger import Starter, start_task, wait_until

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="outer")

STARTERS = [pytest.param(eager_starter(), id="eager_starter")]


async def _fails_now() -> int:
    raise ValueError("at once")


@pytest.mark.parametrize("start", STARTERS)
async def test_a_handler_that_never_waits_is_done_at_once_inside_its_own_task(
    start: Starter[Any],
) -> None:
    outer = asyncio.current_task()
    seen: list[asyncio.Task[Any] | None] = []

    async def handler() -> int:
        seen.append(asyncio.current_task())
        _VAR.set("inner")
        return 7

    future = start(handler())
    assert future.done() and future.result() == 7
    assert seen[0] is not None and seen[0] is not outer
    assert asyncio.current_task() is outer  # the caller's task is current again
    assert _VAR.get() == "outer"  # the handler's context variables stay in its task


@pytest.mark.parametrize("start", STARTERS)
async def test_one_task_across_suspension(start: Starter[Any]) -> None:
    seen: list[asyncio.Task[Any] | None] = []

    async def handler() -> str:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0.01)
        seen.append(asyncio.current_task())
        return "done"

    future = start(handler())
    assert not future.done()
    assert await future == "done"
    assert seen == [future, future]


@pytest.mark.parametrize("start", STARTERS)
async def test_the_first_step_runs_in_a_real_task_that_libraries_can_key_on(
    start: Starter[Any],
) -> None:
    # anyio (so httpx) keeps per-task state in a WeakKeyDictionary keyed by the current task
    states: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = weakref.WeakKeyDictionary()

    async def handler() -> str:
        task = asyncio.current_task()
        assert isinstance(task, asyncio.Task)
        states[task] = task.get_name()
        await asyncio.sleep(0)
        return states[task]

    future = start(handler())
    assert await future == future.get_name()  # type: ignore[attr-defined]


@pytest.mark.parametrize("start", STARTERS)
async def test_a_task_factory_that_awaits_the_coroutine_carries_a_waiting_handler(
    start: Starter[Any],
) -> None:
    loop = asyncio.get_running_loop()
    wrapped: list[str] = []

    async def traced(coro: Coroutine[Any, Any, Any]) -> Any:
        wrapped.append("in")
        return await coro  # as sentry-sdk's and many tracers' factories do

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        return asyncio.Task(traced(coro), loop=loop, **kwargs)

    async def handler() -> str:
        await asyncio.sleep(0.01)
        return "waited"

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        assert await start(handler()) == "waited"
    finally:
        loop.set_task_factory(None)
    assert wrapped


@pytest.mark.parametrize("start", STARTERS)
async def test_the_task_seen_in_the_first_step_cancels_the_handler_later(
    start: Starter[Any],
) -> None:
    first: list[asyncio.Task[Any] | None] = []
    cleaned: list[bool] = []

    async def handler() -> None:
        first.append(asyncio.current_task())
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    future = start(handler())
    await asyncio.sleep(0)
    assert first[0] is not None and first[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    assert future.cancelled() and cleaned == [True]


@pytest.mark.parametrize("start", STARTERS)
async def test_a_handler_cancelled_before_its_task_runs_sees_the_cancellation(
    start: Starter[Any],
) -> None:
    cleaned: list[bool] = []

    async def handler() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)  # its finally runs now, not when it is garbage-collected

    future = start(handler())
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    assert cleaned == [True]


@pytest.mark.parametrize("start", STARTERS)
async def test_a_handler_that_cancels_itself_in_its_first_step_is_cancelled(
    start: Starter[Any],
) -> None:
    async def returns() -> int:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        return 1

    async def waits() -> int:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await asyncio.sleep(10)
        return 2

    for handler in (returns, waits):
        future = start(handler())
        await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await future
        assert future.cancelled()


@pytest.mark.parametrize("start", STARTERS)
async def test_a_timeout_entered_in_the_first_step_cancels_the_handler_not_the_caller(
    start: Starter[Any],
) -> None:
    async def handler() -> str:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "slept"

    assert await asyncio.wait_for(start(handler()), 5) == "timed out"
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


@pytest.mark.parametrize("start", STARTERS)
async def test_a_task_group_opened_in_the_first_step_works(start: Starter[Any]) -> None:
    async def handler() -> int:
        async with asyncio.TaskGroup() as group:
            job = group.create_task(asyncio.sleep(0, result=3))
        return job.result()

    assert await start(handler()) == 3


@pytest.mark.parametrize("start", STARTERS)
async def test_what_the_first_step_raises_is_the_futures_exception(start: Starter[Any]) -> None:
    future = start(_fails_now())
    assert future.done()
    with pytest.raises(ValueError, match="at once"):
        future.result()
    await asyncio.sleep(0)  # the task made for it (3.11) ends quietly


@pytest.mark.parametrize("start", STARTERS)
def test_starting_from_a_loop_callback_outside_any_task(start: Starter[Any]) -> None:
    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[object]] = loop.create_future()

        async def handler() -> str:
            async with asyncio.timeout(1):  # needs a current task
                await asyncio.sleep(0)
            return "ok"

        def callback() -> None:
            future = start(handler())
            assert asyncio.current_task() is None
            future.add_done_callback(lambda t: done.set_result([t.result()]))

        loop.call_soon(callback)
        return await done

    assert asyncio.run(main()) == ["ok"]


async def test_the_ledgers_own_start_is_eager_on_3_12_and_lazy_on_3_11() -> None:
    async def handler() -> int:
        return 1

    future = start_task(handler())
    assert future.done() is (sys.version_info >= (3, 12))
    assert await future == 1


async def test_wait_until_reports_done_or_not_without_cancelling() -> None:
    task = asyncio.ensure_future(asyncio.sleep(0.05, result="x"))
    assert await wait_until(task, 0.01) is False
    assert not task.cancelled()
    assert await wait_until(task, 2.0) is True
    assert task.result() == "x"
    assert await wait_until(task, 0) is True
