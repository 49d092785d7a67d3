"""Accepted messages whose answer is not delivered yet, written down durably.

A message is *accepted* when a try is answered `success` while its handler still runs: WeChat
will not send it again, so from then on the bot alone holds it. Before that answer goes out
the message is written to the journal (one durable record, in SQLite or Redis); its answer is
added once computed; the entry goes once the answer is delivered (or kept for the follower's
next message, or dropped for good). After a crash the next start (embedded store), or any
instance once the owner's lease has lapsed (Redis), finds the entries left (`orphans`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from bot.storage.base import Storage, StorageUnavailable
from bot.wechat.messages import Message

log = logging.getLogger(__name__)

RECORD = "journal"
LEASE_TTL = 15.0
"""Seconds an instance's lease lasts; renewed every third of it while the instance lives."""


class JournalEntry(NamedTuple):
    """One accepted message."""

    key: str  # the message's dedup key
    fields: Mapping[str, Any]  # the message as parsed (to run its handler again)
    handler: str
    owner: str  # the instance that accepted it
    reruns: int  # how often another start ran its handler again
    payloads: tuple[dict[str, Any], ...]  # the answers once computed (customer-service JSON)
    answered: bool  # the handler finished (payloads empty: nothing to send)


def _entry(key: str, value: str) -> JournalEntry | None:
    try:
        data = json.loads(value)
        payloads = data.get("p") or []
        return JournalEntry(
            key,
            dict(data["m"]),
            str(data["h"]),
            str(data["o"]),
            int(data.get("r", 0)),
            tuple(dict(p) for p in payloads),
            bool(data.get("a", False)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class Journal:
    """The durable list of accepted messages; `instance` names this process's entries."""

    def __init__(self, storage: Storage, *, shared: bool) -> None:
        self._storage = storage
        self._shared = shared  # several instances use the store (Redis): leases tell owners
        self.instance = secrets.token_hex(8)
        self._writing: dict[str, asyncio.Future[None]] = {}
        self._entries: dict[str, JournalEntry] = {}  # this process's, as last written

    def _lease(self, owner: str) -> str:
        return f"lease:{owner}"

    async def renew_lease(self) -> None:
        """Tell other instances this one lives (Redis), for `LEASE_TTL`."""
        if self._shared:
            await self._storage.set(self._lease(self.instance), b"1", LEASE_TTL)

    async def accept(self, msg: Message, handler: str | None) -> None:
        """Write `msg` down before a try is answered without its answer; never raises."""
        key = msg.dedup_key
        if key in self._entries:
            return
        entry = JournalEntry(key, dict(msg.raw), handler or "-", self.instance, 0, (), False)
        await self._write(entry)

    async def adopt(self, entry: JournalEntry) -> None:
        """Make an orphan this instance's, counting the run about to happen."""
        await self._write(entry._replace(owner=self.instance, reruns=entry.reruns + 1))

    async def answered(self, key: str, payloads: Sequence[dict[str, Any]]) -> None:
        """Add the computed answers (none: nothing to send), so a crash sends, not recomputes."""
        await self._settled(key)
        entry = self._entries.get(key)
        if entry is not None:
            await self._write(entry._replace(payloads=tuple(payloads), answered=True))

    async def done(self, key: str) -> None:
        """The answer is delivered (or kept elsewhere, or dropped): forget the message."""
        await self._settled(key)
        if self._entries.pop(key, None) is None:
            return
        try:
            await self._storage.delete_record_field(RECORD, key)
        except StorageUnavailable:
            log.exception("journal: could not forget message %s (it may be sent again)", key)

    async def orphans(self) -> list[JournalEntry]:
        """Entries no live instance owns: every other start's (embedded store), or those
        whose owner's lease has lapsed (Redis)."""
        record = await self._storage.get_record(RECORD)
        found = []
        owners: dict[str, bool] = {}
        for key, value in record.items():
            entry = _entry(key, value)
            if entry is None:
                log.error("journal: unreadable entry for message %s dropped", key)
                await self._storage.delete_record_field(RECORD, key)
                continue
            if entry.owner == self.instance:
                continue
            if self._shared:
                alive = owners.get(entry.owner)
                if alive is None:
                    alive = await self._storage.get(self._lease(entry.owner)) is not None
                    owners[entry.owner] = alive
                if alive or not await self._storage.add(
                    f"journal-takeover:{key}", self.instance.encode(), 4 * LEASE_TTL
                ):
                    continue
            found.append(entry)
        return found

    def __len__(self) -> int:
        return len(self._entries)

    async def _write(self, entry: JournalEntry) -> None:
        value = json.dumps(
            {
                "m": dict(entry.fields),
                "h": entry.handler,
                "o": entry.owner,
                "r": entry.reruns,
                "p": list(entry.payloads),
                "a": entry.answered,
            },
            ensure_ascii=False,
        )
        self._entries[entry.key] = entry
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writing[entry.key] = written
        try:
            await self._storage.set_record_field(RECORD, entry.key, value)
        except StorageUnavailable:
            log.exception("journal: message %s not written down (lost if this crashes)", entry.key)
        finally:
            written.set_result(None)
            if self._writing.get(entry.key) is written:
                del self._writing[entry.key]

    async def _settled(self, key: str) -> None:
        writing = self._writing.get(key)
        if writing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(writing)
