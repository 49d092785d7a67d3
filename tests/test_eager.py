"""start_eagerly: no task for coroutines that never suspend; a faithful task for the rest."""

from __future__ import annotations

import asyncio

import pytest

from bot.eager import start_eagerly, wait_until


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
