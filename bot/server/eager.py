"""Eager handler start on Python 3.11, which asyncio gives only from 3.12 (`eager_start`).

The reply ledger starts each handler in a task of its own (`bot.webhook.ledger.start_task`):
on 3.12+ eagerly, so a handler that never waits is done before its push's next step and costs
no trip round the event loop. 3.11 has no eager tasks; `start_task_eagerly` does what 3.12's
eager start does, with asyncio's private `_enter_task`/`_leave_task`. It lives here, in the
optional speed layer, behind this one function: without it 3.11 starts handlers lazily, which
is correct, one loop iteration later.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
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
    from asyncio.tasks import _enter_task, _leave_task  # private: 3.11 has no public way

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
    return task


class _Resume(Generic[T]):
    """Carries on a coroutine that has made its first step; its task re-yields what it yielded.

    `finished`: the first step already ended the coroutine (the task has nothing to do).
    """

    __slots__ = ("coro", "finished", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        self.yielded: Any = None
        self.finished = False

    async def run(self) -> T:
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
