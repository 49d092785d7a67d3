"""Follower tags (platform notes §8): create, list, rename, delete; tag and untag followers.

Ids 0–2 are the platform's own; an account has at most 100 tags and a follower at most 20.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.client.caller import APICaller
from bot.client.errors import ERR_BAD_ANSWER, LimitError, WeChatAPIError
from bot.client.limits import check_bytes, check_chars, check_openids
from bot.client.users import OpenidPage, parse_openid_page

MAX_TAG_NAME_BYTES = 30
MAX_TAGGING = 50  # openids in one batchtagging / batchuntagging call
RESERVED_TAG_IDS = frozenset({0, 1, 2})


@dataclass(frozen=True)
class Tag:
    """A tag and how many followers carry it."""

    id: int
    name: str
    count: int = 0


class TagAPI:
    """tags/create, get, update, delete; members/batchtagging, batchuntagging; getidlist;
    user/tag/get."""

    def __init__(self, api: APICaller) -> None:
        """Calls go through `api`."""
        self._api = api

    async def create(self, name: str) -> Tag:
        """A new tag (name at most 30 bytes; 100 tags per account)."""
        check_bytes("tag.name", name, MAX_TAG_NAME_BYTES)
        data = await self._api.call(
            "POST", "/cgi-bin/tags/create", json_body={"tag": {"name": name}}
        )
        tag = data.get("tag")
        if not isinstance(tag, dict) or not isinstance(tag.get("id"), int):
            raise WeChatAPIError(ERR_BAD_ANSWER, "no tag in the answer", "tags_create")
        return Tag(tag["id"], str(tag.get("name", name)))

    async def list(self) -> tuple[Tag, ...]:
        """Every tag of the account, with its follower count."""
        data = await self._api.call("GET", "/cgi-bin/tags/get")
        tags = data.get("tags")
        return tuple(
            Tag(t["id"], str(t.get("name", "")), int(t.get("count", 0)))
            for t in (tags if isinstance(tags, list) else [])
            if isinstance(t, dict) and isinstance(t.get("id"), int)
        )

    async def rename(self, tag_id: int, name: str) -> None:
        """Rename a tag (not one of the platform's own, 0–2)."""
        _check_changeable(tag_id)
        check_bytes("tag.name", name, MAX_TAG_NAME_BYTES)
        await self._api.call(
            "POST", "/cgi-bin/tags/update", json_body={"tag": {"id": tag_id, "name": name}}
        )

    async def delete(self, tag_id: int) -> None:
        """Delete a tag (refused with 45057 while it has over 100,000 followers)."""
        _check_changeable(tag_id)
        await self._api.call("POST", "/cgi-bin/tags/delete", json_body={"tag": {"id": tag_id}})

    async def tag(self, tag_id: int, openids: Sequence[str]) -> None:
        """Give up to 50 followers a tag (a follower has at most 20)."""
        check_openids("openid_list", openids, MAX_TAGGING)
        await self._api.call(
            "POST",
            "/cgi-bin/tags/members/batchtagging",
            json_body={"openid_list": list(openids), "tagid": tag_id},
        )

    async def untag(self, tag_id: int, openids: Sequence[str]) -> None:
        """Take a tag from up to 50 followers."""
        check_openids("openid_list", openids, MAX_TAGGING)
        await self._api.call(
            "POST",
            "/cgi-bin/tags/members/batchuntagging",
            json_body={"openid_list": list(openids), "tagid": tag_id},
        )

    async def tags_of(self, openid: str) -> tuple[int, ...]:
        """The ids of a follower's tags."""
        check_chars("openid", openid, 128)
        data = await self._api.call("POST", "/cgi-bin/tags/getidlist", json_body={"openid": openid})
        ids = data.get("tagid_list")
        return tuple(i for i in (ids if isinstance(ids, list) else []) if isinstance(i, int))

    async def members(self, tag_id: int, next_openid: str = "") -> OpenidPage:
        """One page of up to 10,000 followers with the tag."""
        body: dict[str, object] = {"tagid": tag_id, "next_openid": next_openid}
        data = await self._api.call("POST", "/cgi-bin/user/tag/get", json_body=body)
        return parse_openid_page(data, "user_tag_get")


def _check_changeable(tag_id: int) -> None:
    if tag_id in RESERVED_TAG_IDS:
        raise LimitError("tag.id", f"{tag_id} is one of the platform's own tags (0–2)")
