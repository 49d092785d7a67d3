"""The fast path's pushes answered step by step: each step over every push of a batch in turn.

`bot.server.fastpath` queues the pushes it reads and hands them here in arrival order, a few
at a time (at most one per connection). The steps of `bot.webhook.pipeline` then run each over
the whole batch before the next begins: query and signature; replay guard, parsing and
decryption; the handlers; metrics, the log line and the reply's encryption. Every push gets
exactly the answer `handle_push` would give it; only the interleaving differs.

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

from bot.webhook.pipeline import (
    Admitted,
    Answer,
    Replied,
    admit,
    answer_message,
    check_query,
    conclude,
    handle_push,
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

    def follow(self, task: asyncio.Task[Answer]) -> None:
        """Take the answer from `task` once it is done (the handler waits for something)."""


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
) -> None:
    """Answer every push of `batch`, each step over all of them before the next step."""
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
    if not services.local:  # the replay guard and the ledger talk to Redis: a task each
        for asker, query, body, started in signed:
            _follow(asker, handle_push(services, query, body, _METHOD, path, started), path)
        return
    # 2. replay guard, parse, decrypt
    deadline = time.monotonic() + services.config.reply_budget
    replay = services.replay
    checked: list[_Checked] = []
    for asker, query, body, started in signed:
        try:
            verdict = replay.check_now(query["timestamp"], query["nonce"], body)
            admitted = admit(services, query, body, verdict, deadline, _METHOD, path)
        except Exception:
            _failed(asker, path)
            continue
        if isinstance(admitted, Admitted):
            checked.append(_Checked(asker, admitted, started))
        else:
            asker.respond(admitted)
    # 3. the handlers, through the reply ledger
    ready: list[_Ready] = []
    for asker, admitted, started in checked:
        try:
            replied = answer_message(services, admitted)
        except Exception:
            _failed(asker, path)
            continue
        if isinstance(replied, Replied):
            ready.append(_Ready(asker, admitted, replied, started))
        else:
            _follow(asker, _conclude_later(services, admitted, replied, started), path)
    # 4. metrics, the log line, the reply's encryption
    for asker, admitted, replied, started in ready:
        try:
            answer = conclude(services, admitted, replied, started)
        except Exception:
            _failed(asker, path)
            continue
        asker.respond(answer)


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
