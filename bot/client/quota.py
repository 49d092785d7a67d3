"""API quotas (platform notes §8): how much of an API's daily quota is used; clearing it;
waiting out the per-minute quota.

Clearing is limited to 10 a month (48006 after), so `clear` is an operator's decision, never
something the bot does by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.client.caller import APICaller
from bot.client.errors import ERR_BAD_ANSWER, LimitError, WeChatAPIError

log = logging.getLogger(__name__)
T = TypeVar("T")
ERR_MINUTE_QUOTA = 45011  # the per-minute quota: waiting helps
ERR_DAILY_QUOTA = 45009  # the daily quota: nothing helps today


async def within_minute_quota(call: Callable[[], Awaitable[T]], *, wait: float, retries: int) -> T:
    """`call()`, waited for and tried again (at most `retries` times) while it meets the
    per-minute quota (45011); the daily quota (45009) and every other refusal raise at once."""
    for attempt in range(retries + 1):
        try:
            return await call()
        except WeChatAPIError as exc:
            if exc.errcode != ERR_MINUTE_QUOTA or attempt == retries:
                raise
            log.warning("%s: per-minute quota reached; waiting %.0f s", exc.endpoint, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


@dataclass(frozen=True)
class Quota:
    """An API's daily quota."""

    daily_limit: int
    used: int
    remain: int


class QuotaAPI:
    """openapi/quota/get and clear_quota."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def get(self, cgi_path: str) -> Quota:
        """The quota of the API at `cgi_path`, e.g. "/cgi-bin/message/custom/send"."""
        if not cgi_path.startswith("/cgi-bin/"):
            raise LimitError("cgi_path", f"must start with /cgi-bin/ (got {cgi_path!r})")
        data = await self._api.call(
            "POST", "/cgi-bin/openapi/quota/get", json_body={"cgi_path": cgi_path}
        )
        quota = data.get("quota")
        if not isinstance(quota, dict):
            raise WeChatAPIError(ERR_BAD_ANSWER, "no quota in the answer", "openapi_quota_get")
        return Quota(*(int(quota.get(k, 0)) for k in ("daily_limit", "used", "remain")))

    async def clear(self) -> None:
        """Reset every API's daily count (10 a month, shared with `clear_with_secret`)."""
        await self._api.call("POST", "/cgi-bin/clear_quota", json_body={"appid": self._api.app_id})

    async def clear_with_secret(self) -> None:
        """The same by AppID and AppSecret (clear_quota/v2): works when the token endpoint's
        own quota is used up and no token can be had."""
        await self._api.call_with_secret("/cgi-bin/clear_quota/v2", {})
