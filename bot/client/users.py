"""The follower list and remarks (platform notes §8); profiles are `WeChatAPI.get_user_info`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

from bot.client.caller import APICaller
from bot.client.errors import ERR_BAD_ANSWER, WeChatAPIError
from bot.client.limits import check_bytes, check_chars
from bot.client.quota import within_minute_quota

FOLLOWER_PAGE = 10_000  # user/get returns at most this many openids a call
MAX_REMARK_BYTES = 29  # a remark must be under 30 bytes


@dataclass(frozen=True)
class OpenidPage:
    """One page of a list of openids (followers, a tag's members, the blacklist)."""

    total: int
    openids: tuple[str, ...]
    next_openid: str  # "" when there is nothing after this page


def parse_openid_page(data: dict[str, object], endpoint: str) -> OpenidPage:
    """The platform's `{total, count, data: {openid: [...]}, next_openid}`."""
    inner = data.get("data")
    openids = inner.get("openid") if isinstance(inner, dict) else []
    if not isinstance(openids, list) or not all(isinstance(o, str) for o in openids):
        raise WeChatAPIError(ERR_BAD_ANSWER, "malformed openid list", endpoint)
    total = data.get("total")
    next_openid = data.get("next_openid")
    return OpenidPage(
        total=total if isinstance(total, int) else len(openids),
        openids=tuple(openids),
        next_openid=next_openid if isinstance(next_openid, str) and openids else "",
    )


class UserAPI:
    """user/get (paged) and user/info/updateremark."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def list(self, next_openid: str = "") -> OpenidPage:
        """One page of up to 10,000 followers, after `next_openid`."""
        params = {"next_openid": next_openid} if next_openid else {}
        data = await self._api.call("GET", "/cgi-bin/user/get", params=params)
        return parse_openid_page(data, "user_get")

    async def pages(
        self, *, quota_wait: float = 60.0, quota_retries: int = 0
    ) -> AsyncIterator[OpenidPage]:
        """Every page of the follower list, in order (bounded by the total it announces).

        A page that meets the per-minute quota is tried again `quota_retries` times,
        `quota_wait` seconds apart.
        """
        page = await within_minute_quota(self.list, wait=quota_wait, retries=quota_retries)
        yield page
        left = page.total // FOLLOWER_PAGE + 2  # a platform that keeps paging cannot loop us
        while page.next_openid and page.openids and left > 0:
            left -= 1
            after = page.next_openid
            page = await within_minute_quota(
                partial(self.list, after), wait=quota_wait, retries=quota_retries
            )
            if page.next_openid == after:  # the same cursor twice: the list is over
                page = OpenidPage(page.total, page.openids, "")
            yield page

    async def update_remark(self, openid: str, remark: str) -> None:
        """Set the operator's name for a follower (under 30 bytes; verified service accounts)."""
        check_chars("openid", openid, 128)
        check_bytes("remark", remark, MAX_REMARK_BYTES, minimum=0)
        await self._api.call(
            "POST",
            "/cgi-bin/user/info/updateremark",
            json_body={"openid": openid, "remark": remark},
        )
