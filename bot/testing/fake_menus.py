"""The fake platform's custom menu: create / get / delete, conditional menus, try-match, the
live menu — with the platform's checks and errcodes (platform notes §8)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.testing.fake_followers import FakeFollower
from bot.testing.fake_http import Guard, error, json_body, json_response, ok

ENDPOINTS = (
    "menu_create",
    "menu_get",
    "menu_delete",
    "menu_addconditional",
    "menu_delconditional",
    "menu_trymatch",
    "get_current_selfmenu_info",
)
DAILY_CHANGES = 2_000  # creates, adds and deletes a day
_KEY_TYPES = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
_ID_TYPES = {
    "media_id": "media_id",
    "article_id": "article_id",
    "article_view_limited": "article_id",
}
_TYPES = _KEY_TYPES | set(_ID_TYPES) | {"view", "miniprogram"}
_UNMATCHED = ("sex", "country", "province", "city", "language")
# errcodes for a (top-level, sub-) button: type, name, key, url, url domain
_TOP = (40017, 40018, 40019, 40020, 40055)
_SUB = (40024, 40025, 40026, 40027, 40054)


def menu_errcode(body: Any) -> int:
    """0 when `body` is a menu the platform accepts, else its errcode."""
    buttons = body.get("button") if isinstance(body, dict) else None
    if not isinstance(buttons, list):
        return 47001
    if not 1 <= len(buttons) <= 3:
        return 40016
    for button in buttons:
        if not isinstance(button, dict):
            return 47001
        if not _name_fits(button, 16):
            return 40018
        subs = button.get("sub_button")
        if isinstance(subs, list) and subs:
            if len(subs) > 5:
                return 40023
            for sub in subs:
                if not isinstance(sub, dict):
                    return 47001
                if sub.get("sub_button"):
                    return 40024
                if not _name_fits(sub, 60):
                    return 40025
                if code := _leaf_errcode(sub, _SUB):
                    return code
        elif code := _leaf_errcode(button, _TOP):
            return code
    return 0


def _name_fits(button: Mapping[str, Any], limit: int) -> bool:
    name = button.get("name")
    return isinstance(name, str) and 0 < len(name.encode()) <= limit


def _leaf_errcode(button: Mapping[str, Any], codes: tuple[int, int, int, int, int]) -> int:
    bad_type, _, bad_key, bad_url, bad_domain = codes
    kind = button.get("type")
    if kind not in _TYPES:
        return bad_type
    if kind in _KEY_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not 0 < len(key.encode()) <= 128:
            return bad_key
    if kind in ("view", "miniprogram"):
        url = button.get("url")
        if not isinstance(url, str) or not 0 < len(url.encode()) <= 1024:
            return bad_url
        if not url.startswith(("http://", "https://")):
            return bad_domain
    if kind == "miniprogram" and not all(
        isinstance(button.get(k), str) and button[k] for k in ("appid", "pagepath")
    ):
        return 47001
    if kind in _ID_TYPES and not button.get(_ID_TYPES[kind]):
        return 40007
    return 0


class FakeMenus:
    """The account's menus as the fake platform keeps them."""

    def __init__(
        self,
        guard: Guard,
        followers: Mapping[str, FakeFollower],
        tag_exists: Callable[[int], bool],
    ) -> None:
        """`followers` and `tag_exists` answer try-match and matchrules."""
        self._guard = guard
        self._followers = followers
        self._tag_exists = tag_exists
        self.default: dict[str, Any] | None = None
        self.conditional: dict[int, dict[str, Any]] = {}
        self.changes = 0  # creates, adds and deletes (the platform allows 2,000 a day)
        self._next_id = 400_000_000

    def routes(self) -> list[web.RouteDef]:
        """The menu endpoints."""
        return [
            web.post("/cgi-bin/menu/create", self._create),
            web.get("/cgi-bin/menu/get", self._get),
            web.get("/cgi-bin/menu/delete", self._delete),
            web.post("/cgi-bin/menu/addconditional", self._add_conditional),
            web.post("/cgi-bin/menu/delconditional", self._del_conditional),
            web.post("/cgi-bin/menu/trymatch", self._try_match),
            web.get("/cgi-bin/get_current_selfmenu_info", self._current),
        ]

    def _changed(self) -> bool:
        """Count one change; False when the day's 2,000 are used."""
        if self.changes >= DAILY_CHANGES:
            return False
        self.changes += 1
        return True

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "menu_create")) is not None:
            return answer
        body = await json_body(request)
        if code := menu_errcode(body):
            return error(code)
        if not self._changed():
            return error(45009)
        self.default = {"button": copy.deepcopy(body["button"]), "menuid": self._new_id()}
        return ok()

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "menu_get")) is not None:
            return answer
        if self.default is None:
            return error(46003)
        answer_body: dict[str, Any] = {"menu": copy.deepcopy(self.default)}
        if self.conditional:
            answer_body["conditionalmenu"] = [copy.deepcopy(m) for m in self.conditional.values()]
        return json_response(answer_body)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "menu_delete")) is not None:
            return answer
        if not self._changed():
            return error(45009)
        self.default = None
        self.conditional.clear()
        return ok()

    async def _add_conditional(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "menu_addconditional")) is not None:
            return answer
        body = await json_body(request)
        if code := menu_errcode(body):
            return error(code)
        if self.default is None:
            return error(65303)
        rule = body.get("matchrule")
        if not isinstance(rule, dict) or not any(v not in (None, "") for v in rule.values()):
            return error(65304)
        if any(rule.get(k) not in (None, "") for k in _UNMATCHED):
            return error(65320)
        tag = rule.get("tag_id")
        if tag not in (None, "") and not (str(tag).isdigit() and self._tag_exists(int(str(tag)))):
            return error(45159)
        if not self._changed():
            return error(45009)
        menuid = self._new_id()
        self.conditional[menuid] = {
            "button": copy.deepcopy(body["button"]),
            "matchrule": dict(rule),
            "menuid": menuid,
        }
        return json_response({"menuid": str(menuid)})

    async def _del_conditional(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "menu_delconditional")) is not None:
            return answer
        body = await json_body(request)
        menuid = body.get("menuid") if isinstance(body, dict) else None
        if menuid is None or not str(menuid).isdigit():
            return error(47001)
        if int(str(menuid)) not in self.conditional:
            return error(65301)
        if not self._changed():
            return error(45009)
        del self.conditional[int(str(menuid))]
        return ok()

    async def _try_match(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "menu_trymatch")) is not None:
            return answer
        body = await json_body(request)
        user = body.get("user_id") if isinstance(body, dict) else None
        if not isinstance(user, str):
            return error(47001)
        follower = self._followers.get(user)
        if follower is None or not follower.subscribe:
            return error(65302)
        if self.default is None:
            return error(46003)
        menu = self.default
        for candidate in self.conditional.values():  # the newest matching menu wins
            tag = candidate["matchrule"].get("tag_id")
            if tag not in (None, "") and int(str(tag)) in follower.tagid_list:
                menu = candidate
        return json_response({"button": copy.deepcopy(menu["button"])})

    async def _current(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "get_current_selfmenu_info")) is not None:
            return answer
        if self.default is None:
            return json_response({"is_menu_open": 0, "selfmenu_info": {"button": []}})
        buttons = [_live_button(b) for b in self.default["button"]]
        return json_response({"is_menu_open": 1, "selfmenu_info": {"button": buttons}})

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id


def _live_button(button: Mapping[str, Any]) -> dict[str, Any]:
    """A button as get_current_selfmenu_info shows it: sub-buttons wrapped in `list`."""
    out = {k: v for k, v in button.items() if k != "sub_button"}
    subs = button.get("sub_button")
    if isinstance(subs, list) and subs:
        out["sub_button"] = {"list": [dict(s) for s in subs]}
    return out
