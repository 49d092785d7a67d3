"""After a crash: the accepted messages whose answers were never settled (`bot.webhook.journal`).

An answer computed before the crash is sent as it was, not recomputed; a message whose
handler had not finished runs again once (unless its route says `rerun=False`), and its
answer goes out as any late answer. With Redis every instance looks for orphans every few
seconds (the owner's lease lapses `LEASE_TTL` after it dies); with the embedded store the
next start finds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.routing.context import Context
from bot.routing.dispatch import Outcome
from bot.storage.base import StorageUnavailable
from bot.webhook.journal import LEASE_TTL, JournalEntry
from bot.webhook.services import Services
from bot.wechat.messages import Message, MessageError, parse_message

log = logging.getLogger(__name__)

_SCAN_EVERY = LEASE_TTL / 3
SWEEP_EVERY = 300.0


async def recover(services: Services) -> None:
    """Settle every orphaned journal entry once (its rerun runs in a task of its own)."""
    try:
        orphans = await services.journal.orphans()
    except StorageUnavailable:
        log.warning("journal: the store is away; unfinished messages are looked for later")
        return
    for entry in orphans:
        await _settle(services, entry)


async def watch(services: Services) -> None:
    """Renew this instance's lease and adopt other instances' orphans, until cancelled."""
    while True:
        with contextlib.suppress(StorageUnavailable):
            await services.journal.renew_lease()
        await recover(services)
        await asyncio.sleep(_SCAN_EVERY)


async def sweep_pending(services: Services, every: float = SWEEP_EVERY) -> None:
    """Expire waiting answers whose followers never wrote again, every `every` s, until
    cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            await services.pending.sweep()
        except StorageUnavailable:
            log.warning("waiting answers: the store is away; expired ones are swept later")


async def _settle(services: Services, entry: JournalEntry) -> None:
    journal, metrics = services.journal, services.metrics
    openid = str(entry.fields.get("FromUserName", ""))
    msg_id = str(entry.fields.get("MsgId") or entry.key)  # as the message's log lines name it
    if entry.answered:
        log.warning(
            "message %s: its answer (handler %s) was computed before a crash; sending it",
            msg_id,
            entry.handler,
        )
        metrics.recovered.labels("sent").inc()
        await journal.adopt(entry)
        services.delivery.submit_payloads(
            openid, entry.payloads, handler=entry.handler, key=entry.key
        )
        return
    try:
        msg = parse_message(entry.fields)
    except MessageError:
        msg = None
    route = None if msg is None else services.dispatcher.route_for(msg)
    reason = None
    if msg is None:
        reason = "its fields are unreadable"
    elif entry.reruns >= 1:
        reason = "it ran again once already"
    elif route is not None and not route.rerun:
        reason = "its route says rerun=False"
    if reason is not None or msg is None:
        log.error(
            "message %s: handler %s was cut short by a crash; dropped (%s)",
            msg_id,
            entry.handler,
            reason,
        )
        metrics.recovered.labels("dropped").inc()
        await journal.adopt(entry)
        await journal.done(entry.key)
        return
    log.warning(
        "message %s: handler %s was cut short by a crash; running it again",
        msg_id,
        entry.handler,
    )
    metrics.recovered.labels("rerun").inc()
    await journal.adopt(entry)
    rerun = msg

    async def run() -> tuple[Message, Outcome]:
        ctx = Context(rerun, services.config, services.api, services.followers, services.profiles)
        return rerun, await services.dispatcher.dispatch(rerun, ctx)

    task = services.ledger.start(run())
    services.ledger.running.add(task)  # graceful shutdown waits for it as for any handler
    task.add_done_callback(services.ledger.running.discard)

    def rerun_done(done: asyncio.Future[tuple[Message, Outcome]]) -> None:
        if done.cancelled() or done.exception() is not None:
            return  # shutdown: the entry stays for the next start
        outcome = done.result()[1]
        replies = [] if outcome.reply is None else [outcome.reply, *outcome.extra]
        services.delivery.submit(openid, replies, handler=entry.handler, key=entry.key)

    task.add_done_callback(rerun_done)
