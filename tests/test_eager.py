"""start_eagerly and start_task: no loop trip for coroutines that never suspend; real tasks."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any

import pytest

from bot.server.eager import start, start_eagerly, start_task, wait_until


async def _immediate(value: int) -> int:
    return value * 2


async def _suspends(value: int) -> int:
    await asyncio.sleep(0.01)
    await asyncio.sleep(0)
    return value + 1


async def _fails_now() -> int:
    raise ValueError("at once")


async def _fails_later() -> int:
    await asyncio.sleep(0.01)
    raise KeyError("later")


async def test_a_coroutine_that_never_suspends_finishes_without_a_task() -> None:
    started = start_eagerly(_immediate(21))
    assert started.task is None and started.value == 42


async def test_a_suspending_coroutine_carries_on_in_a_task() -> None:
    started = start_eagerly(_suspends(1))
    assert started.task is not None and started.value is None
    assert await started.task == 2


async def test_exceptions_in_the_first_step_reach_the_caller() -> None:
    with pytest.raises(ValueError, match="at once"):
        start_eagerly(_fails_now())


async def test_exceptions_after_suspending_reach_the_task() -> None:
    started = start_eagerly(_fails_later())
    assert started.task is not None
    with pytest.raises(KeyError):
        await started.task


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    cleaned: list[str] = []

    async def sleeper() -> int:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append("finally ran")
        return 0

    started = start_eagerly(sleeper())
    assert started.task is not None
    await asyncio.sleep(0)
    started.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await started.task
    assert cleaned == ["finally ran"]


async def test_wait_until_reports_done_or_not_without_cancelling() -> None:
    task = asyncio.ensure_future(asyncio.sleep(0.2, result="x"))
    assert await wait_until(task, 0.01) is False
    assert not task.cancelled()
    assert await wait_until(task, 2.0) is True
    assert task.result() == "x"
    assert await wait_until(task, 0) is True


# -- start_task: the coroutine's own task from its first step -----------------------------------

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="outer")


async def test_start_task_finishes_at_once_inside_its_own_task() -> None:
    outer = asyncio.current_task()
    seen: list[asyncio.Task[Any] | None] = []

    async def handler() -> int:
        seen.append(asyncio.current_task())
        _VAR.set("inner")
        return 7

    started = start_task(handler())
    assert started.task is None and started.value == 7
    assert seen[0] is not None and seen[0] is not outer
    assert asyncio.current_task() is outer  # the caller's task is current again
    assert _VAR.get() == "outer"  # the handler's context variables stay in its task


async def test_start_task_keeps_one_task_across_suspension() -> None:
    seen: list[asyncio.Task[Any] | None] = []

    async def handler() -> str:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0.01)
        seen.append(asyncio.current_task())
        return "done"

    started = start_task(handler())
    assert started.task is not None
    assert await started.task == "done"
    assert seen == [started.task, started.task]


async def test_a_timeout_entered_in_the_first_step_cancels_the_handler_not_the_caller() -> None:
    async def handler() -> str:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "slept"

    started = start_task(handler())
    assert started.task is not None
    assert await asyncio.wait_for(started.task, 5) == "timed out"
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_task_group_opened_in_the_first_step_works() -> None:
    async def handler() -> int:
        async with asyncio.TaskGroup() as group:
            job = group.create_task(asyncio.sleep(0, result=3))
        return job.result()

    started = start_task(handler())
    assert started.task is not None
    assert await started.task == 3


async def test_start_task_raises_what_the_first_step_raises() -> None:
    with pytest.raises(ValueError, match="at once"):
        start_task(_fails_now())
    await asyncio.sleep(0)  # the task made for it (3.11) ends quietly


def test_start_task_outside_any_task_works_from_a_loop_callback() -> None:
    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[object]] = loop.create_future()

        async def handler() -> str:
            async with asyncio.timeout(1):
                await asyncio.sleep(0)
            return "ok"

        def callback() -> None:
            started = start_task(handler())
            assert started.task is not None and asyncio.current_task() is None
            started.task.add_done_callback(lambda t: done.set_result([t.result()]))

        loop.call_soon(callback)
        return await done

    assert asyncio.run(main()) == ["ok"]


async def test_start_runs_a_task_free_coroutine_without_a_task_only_on_3_11() -> None:
    outer = asyncio.current_task()
    seen: list[asyncio.Task[Any] | None] = []

    async def handler() -> int:
        seen.append(asyncio.current_task())
        return 1

    assert start(handler(), needs_task=False).value == 1
    assert start(handler()).value == 1
    if sys.version_info >= (3, 12):  # tasks start eagerly there: always a task of its own
        assert seen[0] not in (None, outer)
    else:
        assert seen[0] is outer  # no task made: the caller's is still current
    assert seen[1] not in (None, outer)
