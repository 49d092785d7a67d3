"""API quotas (platform notes §8): how much of an API's daily quota is used; clearing it.

Clearing is limited to 10 a month (48006 after), so `clear` is an operator's decision, never
something the bot does by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.client.caller import APICaller
from bot.client.errors import ERR_BAD_ANSWER, LimitError, WeChatAPIError


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
        """Reset every API's daily count (10 a month, shared with clear_quota/v2)."""
        await self._api.call("POST", "/cgi-bin/clear_quota", json_body={"appid": self._api.app_id})
