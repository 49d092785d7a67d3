"""The fake platform's template messages and subscription notices, with the checks the
platform makes on templates, followers and values (platform notes §8)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.testing.fake_followers import FakeFollower
from bot.testing.fake_http import Guard, error, json_body, json_response, ok

ENDPOINTS = ("template_send", "subscribe_bizsend")
DEDUP_SECONDS = 600.0  # a client_msg_id is remembered 10 minutes
MAX_SENT = 100_000  # sent messages remembered (oldest forgotten first)
MAX_DEDUP = 10_000
# template id -> its keywords; what the demo account has "added" in the console
DEMO_TEMPLATES: dict[str, tuple[str, ...]] = {
    "TPL_ORDER_SHIPPED": ("thing1", "character_string2", "time3"),
    "TPL_APPOINTMENT": ("thing1", "time2", "phrase3"),
}
DEMO_NOTICES: dict[str, tuple[str, ...]] = {
    "NOTICE_EVENT_REMINDER": ("thing1", "time2"),
}
_LIMITS = {
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phrase": 5,
    "phone_number": 17,
    "car_number": 8,
    "name": 20,
}
_KEY_TYPE = re.compile(r"^([a-z_]+?)\d*$")


def data_errcode(data: Any, keywords: tuple[str, ...], general_limit: int | None) -> int:
    """0 when `data` fills exactly the template's keywords with values it accepts, else 47003."""
    if not isinstance(data, dict) or set(data) != set(keywords):
        return 47003
    for key, entry in data.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, str) or not value or "\n" in value:
            return 47003
        found = _KEY_TYPE.match(key)
        limits = [n for n in (_LIMITS.get(found.group(1)) if found else None, general_limit) if n]
        if limits and len(value) > min(limits):
            return 47003
    return 0


class FakeNotices:
    """Templates and notices the fake account has, and what was sent with them."""

    def __init__(
        self,
        guard: Guard,
        followers: Mapping[str, FakeFollower],
        clock: Callable[[], float],
    ) -> None:
        """Sends go to `followers` only."""
        self._guard = guard
        self._followers = followers
        self._clock = clock
        self.templates = dict(DEMO_TEMPLATES)
        self.notices = dict(DEMO_NOTICES)
        self.accepted: set[tuple[str, str]] = set()  # (openid, notice template) a follower allowed
        self.templates_sent: list[dict[str, Any]] = []
        self.notices_sent: list[dict[str, Any]] = []
        self._by_client_msg_id: dict[str, tuple[int, float]] = {}
        self._next_msgid = 2_000_000_000

    def routes(self) -> list[web.RouteDef]:
        """template/send and subscribe/bizsend."""
        return [
            web.post("/cgi-bin/message/template/send", self._template_send),
            web.post("/cgi-bin/message/subscribe/bizsend", self._bizsend),
        ]

    def accept_notice(self, openid: str, template_id: str) -> None:
        """The follower tapped "allow" on a subscription-notice pop-up."""
        self.accepted.add((openid, template_id))

    def _follower_errcode(self, openid: object) -> int:
        follower = self._followers.get(openid) if isinstance(openid, str) else None
        if follower is None:
            return 40003
        return 0 if follower.subscribe else 43004

    async def _template_send(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "template_send")) is not None:
            return answer
        body = await json_body(request)
        if not isinstance(body, dict):
            return error(47001)
        if code := self._follower_errcode(body.get("touser")):
            return error(code)
        template_id = body.get("template_id")
        keywords = self.templates.get(template_id) if isinstance(template_id, str) else None
        if keywords is None:
            return error(40037)
        if code := data_errcode(body.get("data"), keywords, 20):
            return error(code)
        now = self._clock()
        client_msg_id = body.get("client_msg_id")
        if isinstance(client_msg_id, str) and client_msg_id:
            seen = self._by_client_msg_id.get(client_msg_id)
            if seen is not None and now - seen[1] < DEDUP_SECONDS:
                return json_response({"errcode": 0, "errmsg": "ok", "msgid": seen[0]})
        self._next_msgid += 1
        if isinstance(client_msg_id, str) and client_msg_id:
            if len(self._by_client_msg_id) >= MAX_DEDUP:
                del self._by_client_msg_id[next(iter(self._by_client_msg_id))]
            self._by_client_msg_id[client_msg_id] = (self._next_msgid, now)
        _append(self.templates_sent, {**body, "msgid": self._next_msgid})
        return json_response({"errcode": 0, "errmsg": "ok", "msgid": self._next_msgid})

    async def _bizsend(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "subscribe_bizsend")) is not None:
            return answer
        body = await json_body(request)
        if not isinstance(body, dict):
            return error(47001)
        touser, template_id = body.get("touser"), body.get("template_id")
        if code := self._follower_errcode(touser):
            return error(code)
        keywords = self.notices.get(template_id) if isinstance(template_id, str) else None
        if keywords is None:
            return error(40037)
        if (touser, template_id) not in self.accepted:
            return error(43101)
        if code := data_errcode(body.get("data"), keywords, None):
            return error(code)
        _append(self.notices_sent, body)
        return ok()


def _append(sent: list[dict[str, Any]], body: dict[str, Any]) -> None:
    sent.append(body)
    if len(sent) > MAX_SENT:
        del sent[0]
