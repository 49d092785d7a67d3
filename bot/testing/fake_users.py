"""The fake platform's follower list, remarks, tags and blacklist (platform notes §8)."""

from __future__ import annotations

import dataclasses
from collections.abc import MutableMapping, Sequence
from typing import Any

from aiohttp import web

from bot.testing.fake_followers import FakeFollower
from bot.testing.fake_http import Guard, error, json_body, json_response, ok, openid_list

ENDPOINTS = (
    "user_get",
    "user_info_updateremark",
    "tags_create",
    "tags_get",
    "tags_update",
    "tags_delete",
    "tags_members_batchtagging",
    "tags_members_batchuntagging",
    "tags_getidlist",
    "user_tag_get",
    "tags_members_getblacklist",
    "tags_members_batchblacklist",
    "tags_members_batchunblacklist",
)
FOLLOWER_PAGE = 10_000
BLACKLIST_PAGE = 1_000  # the current doc's page size (an older one says 10,000)
MAX_TAGS = 100
MAX_TAGS_PER_FOLLOWER = 20
MAX_DELETABLE_TAG = 100_000  # followers a tag may have and still be deleted
SYSTEM_TAGS = {2: "星标组"}
_RESERVED = frozenset({0, 1, 2})


class FakeUsers:
    """The followers' list, their remarks and tags, and the blacklist."""

    def __init__(self, guard: Guard, followers: MutableMapping[str, FakeFollower]) -> None:
        """`followers` is the fake's own table (remarks and tags are written back to it)."""
        self._guard = guard
        self._followers = followers
        self.tags: dict[int, str] = dict(SYSTEM_TAGS)
        self.blacklist: dict[str, None] = {}  # ordered set
        self._next_tag = 100

    def routes(self) -> list[web.RouteDef]:
        """The user-list, remark, tag and blacklist endpoints."""
        return [
            web.get("/cgi-bin/user/get", self._user_get),
            web.post("/cgi-bin/user/info/updateremark", self._update_remark),
            web.post("/cgi-bin/tags/create", self._tags_create),
            web.get("/cgi-bin/tags/get", self._tags_get),
            web.post("/cgi-bin/tags/update", self._tags_update),
            web.post("/cgi-bin/tags/delete", self._tags_delete),
            web.post("/cgi-bin/tags/members/batchtagging", self._batch_tagging),
            web.post("/cgi-bin/tags/members/batchuntagging", self._batch_untagging),
            web.post("/cgi-bin/tags/getidlist", self._tag_ids),
            web.post("/cgi-bin/user/tag/get", self._tag_members),
            web.post("/cgi-bin/tags/members/getblacklist", self._blacklist_get),
            web.post("/cgi-bin/tags/members/batchblacklist", self._blacklist_add),
            web.post("/cgi-bin/tags/members/batchunblacklist", self._blacklist_remove),
        ]

    def tag_exists(self, tag_id: int) -> bool:
        """Whether the account has tag `tag_id`."""
        return tag_id in self.tags

    # -- the follower list ------------------------------------------------------------------

    async def _user_get(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "user_get")) is not None:
            return answer
        followers = [o for o, f in self._followers.items() if f.subscribe]
        page = _page(followers, request.query.get("next_openid", ""), FOLLOWER_PAGE)
        return page if isinstance(page, web.Response) else json_response(page)

    async def _update_remark(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "user_info_updateremark")) is not None:
            return answer
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("remark"), str):
            return error(47001)
        follower = self._follower(body.get("openid"))
        if follower is None:
            return error(40003)
        if len(body["remark"].encode()) >= 30:
            return error(40092)
        self._followers[follower.openid] = dataclasses.replace(follower, remark=body["remark"])
        return ok()

    # -- tags -------------------------------------------------------------------------------

    async def _tags_create(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "tags_create")) is not None:
            return answer
        name = _tag_field(await json_body(request), "name")
        if not isinstance(name, str):
            return error(47001)
        if code := self._name_errcode(name):
            return error(code)
        if len(self.tags) - len(SYSTEM_TAGS) >= MAX_TAGS:
            return error(45056)
        self._next_tag += 1
        self.tags[self._next_tag] = name
        return json_response({"tag": {"id": self._next_tag, "name": name}})

    async def _tags_get(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "tags_get")) is not None:
            return answer
        return json_response(
            {"tags": [{"id": i, "name": n, "count": self._count(i)} for i, n in self.tags.items()]}
        )

    async def _tags_update(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "tags_update")) is not None:
            return answer
        body = await json_body(request)
        tag_id, name = _tag_field(body, "id"), _tag_field(body, "name")
        if not isinstance(tag_id, int) or not isinstance(name, str):
            return error(47001)
        if tag_id in _RESERVED:
            return error(45058)
        if tag_id not in self.tags:
            return error(45159)
        if self.tags[tag_id] != name and (code := self._name_errcode(name)):
            return error(code)
        self.tags[tag_id] = name
        return ok()

    async def _tags_delete(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "tags_delete")) is not None:
            return answer
        tag_id = _tag_field(await json_body(request), "id")
        if not isinstance(tag_id, int):
            return error(47001)
        if tag_id in _RESERVED:
            return error(45058)
        if tag_id not in self.tags:
            return error(45159)
        if self._count(tag_id) > MAX_DELETABLE_TAG:
            return error(45057)
        del self.tags[tag_id]
        for openid, follower in list(self._followers.items()):
            if tag_id in follower.tagid_list:
                kept = tuple(t for t in follower.tagid_list if t != tag_id)
                self._followers[openid] = dataclasses.replace(follower, tagid_list=kept)
        return ok()

    async def _batch_tagging(self, request: web.Request) -> web.StreamResponse:
        return await self._retag(request, "tags_members_batchtagging", add=True)

    async def _batch_untagging(self, request: web.Request) -> web.StreamResponse:
        return await self._retag(request, "tags_members_batchuntagging", add=False)

    async def _retag(self, request: web.Request, endpoint: str, *, add: bool) -> web.StreamResponse:
        if (answer := await self._guard(request, endpoint)) is not None:
            return answer
        body = await json_body(request)
        openids = openid_list(body, 50)
        if isinstance(openids, int):
            return error(openids)
        tag_id = body.get("tagid")
        if not isinstance(tag_id, int) or tag_id not in self.tags:
            return error(45159)
        followers = [self._follower(o) for o in openids]
        if any(f is None for f in followers):
            return error(40003)
        changed = []
        for follower in followers:
            assert follower is not None
            tags = follower.tagid_list
            if add and tag_id not in tags:
                if len(tags) >= MAX_TAGS_PER_FOLLOWER:
                    return error(45059)
                tags = (*tags, tag_id)
            elif not add:
                tags = tuple(t for t in tags if t != tag_id)
            changed.append(dataclasses.replace(follower, tagid_list=tags))
        for follower in changed:  # all or nothing, as the platform checks before it writes
            self._followers[follower.openid] = follower
        return ok()

    async def _tag_ids(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "tags_getidlist")) is not None:
            return answer
        body = await json_body(request)
        follower = self._follower(body.get("openid") if isinstance(body, dict) else None)
        if follower is None:
            return error(40003)
        return json_response({"tagid_list": list(follower.tagid_list)})

    async def _tag_members(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "user_tag_get")) is not None:
            return answer
        body = await json_body(request)
        tag_id = body.get("tagid") if isinstance(body, dict) else None
        if not isinstance(tag_id, int) or tag_id not in self.tags:
            return error(45159)
        members = [o for o, f in self._followers.items() if f.subscribe and tag_id in f.tagid_list]
        page = _page(members, str(body.get("next_openid") or ""), FOLLOWER_PAGE)
        return page if isinstance(page, web.Response) else json_response(page)

    # -- the blacklist ----------------------------------------------------------------------

    async def _blacklist_get(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "tags_members_getblacklist")) is not None:
            return answer
        body = await json_body(request)
        begin = str(body.get("begin_openid") or "") if isinstance(body, dict) else ""
        page = _page(list(self.blacklist), begin, BLACKLIST_PAGE)
        return page if isinstance(page, web.Response) else json_response(page)

    async def _blacklist_add(self, request: web.Request) -> web.StreamResponse:
        return await self._blacklisting(request, "tags_members_batchblacklist", add=True)

    async def _blacklist_remove(self, request: web.Request) -> web.StreamResponse:
        return await self._blacklisting(request, "tags_members_batchunblacklist", add=False)

    async def _blacklisting(
        self, request: web.Request, endpoint: str, *, add: bool
    ) -> web.StreamResponse:
        if (answer := await self._guard(request, endpoint)) is not None:
            return answer
        openids = openid_list(await json_body(request), 20)
        if isinstance(openids, int):
            return error(openids)
        if any(o not in self._followers for o in openids):
            return error(40003)
        for openid in openids:
            if add:
                self.blacklist[openid] = None
            else:
                self.blacklist.pop(openid, None)
        return ok()

    # -- helpers ----------------------------------------------------------------------------

    def _follower(self, openid: object) -> FakeFollower | None:
        follower = self._followers.get(openid) if isinstance(openid, str) else None
        return follower if follower is not None and follower.subscribe else None

    def _count(self, tag_id: int) -> int:
        return sum(1 for f in self._followers.values() if f.subscribe and tag_id in f.tagid_list)

    def _name_errcode(self, name: str) -> int:
        if not name:
            return 45157
        if len(name.encode()) > 30:
            return 45158
        return 45157 if name in self.tags.values() else 0


def _tag_field(body: Any, name: str) -> Any:
    tag = body.get("tag") if isinstance(body, dict) else None
    return tag.get(name) if isinstance(tag, dict) else None


def _page(openids: Sequence[str], after: str, size: int) -> dict[str, Any] | web.Response:
    """The page of `openids` after `after`: `{total, count, data: {openid}, next_openid}`."""
    start = 0
    if after:
        try:
            start = openids.index(after) + 1
        except ValueError:
            return error(40003)
    chunk = list(openids[start : start + size])
    more = start + size < len(openids)
    page: dict[str, Any] = {"total": len(openids), "count": len(chunk)}
    if chunk:
        page["data"] = {"openid": chunk}
    page["next_openid"] = chunk[-1] if chunk and more else ""
    return page
