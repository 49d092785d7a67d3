"""The account's blacklist (platform notes §8): list it, add and remove followers."""

from __future__ import annotations

from collections.abc import Sequence

from bot.client.caller import APICaller
from bot.client.limits import check_openids
from bot.client.users import OpenidPage, parse_openid_page

MAX_BLACKLISTING = 20  # openids in one batchblacklist / batchunblacklist call


class BlacklistAPI:
    """tags/members/getblacklist, batchblacklist, batchunblacklist."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def list(self, begin_openid: str = "") -> OpenidPage:
        """One page of blacklisted openids, after `begin_openid`."""
        data = await self._api.call(
            "POST",
            "/cgi-bin/tags/members/getblacklist",
            json_body={"begin_openid": begin_openid},
        )
        return parse_openid_page(data, "tags_members_getblacklist")

    async def add(self, openids: Sequence[str]) -> None:
        """Blacklist up to 20 followers."""
        check_openids("openid_list", openids, MAX_BLACKLISTING)
        await self._api.call(
            "POST",
            "/cgi-bin/tags/members/batchblacklist",
            json_body={"openid_list": list(openids)},
        )

    async def remove(self, openids: Sequence[str]) -> None:
        """Take up to 20 followers off the blacklist."""
        check_openids("openid_list", openids, MAX_BLACKLISTING)
        await self._api.call(
            "POST",
            "/cgi-bin/tags/members/batchunblacklist",
            json_body={"openid_list": list(openids)},
        )
