"""Run a coroutine's first step at once; make a task only if it really suspends.

Most handlers never wait for anything (the profile and the preferences are cached), so
creating a task and waiting on it would cost more than the handler itself. Python 3.12 has
eager tasks for this; on 3.11 we drive the first step ourselves and hand a coroutine that
suspended to a task that carries on from where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Started(Generic[T]):
    """A coroutine after its first step: finished (`task` is None) or running in `task`."""

    __slots__ = ("task", "value")

    def __init__(self, task: asyncio.Task[T] | None, value: T | None) -> None:
        self.task = task
        self.value = value


def start_eagerly(coro: Coroutine[Any, Any, T]) -> Started[T]:
    """Step `coro` now; exceptions it raises in that step propagate to the caller."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return Started(None, stop.value)
    return Started(asyncio.get_running_loop().create_task(_carry_on(coro, yielded)), None)


async def _carry_on(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    return await _Resume(coro, yielded)


class _Resume(Generic[T]):
    """Re-yields what the coroutine yielded (a future, or None) to the task driving us."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, T]:
        yielded = self.yielded
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # thrown in by the task (cancellation): pass it on
                try:
                    yielded = self.coro.throw(exc)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                continue
            try:
                yielded = self.coro.send(value)
            except StopIteration as stop:
                result = stop.value
                return result


async def wait_until(task: asyncio.Future[Any], seconds: float) -> bool:
    """Wait up to `seconds` for `task`; True when it is done (never cancels it)."""
    if task.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    task.add_done_callback(wake)
    timer = loop.call_later(max(0.0, seconds), wake, None)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()
