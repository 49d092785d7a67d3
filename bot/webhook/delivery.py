"""Late replies: a handler that missed the reply budget answers through the customer-service
API, or, where that cannot be, with the follower's next message.

Each delivery retries transient failures with backoff and jitter until its deadline. An answer
the platform will not take now — no customer-service API (48001), quota spent (45047), reply
window passed (45015) — or that kept failing until the deadline waits for the follower's next
message (`PendingAnswers`); a refusal no message can change (not a follower) is logged and
dropped. Every accepted message is in the journal until its answer is settled so.
Pending deliveries are tracked so a graceful shutdown can wait for them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.client.api import WeChatAPI, WeChatAPIError
from bot.webhook.customer_service import CustomerServiceSwitch
from bot.webhook.journal import Journal
from bot.webhook.pending import PendingAnswers
from bot.webhook.quota import CustomerServiceQuota
from bot.wechat.replies import Reply, customer_service_payload

log = logging.getLogger(__name__)

# Refusals that the follower's next message lifts: the answer waits for it.
WAIT_ERRCODES = frozenset({45015, 45047, 48001})
# Refusals that no retry or message can change.
FINAL_ERRCODES = frozenset({40003, 43004, 45009, 40013, 40125})


class LateDelivery:
    """Sends late replies, each once, retrying until a deadline; keeps what cannot go now."""

    def __init__(
        self,
        api: WeChatAPI,
        *,
        deadline: float,
        switch: CustomerServiceSwitch | None = None,
        pending: PendingAnswers | None = None,
        journal: Journal | None = None,
        quota: CustomerServiceQuota | None = None,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._deadline = deadline
        self._switch = switch or CustomerServiceSwitch("on")
        self._pending = pending
        self._journal = journal
        self._quota = quota
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._observe = observe
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> set[asyncio.Task[None]]:
        """Deliveries not finished yet."""
        return self._tasks

    def submit(
        self,
        openid: str,
        replies: Reply | Sequence[Reply] | None,
        *,
        handler: str | None = None,
        key: str = "",
    ) -> None:
        """Schedule the delivery of `replies` (in order; None or none: nothing to send) to
        `openid`; `key` is the message's journal key."""
        if replies is None:
            replies = ()
        elif not isinstance(replies, Sequence):
            replies = (replies,)
        payloads = []
        for reply in replies:
            payload = customer_service_payload(reply, openid)
            if payload is None:
                log.warning(
                    "late reply of type %s cannot be sent through the customer-service API;"
                    " dropped (handler %s)",
                    type(reply).__name__,
                    handler or "-",
                )
                self._note("unsupported")
            else:
                payloads.append(payload)
        if payloads or key:
            self.submit_payloads(openid, payloads, handler=handler or "-", key=key)

    def submit_payloads(
        self,
        openid: str,
        payloads: Sequence[dict[str, Any]],
        *,
        handler: str,
        key: str = "",
    ) -> None:
        """`submit` for answers already in the customer-service shape."""
        task = asyncio.create_task(
            self._deliver(openid, list(payloads), handler, key), name="late-delivery"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, openid: str, payloads: list[dict[str, Any]], handler: str, key: str
    ) -> None:
        journal = self._journal if key else None
        if journal is not None:
            await journal.answered(key, payloads)
        for n, payload in enumerate(payloads):
            if not self._switch.available:
                why = "no customer-service API"
            elif self._quota is not None and not self._quota.take(openid):
                why = "customer-service quota spent"
            else:
                if await self._send(openid, payload, handler):
                    continue
                why = "refused for now, or the sends kept failing"
            # keep this one and every later one (in order) for the next message
            for kept in payloads[n:]:
                await self._keep(openid, kept, handler, why)
            break
        if journal is not None:
            await journal.done(key)

    async def _send(self, openid: str, payload: dict[str, Any], handler: str) -> bool:
        """Send `payload`: True when settled (delivered or refused for good), False when it
        must wait for the next message (the caller keeps it, with those after it)."""
        give_up = time.monotonic() + self._deadline
        delay = self._backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._api.send_custom_message(payload)
            except WeChatAPIError as exc:
                if exc.errcode in WAIT_ERRCODES:
                    self._switch.refused(exc.errcode)
                if exc.errcode in WAIT_ERRCODES and self._pending is not None:
                    log.info("late reply of %s refused for now: errcode=%s", handler, exc.errcode)
                    return False
                if exc.errcode in WAIT_ERRCODES or exc.errcode in FINAL_ERRCODES:
                    log.warning(
                        "late reply dropped: errcode=%s %s (handler %s)",
                        exc.errcode,
                        exc.errmsg,
                        handler,
                    )
                    self._note("dropped")
                    return True
                sleep = delay * (0.5 + random.random())
                if time.monotonic() + sleep > give_up:
                    log.error(
                        "late reply not delivered after %d attempts: errcode=%s %s (handler %s)",
                        attempt,
                        exc.errcode,
                        exc.errmsg,
                        handler,
                    )
                    self._note("failed")
                    return self._pending is None
                await asyncio.sleep(sleep)
                delay = min(delay * 2, self._max_backoff)
                continue
            log.info("late reply of %s delivered through the customer-service API", handler)
            self._note("delivered")
            return True

    async def _keep(self, openid: str, payload: dict[str, Any], handler: str, why: str) -> None:
        if self._pending is None:
            log.warning("late reply dropped: %s (handler %s)", why, handler)
            self._note("dropped")
            return
        self._note("pending")
        try:
            await self._pending.keep(openid, payload, handler, why)
        except Exception:
            log.exception("late reply of %s could not be kept for the next message", handler)

    def _note(self, outcome: str) -> None:
        if self._observe is not None:
            self._observe(outcome)

    async def drain(self, grace: float) -> int:
        """Wait up to `grace` seconds for pending deliveries; returns how many were unfinished
        (cancelled: their messages stay in the journal for the next start)."""
        if not self._tasks:
            return 0
        _, left = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in left:
            task.cancel()
        return len(left)
