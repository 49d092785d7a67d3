"""The typing indicator (`custom/typing`) while a slow handler runs.

Shown once a handler has run `delay` seconds (never for a fast answer), refreshed every
`refresh` seconds within its 15-s life (platform notes §4, §7) while it still runs, at most
`max_shows` times. Only with the customer-service API: the indicator needs the same permission,
and a `48001` turns the API off as a send's would. A failed indicator is only logged: it is a
courtesy, not an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.client.api import WeChatAPI, WeChatAPIError
from bot.webhook.customer_service import CustomerServiceSwitch

log = logging.getLogger(__name__)

DELAY = 1.0
REFRESH = 12.0  # the indicator lasts 15 s
MAX_SHOWS = 30  # six minutes of a running handler


class TypingIndicator:
    """Shows the follower that a slow answer is on its way."""

    def __init__(
        self,
        api: WeChatAPI,
        switch: CustomerServiceSwitch,
        *,
        delay: float = DELAY,
        refresh: float = REFRESH,
        max_shows: int = MAX_SHOWS,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._switch = switch
        self._delay = delay
        self._refresh = refresh
        self._max_shows = max_shows
        self._observe = observe
        self._calls: set[asyncio.Task[None]] = set()

    def watch(self, openid: str, finished: Callable[[], bool]) -> None:
        """Show the indicator to `openid` while `finished()` is false, from `delay` on."""
        if not self._switch.available:
            return
        asyncio.get_running_loop().call_later(self._delay, self._tick, openid, finished, 0)

    def _tick(self, openid: str, finished: Callable[[], bool], shown: int) -> None:
        if finished() or shown >= self._max_shows or not self._switch.available:
            return
        task = asyncio.get_running_loop().create_task(self._show(openid), name="typing")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        asyncio.get_running_loop().call_later(
            self._refresh, self._tick, openid, finished, shown + 1
        )

    async def _show(self, openid: str) -> None:
        try:
            await self._api.typing(openid)
        except WeChatAPIError as exc:
            self._switch.refused(exc.errcode)
            log.info("typing indicator refused: errcode=%s %s", exc.errcode, exc.errmsg)
            self._note("failed")
            return
        except Exception:
            log.exception("typing indicator failed")
            self._note("failed")
            return
        self._note("shown")

    def _note(self, outcome: str) -> None:
        if self._observe is not None:
            self._observe(outcome)
