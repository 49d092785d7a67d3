"""A fake WeChat API server for tests, the demo and benchmarks (loopback only).

It answers the endpoints the bot uses with the platform's shapes (token issuance, profiles,
customer-service sends, typing) and lets a test or another process inject faults: error codes,
HTTP errors, dropped connections, latency and expired tokens. Control it in process through
`FakeWeChat`'s methods or over HTTP under `/_fake/`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from aiohttp import web

ENDPOINTS = (
    "stable_token",
    "token",
    "user_info",
    "user_info_batchget",
    "custom_send",
    "custom_typing",
)
FaultKind = Literal["errcode", "status", "reset"]

_LEGACY_GRACE = 300.0  # the previous legacy token lives 5 minutes after a new one is issued
_MAX_TOKENS = 10_000  # issued tokens remembered (oldest forgotten first)
_MAX_BATCH = 100
_MSG_TYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "mpnews", "link", "miniprogrampage"}
)
_ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40032: "invalid openid list size",
    40125: "invalid appsecret",
    42001: "access_token expired",
    43004: "require subscribe",
    44004: "text content is empty",
    47001: "data format error",
}
_json_response = partial(web.json_response, dumps=partial(json.dumps, ensure_ascii=False))


@dataclass(frozen=True)
class FakeFollower:
    """One follower as the fake platform knows it."""

    openid: str
    subscribe: int = 1
    nickname: str = ""
    language: str = "zh_CN"
    remark: str = ""
    unionid: str | None = None
    subscribe_time: int = 1641364601
    subscribe_scene: str = "ADD_SCENE_SEARCH"
    tagid_list: tuple[int, ...] = ()

    def profile(self) -> dict[str, Any]:
        """The `user/info` answer for this follower, shaped like today's platform."""
        if not self.subscribe:
            return {"subscribe": 0, "openid": self.openid}
        info: dict[str, Any] = {
            "subscribe": 1,
            "openid": self.openid,
            "nickname": self.nickname,
            "sex": 0,
            "city": "",
            "province": "",
            "country": "",
            "headimgurl": "",
            "subscribe_time": self.subscribe_time,
            "remark": self.remark,
            "groupid": 0,
            "tagid_list": list(self.tagid_list),
            "subscribe_scene": self.subscribe_scene,
            "qr_scene": 0,
            "qr_scene_str": "",
        }
        if self.language:  # "no longer provided": absent when the fake has none
            info["language"] = self.language
        if self.unionid:
            info["unionid"] = self.unionid
        return info


DEMO_FOLLOWERS: tuple[FakeFollower, ...] = (
    FakeFollower("o_demo_alice", nickname="Alice", language="en", subscribe_time=1500000000),
    FakeFollower("o_demo_wang"),
    FakeFollower("o_demo_lin", remark="林老師", tagid_list=(2,)),
    FakeFollower("o_demo_sam", language=""),
    FakeFollower("o_demo_gone", subscribe=0),
)


@dataclass
class _Token:
    expires_at: float
    revoked_at: float | None = None  # superseded: answers 40001 from then on


@dataclass
class _Fault:
    endpoint: str | None
    kind: FaultKind
    value: int
    times: int
    errmsg: str


class FakeWeChat:
    """The fake platform: `app` is the server, the methods drive it."""

    def __init__(
        self,
        *,
        app_id: str = "wx_fake_app",
        app_secret: str = "fake_secret",  # noqa: S107 -- the fake's own, not a real secret
        followers: Iterable[FakeFollower] = DEMO_FOLLOWERS,
        token_ttl: int = 7200,
        clock: Callable[[], float] = time.time,
        sent_limit: int = 100_000,
    ) -> None:
        """A fake account `app_id` with `followers`; `clock` lets tests move time."""
        self.app_id = app_id
        self.app_secret = app_secret
        self.token_ttl = token_ttl
        self.sent_limit = sent_limit
        self._clock = clock
        self._followers = {f.openid: f for f in followers}
        self._tokens: dict[str, _Token] = {}
        self._stable: str | None = None
        self._legacy: str | None = None
        self._faults: list[_Fault] = []
        self._latency: dict[str | None, float] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self.sent: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/cgi-bin/stable_token", self._stable_token),
                web.get("/cgi-bin/token", self._legacy_token),
                web.get("/cgi-bin/user/info", self._user_info),
                web.post("/cgi-bin/user/info/batchget", self._user_info_batchget),
                web.post("/cgi-bin/message/custom/send", self._custom_send),
                web.post("/cgi-bin/message/custom/typing", self._custom_typing),
                web.get("/_fake/counters", self._ctl_counters),
                web.get("/_fake/sent", self._ctl_sent),
                web.post("/_fake/reset", self._ctl_reset),
                web.post("/_fake/fault", self._ctl_fault),
            ]
        )

    # -- control ---------------------------------------------------------------------------

    def add_follower(self, f: FakeFollower) -> None:
        """Add (or replace) a follower."""
        self._followers[f.openid] = f

    def fail_with_errcode(
        self, endpoint: str | None, errcode: int, times: int = 1, errmsg: str = ""
    ) -> None:
        """The next `times` calls of `endpoint` (None: any) answer `{"errcode": errcode}`."""
        self._add_fault(endpoint, "errcode", errcode, times, errmsg)

    def fail_with_status(self, endpoint: str | None, status: int, times: int = 1) -> None:
        """The next `times` calls of `endpoint` (None: any) answer HTTP `status`."""
        self._add_fault(endpoint, "status", status, times, "")

    def reset_connection(self, endpoint: str | None, times: int = 1) -> None:
        """The next `times` calls of `endpoint` (None: any) drop the connection unanswered."""
        self._add_fault(endpoint, "reset", 0, times, "")

    def set_latency(self, endpoint: str | None, seconds: float) -> None:
        """Delay every answer of `endpoint` (None: any) by `seconds` until set to 0."""
        _check_endpoint(endpoint)
        if seconds > 0:
            self._latency[endpoint] = seconds
        else:
            self._latency.pop(endpoint, None)

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001."""
        now = self._clock()
        for tok in self._tokens.values():
            tok.expires_at = min(tok.expires_at, now)

    def reset(self) -> None:
        """Clear counters, sent messages, faults and latency (tokens and followers stay)."""
        self.counters.clear()
        self.sent.clear()
        self._faults.clear()
        self._latency.clear()

    def _add_fault(
        self, endpoint: str | None, kind: FaultKind, value: int, times: int, errmsg: str
    ) -> None:
        _check_endpoint(endpoint)
        if times > 0:
            self._faults.append(_Fault(endpoint, kind, value, times, errmsg))

    # -- tokens ----------------------------------------------------------------------------

    def _issue(self, kind: str) -> str:
        token = f"{kind}_{secrets.token_urlsafe(24)}"
        if len(self._tokens) >= _MAX_TOKENS:
            del self._tokens[next(iter(self._tokens))]
        self._tokens[token] = _Token(self._clock() + self.token_ttl)
        return token

    def _token_error(self, token: str | None) -> int:
        """0 when `token` may call the API, else the platform's errcode."""
        tok = self._tokens.get(token or "")
        now = self._clock()
        if tok is None or (tok.revoked_at is not None and now >= tok.revoked_at):
            return 40001
        return 42001 if now >= tok.expires_at else 0

    def _credentials_error(self, appid: object, secret: object) -> int:
        if not isinstance(appid, str) or not secrets.compare_digest(appid, self.app_id):
            return 40013
        if not isinstance(secret, str) or not secrets.compare_digest(secret, self.app_secret):
            return 40125
        return 0

    # -- the platform's endpoints ------------------------------------------------------------

    async def _enter(self, request: web.Request, endpoint: str) -> web.StreamResponse | None:
        """Count the call, apply latency and the next matching fault (None: answer normally)."""
        self.counters[endpoint] += 1
        delay = self._latency.get(endpoint, self._latency.get(None, 0.0))
        if delay:
            await asyncio.sleep(delay)
        fault = next(
            (f for f in self._faults if f.endpoint in (None, endpoint) and f.times > 0), None
        )
        if fault is None:
            return None
        fault.times -= 1
        if fault.times == 0:
            self._faults.remove(fault)
        if fault.kind == "errcode":
            return _error(fault.value, fault.errmsg or None)
        if fault.kind == "status":
            return web.Response(status=fault.value, text=f"<html>{fault.value}</html>")
        if request.transport is not None:
            request.transport.abort()  # close without an answer, as a dying proxy would
        raise asyncio.CancelledError  # stops aiohttp from writing to the dead connection

    async def _stable_token(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "stable_token")) is not None:
            return answer
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _error(47001)
        if body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        if code := self._credentials_error(body.get("appid"), body.get("secret")):
            return _error(code)
        now = self._clock()
        current = self._tokens.get(self._stable or "")
        roll_early = min(_LEGACY_GRACE, self.token_ttl / 2)  # the platform rolls ~5 min early
        if (
            body.get("force_refresh") is True
            or current is None
            or self._token_error(self._stable) != 0
            or current.expires_at - now <= roll_early
        ):
            if body.get("force_refresh") is True and current is not None:
                current.revoked_at = now  # force_refresh invalidates the old token at once
            self._stable = self._issue("stable")
            current = self._tokens[self._stable]
        return _json_response(
            {"access_token": self._stable, "expires_in": int(current.expires_at - now)}
        )

    async def _legacy_token(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "token")) is not None:
            return answer
        query = request.query
        if query.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        if code := self._credentials_error(query.get("appid"), query.get("secret")):
            return _error(code)
        previous = self._tokens.get(self._legacy or "")
        if previous is not None and previous.revoked_at is None:
            previous.revoked_at = self._clock() + _LEGACY_GRACE
        self._legacy = self._issue("legacy")
        return _json_response({"access_token": self._legacy, "expires_in": self.token_ttl})

    async def _user_info(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "user_info")) is not None:
            return answer
        if code := self._token_error(request.query.get("access_token")):
            return _error(code)
        follower = self._followers.get(request.query.get("openid", ""))
        if follower is None:
            return _error(40003)
        return _json_response(follower.profile())

    async def _user_info_batchget(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "user_info_batchget")) is not None:
            return answer
        if code := self._token_error(request.query.get("access_token")):
            return _error(code)
        body = await _json_body(request)
        users = body.get("user_list") if isinstance(body, dict) else None
        if not isinstance(users, list) or not all(
            isinstance(u, dict) and isinstance(u.get("openid"), str) for u in users
        ):
            return _error(47001)
        if not 0 < len(users) <= _MAX_BATCH:
            return _error(40032)
        profiles = []
        for user in users:
            follower = self._followers.get(user["openid"])
            if follower is None:
                return _error(40003)
            profiles.append(follower.profile())
        return _json_response({"user_info_list": profiles})

    async def _custom_send(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "custom_send")) is not None:
            return answer
        if code := self._token_error(request.query.get("access_token")):
            return _error(code)
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _error(47001)
        if code := self._follower_error(body.get("touser")):
            return _error(code)
        msgtype = body.get("msgtype")
        if msgtype not in _MSG_TYPES:
            return _error(40008)
        content = body.get(msgtype)
        if not isinstance(content, dict):
            return _error(47001)
        if msgtype == "text" and not (
            isinstance(content.get("content"), str) and content["content"]
        ):
            return _error(44004)
        self.sent.append(body)
        if len(self.sent) > self.sent_limit:
            del self.sent[0]
        return _error(0, "ok")

    async def _custom_typing(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "custom_typing")) is not None:
            return answer
        if code := self._token_error(request.query.get("access_token")):
            return _error(code)
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("command") not in ("Typing", "CancelTyping"):
            return _error(47001)
        if code := self._follower_error(body.get("touser")):
            return _error(code)
        return _error(0, "ok")

    def _follower_error(self, openid: object) -> int:
        follower = self._followers.get(openid) if isinstance(openid, str) else None
        if follower is None:
            return 40003
        return 0 if follower.subscribe else 43004

    # -- control over HTTP ---------------------------------------------------------------------

    async def _ctl_counters(self, request: web.Request) -> web.StreamResponse:
        return _json_response(dict(self.counters))

    async def _ctl_sent(self, request: web.Request) -> web.StreamResponse:
        return _json_response(self.sent)

    async def _ctl_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return _json_response({"ok": True})

    async def _ctl_fault(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _json_response({"error": "expected a JSON object"}, status=400)
        endpoint, kind, value = body.get("endpoint"), body.get("kind"), body.get("value", 0)
        times = body.get("times", 1)
        try:
            if not isinstance(times, int) or not isinstance(value, int | float):
                raise ValueError("times must be an integer and value a number")
            if kind == "errcode":
                self.fail_with_errcode(endpoint, int(value), times, str(body.get("errmsg", "")))
            elif kind == "status":
                self.fail_with_status(endpoint, int(value), times)
            elif kind == "reset":
                self.reset_connection(endpoint, times)
            elif kind == "latency":
                self.set_latency(endpoint, float(value))
            elif kind == "expire_tokens":
                self.expire_tokens()
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except ValueError as exc:
            return _json_response({"error": str(exc)}, status=400)
        return _json_response({"ok": True})


def _check_endpoint(endpoint: object) -> None:
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")


def _error(errcode: int, errmsg: str | None = None) -> web.Response:
    return _json_response({"errcode": errcode, "errmsg": errmsg or _ERRMSG.get(errcode, "error")})


async def _json_body(request: web.Request) -> Any:
    """The decoded JSON body, or None when it is not JSON (the platform answers 47001)."""
    try:
        return json.loads(await request.read())
    except ValueError:  # covers JSONDecodeError and UnicodeDecodeError
        return None


async def start_fake_wechat(
    host: str = "127.0.0.1", port: int = 0, fake: FakeWeChat | None = None
) -> tuple[web.AppRunner, str]:
    """Serve `fake` (a new one by default) on host:port (0: a free port); returns its base URL.

    Stop it with `await runner.cleanup()`.
    """
    runner = web.AppRunner((fake or FakeWeChat()).app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual_host, actual_port = runner.addresses[0][:2]
    return runner, f"http://{actual_host}:{actual_port}"


def main(argv: list[str] | None = None) -> None:
    """Run the fake with the demo followers: `python -m bot.fake_wechat --port 8081`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    web.run_app(FakeWeChat().app, host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
