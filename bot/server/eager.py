"""Eager handler start on Python 3.11, which asyncio gives only from 3.12 (`eager_start`).

The reply ledger starts each handler in a task of its own (`bot.webhook.ledger.start_task`):
on 3.12+ eagerly, so a handler that never waits is done before its push's next step and costs
no trip round the event loop. 3.11 has no eager tasks; `_start_task_eagerly_311` does what
3.12's eager start does, with asyncio's private `_enter_task`/`_leave_task`. It lives here, in
the optional speed layer, behind `eager_starter()`: without it 3.11 starts handlers lazily,
which is correct, one loop iteration later.

The first step runs inside the real task that later carries the handler on (made first, so
scheduled at once on 3.11, whose tasks cannot start eagerly): libraries that key state on the
current task (anyio, so httpx), task factories that wrap the coroutine, `asyncio.timeout` and
task groups see exactly what they see on 3.12. A stand-in task would save about 5 µs a push
and was tried: it broke those (bench/README.md, "Measured").
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from asyncio.tasks import _enter_task, _leave_task  # private: 3.11 has no public way
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

from bot.webhook.ledger import Starter, start_task

T = TypeVar("T")

__all__ = ["eager_starter"]


def eager_starter() -> Starter[Any]:
    """How handlers start eagerly on this interpreter."""
    return start_task if sys.version_info >= (3, 12) else _start_task_eagerly_311


def _start_task_eagerly_311(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """`coro`'s first step now, inside a task of its own (3.11: what 3.12's `eager_start` does).

    A coroutine that finishes (or raises) in its first step gives a done future; the task made
    for that step then ends on the next loop iteration without running anything.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    resume: _Resume[T] = _Resume(coro)
    task = loop.create_task(resume.run(), context=context)
    current = asyncio.current_task(loop)
    if current is not None:
        _leave_task(loop, current)
    _enter_task(loop, task)
    try:
        resume.yielded = context.run(coro.send, None)
    except StopIteration as stop:
        resume.finished = True
        done: asyncio.Future[T] = loop.create_future()
        if task.cancelling():  # it cancelled its own task, then returned: cancelled, as on 3.12
            done.cancel()
        else:
            done.set_result(stop.value)
        return done
    except BaseException as exc:
        resume.finished = True  # the task ends quietly; the future carries the exception
        if not isinstance(exc, Exception):
            raise
        failed: asyncio.Future[T] = loop.create_future()
        failed.set_exception(exc)
        return failed
    finally:
        _leave_task(loop, task)
        if current is not None:
            _enter_task(loop, current)
    task.add_done_callback(resume.cancelled_before_resuming)
    return task


class _Resume(Generic[T]):
    """Carries on a coroutine that has made its first step; its task re-yields what it yielded.

    `finished`: the first step already ended the coroutine (the task has nothing to do).
    """

    __slots__ = ("coro", "finished", "started", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        self.yielded: Any = None
        self.finished = False
        self.started = False  # the task has begun `run`

    def cancelled_before_resuming(self, task: asyncio.Future[Any]) -> None:
        """A cancel that ended the task before its first step never reached the coroutine
        (it was thrown into `run`, not yet started): throw it in now, as a task would have."""
        if self.finished or self.started or not task.cancelled():
            return
        self.finished = True
        if isinstance(self.yielded, asyncio.Future):
            self.yielded.cancel()  # what it waited on is cancelled with it, as on 3.12
        try:
            self.coro.throw(asyncio.CancelledError())
        except (Exception, asyncio.CancelledError):  # it ended, one way or another
            return
        self.coro.close()  # it awaited again while cancelled: no task can carry it on

    async def run(self) -> T:
        self.started = True  # from here on the task itself carries the coroutine
        if self.finished:
            return None  # type: ignore[return-value]  # nobody reads this task's result
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
