"""The fast path's pushes answered step by step: each step over every push of a batch in turn.

`bot.server.fastpath` queues the pushes it reads and hands them here in arrival order, a few
at a time (at most one per connection). The steps of `bot.webhook.pipeline` then run each over
the whole batch before the next begins: query and signature; the timestamp window, parsing and
decryption; the nonces and the dedup claims; the handlers; metrics, the log line and the reply's
encryption. Every push gets exactly the answer `handle_push` would give it; only the
interleaving differs. With a shared store (Redis) the claims of the whole batch are one round
trip, awaited in one task for the batch, after which the remaining steps run as without.

Why: a push's path is long and made of many small steps. Run push after push, each step finds
its code and data pushed out of the CPU's caches by the others; run step by step, each runs
warm (bench/README.md has the measurements).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple, Protocol

from bot.server.eager import eager_starter
from bot.storage.base import PushClaimed
from bot.webhook.pipeline import (
    Admitted,
    Answer,
    Replied,
    admit,
    answer_message,
    check_query,
    claim,
    conclude,
    screen,
)
from bot.webhook.services import Services

__all__ = ["Asker", "Pending", "answer_batch"]

log = logging.getLogger(__name__)

_METHOD = "POST"


class Asker(Protocol):
    """Whoever waits for a push's answer (a fast-path connection)."""

    def respond(self, answer: Answer) -> None:
        """Take the answer."""

    def fail(self) -> None:
        """Answer a failure nothing in the request explains (a bug): 500."""

    def follow(self, task: asyncio.Future[Answer]) -> None:
        """Take the answer from `task` once it is done (the handler waits for something)."""

    def hold(self, task: asyncio.Future[None]) -> None:
        """Wait: the answer comes through `respond`, `fail` or `follow` before `task` is
        done (a batch's shared claim); shutdown waits for `task`, and its cancel drops the
        connection."""


class Pending(NamedTuple):
    """One push waiting in a batch: its connection, raw query, body and arrival time."""

    asker: Asker
    raw_query: bytes
    body: bytes
    started: float  # time.perf_counter() at arrival


class _Signed(NamedTuple):
    asker: Asker
    query: dict[str, str]
    body: bytes
    started: float


class _Checked(NamedTuple):
    asker: Asker
    admitted: Admitted
    started: float


class _Ready(NamedTuple):
    asker: Asker
    admitted: Admitted
    replied: Replied
    started: float


def answer_batch(
    services: Services,
    path: str,
    batch: list[Pending],
    parse_query: Callable[[bytes], dict[str, str]],
    flush: Callable[[], None] | None = None,
) -> None:
    """Answer every push of `batch`, each step over all of them before the next step.

    `flush` writes the answers given so far: called when the answers of a batch that waited
    for its shared claim are given, so they go out at once rather than a loop iteration later.
    """
    # 1. the query and its signature: an unsigned push costs nothing more
    signed: list[_Signed] = []
    for asker, raw_query, body, started in batch:
        try:
            query = parse_query(raw_query)
            refused = check_query(services, query, _METHOD, path)
        except Exception:
            _failed(asker, path)
            continue
        if refused is None:
            signed.append(_Signed(asker, query, body, started))
        else:
            asker.respond(refused)
    # 2. the timestamp window, parse, decrypt
    deadline = time.monotonic() + services.config.reply_budget
    checked: list[_Checked] = []
    for asker, query, body, started in signed:
        try:
            admitted = admit(services, query, body, deadline, _METHOD, path)
        except Exception:
            _failed(asker, path)
            continue
        if isinstance(admitted, Admitted):
            checked.append(_Checked(asker, admitted, started))
        else:
            asker.respond(admitted)
    if not checked:
        return
    # 3. the nonces and the dedup claims: at once in process, or all in one round trip
    if not services.local:
        _claim_in_a_task(services, path, checked, flush)
        return
    screened: list[_Checked] = []
    for item in checked:
        try:
            refused = screen(services, item.admitted, _METHOD, path)
        except Exception:
            _failed(item.asker, path)
            continue
        if refused is None:
            screened.append(item)
        else:
            item.asker.respond(refused)
    _answer(services, path, screened, None)


def _answer(
    services: Services,
    path: str,
    checked: list[_Checked],
    claims: list[PushClaimed | Answer] | None,
) -> None:
    """Steps 4 and 5 of `answer_batch`: the handlers, then the answers (`claims`: each push's
    shared claim, in order, or its refusal; None without a shared store)."""
    # 4. the handlers, through the reply ledger
    ready: list[_Ready] = []
    for n, (asker, admitted, started) in enumerate(checked):
        try:
            claimed = None
            if claims is not None:
                outcome = claims[n]
                if isinstance(outcome, Answer):
                    asker.respond(outcome)
                    continue
                claimed = outcome
            replied = answer_message(services, admitted, claimed)
        except Exception:
            _failed(asker, path)
            continue
        if isinstance(replied, Replied):
            ready.append(_Ready(asker, admitted, replied, started))
        else:
            _follow(asker, _conclude_later(services, admitted, replied, started), path)
    # 5. metrics, the log line, the reply's encryption
    for asker, admitted, replied, started in ready:
        try:
            answer = conclude(services, admitted, replied, started)
        except Exception:
            _failed(asker, path)
            continue
        asker.respond(answer)


def _claim_in_a_task(
    services: Services, path: str, checked: list[_Checked], flush: Callable[[], None] | None
) -> None:
    """Steps 3 to 5 with a shared store: one task for the batch's one round trip, started
    eagerly so the claims are sent now; it answers the batch's connections itself."""
    loop = asyncio.get_running_loop()
    held: asyncio.Future[None] = loop.create_future()  # done when the task is
    for item in checked:
        item.asker.hold(held)
    try:
        task: asyncio.Future[None] = _start(_claim_and_answer(services, path, checked, flush))
    except Exception:
        log.exception("POST %s: could not start a batch's claim", path)
        held.set_exception(RuntimeError("the batch's claim did not start"))
        return
    _claiming.add(task)
    task.add_done_callback(lambda done: _settle(done, held))
    held.add_done_callback(lambda _: task.cancel() if held.cancelled() else None)


_start = eager_starter()

# The batches waiting for their shared claim (a reference, so none is collected meanwhile).
_claiming: set[asyncio.Future[None]] = set()


def _settle(task: asyncio.Future[None], held: asyncio.Future[None]) -> None:
    _claiming.discard(task)
    if held.done():
        return
    if task.cancelled():
        held.cancel()
    elif (exc := task.exception()) is not None:
        held.set_exception(exc)
    else:
        held.set_result(None)


async def _claim_and_answer(
    services: Services, path: str, checked: list[_Checked], flush: Callable[[], None] | None
) -> None:
    admitted = [item.admitted for item in checked]
    claims = await _claim_together(services, path, admitted)
    _answer(services, path, checked, claims)
    if flush is not None:
        flush()


_Claims = list[PushClaimed | Answer]
_Waiting = list[tuple[list[Admitted], "asyncio.Future[_Claims]"]]

# Per app (id of its Services), while a claim is in flight: the batches that came meanwhile.
# They go together in the next claim, one round trip for all of them: a claim costs the client
# about as much for 1 push as for 50, so under load fewer, larger claims (and no more than one
# in flight per app) carry more pushes with less work.
_waiting: dict[int, _Waiting] = {}


async def _claim_together(services: Services, path: str, admitted: list[Admitted]) -> _Claims:
    """`claim` for a batch: now when no claim is in flight, else with the next one."""
    waiting = _waiting.get(id(services))
    if waiting is not None:
        answer: asyncio.Future[_Claims] = asyncio.get_running_loop().create_future()
        waiting.append((admitted, answer))
        return await answer
    _waiting[id(services)] = []
    try:
        return await claim(services, admitted, _METHOD, path)  # never raises but cancelled
    finally:
        _claim_next(services, path)


def _claim_next(services: Services, path: str) -> None:
    """Send the batches that waited, as one claim (in a task), or end the in-flight state."""
    waiting = _waiting.pop(id(services), [])
    waiting = [(admitted, answer) for admitted, answer in waiting if not answer.done()]
    if not waiting:
        return
    _waiting[id(services)] = []
    task = asyncio.get_running_loop().create_task(_claim_waiting(services, path, waiting))
    _claiming.add(task)
    task.add_done_callback(_claiming.discard)


async def _claim_waiting(services: Services, path: str, waiting: _Waiting) -> None:
    try:
        claims = await claim(services, [a for batch, _ in waiting for a in batch], _METHOD, path)
    except BaseException:
        for _, answer in waiting:
            answer.cancel()  # shutdown: those batches' connections are dropped
        raise
    finally:
        _claim_next(services, path)
    start = 0
    for admitted, answer in waiting:
        if not answer.done():
            answer.set_result(claims[start : start + len(admitted)])
        start += len(admitted)


async def _conclude_later(
    services: Services, admitted: Admitted, replied: Awaitable[Replied], started: float
) -> Answer:
    return conclude(services, admitted, await replied, started)


def _follow(asker: Asker, push: Coroutine[Any, Any, Answer], path: str) -> None:
    try:
        task = asyncio.get_running_loop().create_task(push)
    except Exception:
        push.close()
        _failed(asker, path)
        return
    asker.follow(task)


def _failed(asker: Asker, path: str) -> None:
    # Nothing a request carries gets here (each step contains its failures): a bug.
    log.exception("%s %s: unexpected failure", _METHOD, path)
    asker.fail()
