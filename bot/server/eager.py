"""Run a coroutine's first step at once, so work that never waits costs no trip round the loop.

Most pushes never wait for anything (the profile and the preferences are cached), and a task
that is scheduled, stepped on the next loop iteration and then awaited would cost more than the
handler itself. Two ways to start a coroutine at once:

* `start_task` runs it inside its own task from the first step: `asyncio.current_task()`,
  `asyncio.timeout()`, task groups and context variables behave exactly as in any task. Python
  3.12+ does this itself (`eager_start=True`); on 3.11 the task is made first and entered for
  the first step with asyncio's own `_enter_task`/`_leave_task` (what 3.12's eager start does).
  Handlers always start this way.
* `start_eagerly` steps it with no task at all: only for our own code that never asks for its
  task (the push pipeline when nothing is shared); if it suspends, a task carries on.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_NATIVE_EAGER = sys.version_info >= (3, 12)
if not _NATIVE_EAGER:  # pragma: no branch - one of the two per interpreter
    from asyncio.tasks import _enter_task, _leave_task


class Started(Generic[T]):
    """A coroutine after its first step: finished (`task` is None) or running in `task`."""

    __slots__ = ("task", "value")

    def __init__(self, task: asyncio.Task[T] | None, value: T | None) -> None:
        self.task = task
        self.value = value


def start(coro: Coroutine[Any, Any, T], *, needs_task: bool = True) -> Started[T]:
    """`start_task`; `start_eagerly` for a coroutine that needs no task, where tasks cannot
    start eagerly by themselves (3.11: on 3.12+ `asyncio.wait_for` itself wants a task)."""
    if needs_task or _NATIVE_EAGER:
        return start_task(coro)
    return start_eagerly(coro)


def start_eagerly(coro: Coroutine[Any, Any, T]) -> Started[T]:
    """Step `coro` now, outside any task; exceptions of that step propagate to the caller."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return Started(None, stop.value)
    return Started(asyncio.get_running_loop().create_task(_Resume(coro, yielded).run()), None)


def start_task(coro: Coroutine[Any, Any, T]) -> Started[T]:
    """Step `coro` now inside a task of its own; exceptions of that step propagate to the caller.

    A coroutine that finishes in its first step gives `Started(None, value)`; its task (on
    3.11) then ends on the next loop iteration without running anything.
    """
    loop = asyncio.get_running_loop()
    if _NATIVE_EAGER:
        task: asyncio.Task[T] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        if task.done():
            return Started(None, task.result())
        return Started(task, None)
    context = contextvars.copy_context()
    resume: _Resume[T] = _Resume(coro, None)
    task = loop.create_task(resume.run(), context=context)
    current = asyncio.current_task(loop)
    if current is not None:
        _leave_task(loop, current)
    _enter_task(loop, task)
    try:
        resume.yielded = context.run(coro.send, None)
    except StopIteration as stop:
        resume.finished = True
        resume.value = stop.value
        return Started(None, stop.value)
    except BaseException:
        resume.finished = True  # the caller gets the exception; the task ends quietly
        raise
    finally:
        _leave_task(loop, task)
        if current is not None:
            _enter_task(loop, current)
    return Started(task, None)


class _Resume(Generic[T]):
    """Carries on a coroutine that has made its first step; its task re-yields what it yielded.

    `finished`: the first step already ended the coroutine (the task just returns `value`).
    """

    __slots__ = ("coro", "finished", "value", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded
        self.finished = False
        self.value: T | None = None

    async def run(self) -> T:
        if self.finished:
            return self.value  # type: ignore[return-value]
        return await self

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
