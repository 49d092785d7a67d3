"""What every endpoint of the fake WeChat API shares: errcode answers, JSON bodies, the guard.

`Guard` is the fake's entry check for one call (count it, apply injected latency and faults,
check the access token): it returns the answer to give instead, or None to go on.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from functools import partial
from typing import Any, Protocol

from aiohttp import web


class Guard(Protocol):
    """The fake's entry check for one call of `endpoint` (`token`: check the access token)."""

    def __call__(
        self, request: web.Request, endpoint: str, *, token: bool = True
    ) -> Awaitable[web.StreamResponse | None]:
        """The answer to give instead, or None to go on."""


ERRMSG = {
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40052: "invalid action name",
    40053: "invalid action info",
    40054: "invalid sub button url domain",
    40055: "invalid button url domain",
    40092: "invalid remark size",
    40125: "invalid appsecret",
    41005: "media data missing",
    42001: "access_token expired",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    44004: "text content is empty",
    45009: "reach max api daily quota limit",
    45029: "qrcode count out of limit",
    45056: "too many tags now, no need to add new",
    45057: "can't delete the tag that has too many fans",
    45058: "can't modify sys tag",
    45059: "try to tagging a user which has too many tags",
    45103: "This API has been unsupported",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
    46003: "menu no exist",
    47001: "data format error",
    47003: "argument invalid",
    48006: "forbid to clear quota because of reaching the limit",
    65301: "no such custom menu",
    65302: "no such user",
    65303: "there is no selfmenu, please create selfmenu first",
    65304: "match rule empty",
    65320: "matchrule fields other than tag_id are no longer supported",
    76021: "cgi_path not found, please check",
}

json_response = partial(web.json_response, dumps=partial(json.dumps, ensure_ascii=False))


def error(errcode: int, errmsg: str | None = None) -> web.Response:
    """The platform's errcode answer (HTTP 200, `{"errcode": N, "errmsg": "…"}`)."""
    return json_response({"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "error")})


def ok(**fields: Any) -> web.Response:
    """A success answer with `fields`."""
    return json_response({"errcode": 0, "errmsg": "ok", **fields})


async def json_body(request: web.Request) -> Any:
    """The decoded JSON body, or None when it is not JSON (the platform answers 47001)."""
    try:
        return json.loads(await request.read())
    except ValueError:  # covers JSONDecodeError and UnicodeDecodeError
        return None


def openid_list(body: Any, limit: int) -> list[str] | int:
    """`body["openid_list"]` when it holds 1 to `limit` strings, else the errcode."""
    openids = body.get("openid_list") if isinstance(body, dict) else None
    if not isinstance(openids, list) or not all(isinstance(o, str) for o in openids):
        return 47001
    if not 0 < len(openids) <= limit:
        return 40032
    return openids
