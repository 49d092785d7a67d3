"""Answers waiting for the follower's next message (no customer-service API, a quota spent,
a send that kept failing): kept durably in the follower's record until given or expired.

With Redis the follower's record is read anyway, in the same round trip as the push's claim,
so finding no waiting answer costs nothing more; the embedded store keeps the set of followers
answers wait for in memory (and in one durable record, read at start), so a push from anyone
else reads nothing. Each answer
is one field `pending:<time>` holding JSON: the customer-service payload (`msgtype` and its
object), the handler's name and when it expires.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from bot.followers.store import FollowerStore
from bot.storage.base import Storage

log = logging.getLogger(__name__)

PREFIX = "pending:"
INDEX = "pending-index"
"""The durable record naming the followers answers wait for (read once at start)."""


class PendingAnswer(NamedTuple):
    """One waiting answer."""

    field: str  # its field in the follower's record (orders answers by when they were kept)
    payload: dict[str, Any]  # as `customer_service_payload` builds it
    handler: str
    expires: float  # wall-clock time


def waiting_in(record: Mapping[str, str]) -> list[PendingAnswer]:
    """The answers a follower's record holds, oldest first (expired ones included)."""
    found = []
    for name, value in record.items():
        if not name.startswith(PREFIX):
            continue
        try:
            data = json.loads(value)
            found.append(PendingAnswer(name, dict(data["p"]), str(data["h"]), float(data["e"])))
        except (ValueError, KeyError, TypeError):
            found.append(PendingAnswer(name, {}, "?", 0.0))  # unreadable: dropped as expired
    found.sort(key=lambda a: a.field)
    return found


class PendingAnswers:
    """Keeps answers for followers' next messages and gives them back once."""

    def __init__(
        self,
        storage: Storage,
        *,
        ttl: float,
        limit: int,
        observe: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._ttl = ttl
        self._limit = limit
        self._observe = observe
        self._clock = clock
        self._last = 0
        self.followers: set[str] = set()  # whom answers wait for (this process's view)

    async def load(self) -> None:
        """Read which followers answers wait for (at start, before the first push)."""
        self.followers = set(await self._storage.get_record(INDEX))

    async def keep(self, openid: str, payload: dict[str, Any], handler: str, why: str) -> None:
        """Keep `payload` for `openid`'s next message (durably, before this returns)."""
        record = FollowerStore.record_name(openid)
        stamp = max(time.time_ns(), self._last + 1)  # strictly increasing: keeps their order
        self._last = stamp
        value = json.dumps(
            {"p": payload, "h": handler, "e": self._clock() + self._ttl}, ensure_ascii=False
        )
        await self._storage.set_record_field(record, f"{PREFIX}{stamp:020d}", value)
        if openid not in self.followers:
            await self._storage.set_record_field(INDEX, openid, "1")
            self.followers.add(openid)
        self._note("kept")
        log.info("answer of %s kept for the follower's next message (%s)", handler, why)
        waiting = waiting_in(await self._storage.get_record(record))
        for extra in waiting[: max(0, len(waiting) - self._limit)]:
            await self._storage.delete_record_field(record, extra.field)
            self._note("dropped")
            log.warning(
                "answer of %s dropped: more than %d answers wait for one follower",
                extra.handler,
                self._limit,
            )

    async def take(self, openid: str, record: Mapping[str, str]) -> list[PendingAnswer]:
        """The live answers `record` holds for `openid`, removed from the store; expired ones
        are removed and counted."""
        waiting = waiting_in(record)
        if openid in self.followers:
            self.followers.discard(openid)
            await self._storage.delete_record_field(INDEX, openid)
        if not waiting:
            return []
        name = FollowerStore.record_name(openid)
        now = self._clock()
        live = []
        for answer in waiting:
            await self._storage.delete_record_field(name, answer.field)
            if answer.expires <= now:
                self._note("expired")
                log.warning("answer of %s expired before the follower wrote again", answer.handler)
            else:
                live.append(answer)
        return live

    async def sweep(self, most: int = 1000) -> int:
        """Remove (and count) the expired answers of up to `most` followers answers wait for,
        so an answer expires even when its follower never writes again; how many expired."""
        expired = 0
        now = self._clock()
        for openid in list(await self._storage.get_record(INDEX))[:most]:
            name = FollowerStore.record_name(openid)
            waiting = waiting_in(await self._storage.get_record(name))
            for answer in waiting:
                if answer.expires <= now:
                    await self._storage.delete_record_field(name, answer.field)
                    expired += 1
                    self._note("expired")
                    log.warning(
                        "answer of %s expired before the follower wrote again", answer.handler
                    )
            if all(answer.expires <= now for answer in waiting):
                await self._storage.delete_record_field(INDEX, openid)
                self.followers.discard(openid)
        return expired

    def given(self, answer: PendingAnswer, how: str) -> None:
        """Count and log a waiting answer given (`passive` or `customer_service`)."""
        self._note(f"given_{how}")
        log.info("waiting answer of %s given (%s)", answer.handler, how)

    def _note(self, outcome: str) -> None:
        if self._observe is not None:
            self._observe(outcome)
