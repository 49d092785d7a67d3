"""Late replies: a handler that missed the reply budget answers through the customer-service API.

Each delivery retries transient failures with backoff and jitter until its deadline; the
platform's final refusals (45015 reply window passed, 45047 quota, 40003/43004 not a follower)
are logged and dropped. Pending deliveries are tracked so a graceful shutdown can wait for them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from bot.client.api import WeChatAPI, WeChatAPIError
from bot.wechat.replies import Reply, customer_service_payload

log = logging.getLogger(__name__)

# Refusals that no retry can change.
FINAL_ERRCODES = frozenset({45015, 45047, 40003, 43004, 48001, 45009, 40013, 40125})


class LateDelivery:
    """Sends late replies, each once, retrying until a deadline."""

    def __init__(
        self,
        api: WeChatAPI,
        *,
        deadline: float,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._deadline = deadline
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._observe = observe
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> set[asyncio.Task[None]]:
        """Deliveries not finished yet."""
        return self._pending

    def submit(self, openid: str, reply: Reply) -> None:
        """Schedule the delivery of `reply` to `openid`."""
        payload = customer_service_payload(reply, openid)
        if payload is None:
            log.warning(
                "late reply of type %s cannot be sent through the customer-service API; dropped",
                type(reply).__name__,
            )
            self._note("unsupported")
            return
        task = asyncio.create_task(self._send(payload), name="late-delivery")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, payload: dict[str, Any]) -> None:
        give_up = time.monotonic() + self._deadline
        delay = self._backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._api.send_custom_message(payload)
            except WeChatAPIError as exc:
                if exc.errcode in FINAL_ERRCODES:
                    log.warning("late reply dropped: errcode=%s %s", exc.errcode, exc.errmsg)
                    self._note("dropped")
                    return
                sleep = delay * (0.5 + random.random())
                if time.monotonic() + sleep > give_up:
                    log.error(
                        "late reply not delivered after %d attempts: errcode=%s %s",
                        attempt,
                        exc.errcode,
                        exc.errmsg,
                    )
                    self._note("failed")
                    return
                await asyncio.sleep(sleep)
                delay = min(delay * 2, self._max_backoff)
                continue
            self._note("delivered")
            return

    def _note(self, outcome: str) -> None:
        if self._observe is not None:
            self._observe(outcome)

    async def drain(self, grace: float) -> int:
        """Wait up to `grace` seconds for pending deliveries; returns how many were unfinished."""
        if not self._pending:
            return 0
        _, left = await asyncio.wait(set(self._pending), timeout=grace)
        for task in left:
            task.cancel()
        return len(left)
