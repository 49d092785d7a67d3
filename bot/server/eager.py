"""Eager handler start on Python 3.11, which asyncio gives only from 3.12 (`eager_start`).

The reply ledger starts each handler in a task of its own (`bot.webhook.ledger.start_task`):
on 3.12+ eagerly, so a handler that never waits is done before its push's next step and costs
no trip round the event loop. 3.11 has no eager tasks; `_start_task_eagerly_311` does what
3.12's eager start does, with asyncio's private `_enter_task`/`_leave_task`. It lives here, in
the optional speed layer, behind `eager_starter()`: without it 3.11 starts handlers lazily,
which is correct, one loop iteration later.

Why not simply a task made before the first step: on 3.11 a task schedules its first step as it
is made, so every push would pay for a task, a loop callback and a second coroutine, about 13 µs
where 3.12's eager start costs 1 (bench/README.md, "Measured"). Most handlers never wait, so the
first step runs under a stand-in (`_FirstStep`) and a real task is made only for a handler that
waits; the stand-in then forwards to it.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from asyncio.tasks import _enter_task, _leave_task  # private: 3.11 has no public way
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar, cast

from bot.webhook.ledger import Starter, start_task

T = TypeVar("T")

__all__ = ["eager_starter"]


def eager_starter() -> Starter[Any]:
    """How handlers start eagerly on this interpreter."""
    return start_task if sys.version_info >= (3, 12) else _start_task_eagerly_311


class _FirstStep:
    """What `asyncio.current_task()` is while a handler makes its first step (3.11).

    What asyncio asks of the current task there — `cancel`, `uncancel` and `cancelling` for
    `asyncio.timeout` and `TaskGroup`, `get_loop` — it answers; once the handler waits, a real
    task carries it on and the stand-in forwards everything to that task, so a timeout or task
    group entered in the first step acts on the handler's own task. A cancel asked for during
    the first step itself is handed to that task (or cancels the result if there is none).
    The one visible difference from 3.12: the object seen as current in the first step is this
    stand-in, not the task seen later.
    """

    __slots__ = ("_cancels", "_loop", "_message", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cancels = 0
        self._message: Any = None
        self.task: asyncio.Task[Any] | None = None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def cancel(self, msg: Any = None) -> bool:
        if self.task is not None:
            return self.task.cancel(msg)
        self._cancels += 1
        self._message = msg
        return True

    def uncancel(self) -> int:
        if self.task is not None:
            return self.task.uncancel()
        self._cancels = max(0, self._cancels - 1)
        return self._cancels

    def cancelling(self) -> int:
        return self.task.cancelling() if self.task is not None else self._cancels

    def done(self) -> bool:
        return self.task.done() if self.task is not None else False

    def __getattr__(self, name: str) -> Any:
        if self.task is None:
            raise AttributeError(f"a handler's first step has no {name!r} yet")
        return getattr(self.task, name)


def _start_task_eagerly_311(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """`coro`'s first step now; a task of its own only if it waits (3.11's `eager_start`).

    A coroutine that finishes (or raises) in its first step gives a done future and no task.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    step = _FirstStep(loop)
    stand_in = cast("asyncio.Task[Any]", step)  # what asyncio asks of a task, it answers
    current = asyncio.current_task(loop)
    if current is not None:
        _leave_task(loop, current)
    _enter_task(loop, stand_in)
    try:
        yielded = context.run(coro.send, None)
    except StopIteration as stop:
        done: asyncio.Future[T] = loop.create_future()
        if step.cancelling():
            done.cancel(step._message)
        else:
            done.set_result(stop.value)
        return done
    except asyncio.CancelledError as exc:
        cancelled: asyncio.Future[T] = loop.create_future()
        cancelled.cancel(*exc.args)
        return cancelled
    except Exception as exc:
        failed: asyncio.Future[T] = loop.create_future()
        failed.set_exception(exc)
        return failed
    finally:
        _leave_task(loop, stand_in)
        if current is not None:
            _enter_task(loop, current)
    task = loop.create_task(_Resume(coro, yielded), context=context)
    for _ in range(step.cancelling()):  # asked for in the first step: the task's now
        task.cancel(step._message)
    step.task = task
    return task


class _Resume(Coroutine[Any, T, T]):
    """A coroutine that has made its first step, as its task carries it on (3.11).

    To the task it is the coroutine itself: the first `send` gives back what the first step
    yielded, then every `send` and `throw` goes straight to the handler's coroutine, so a
    cancellation that reaches the task before its first step still reaches the handler.
    """

    __slots__ = ("coro", "resumed", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded
        self.resumed = False

    def send(self, value: Any) -> Any:
        if not self.resumed:
            self.resumed = True
            yielded, self.yielded = self.yielded, None
            return yielded
        return self.coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self.resumed = True
        if val is None and tb is None:
            return self.coro.throw(typ)
        return self.coro.throw(typ, val, tb)

    def close(self) -> None:
        self.coro.close()

    def __getattr__(self, name: str) -> Any:
        if name in ("__name__", "__qualname__"):  # the task's repr names the handler
            return getattr(self.coro, name)
        raise AttributeError(name)

    def __await__(self) -> Generator[Any, Any, T]:
        raise TypeError("a handler's resumed coroutine is run by its own task, not awaited")
