"""A fake WeChat API server for tests, the demo and benchmarks (loopback only).

It answers the endpoints the bot uses with the platform's shapes and checks (token issuance,
profiles, customer-service sends, typing, web authorization's authorize page, code exchange and
sns/userinfo, and the operator APIs: menus, QR codes, media, templates and notices, the follower
list, tags, the blacklist, quotas — one module each) and
lets a test or another process inject faults: error codes, HTTP errors, dropped connections,
latency and expired tokens. Control it in process through `FakeWeChat`'s methods or over HTTP
under `/_fake/`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from bot.testing import fake_media, fake_menus, fake_notices, fake_oauth, fake_qrcodes, fake_users
from bot.testing.fake_followers import DEMO_FOLLOWERS, FakeFollower, many_followers
from bot.testing.fake_http import error as _error
from bot.testing.fake_http import json_body as _json_body
from bot.testing.fake_http import json_response as _json_response
from bot.testing.fake_http import ok

__all__ = [
    "DEMO_FOLLOWERS",
    "ENDPOINTS",
    "FakeFollower",
    "FakeWeChat",
    "many_followers",
    "start_fake_wechat",
]

ENDPOINTS = (
    "stable_token",
    "token",
    "user_info",
    "user_info_batchget",
    "custom_send",
    "custom_typing",
    *fake_menus.ENDPOINTS,
    *fake_qrcodes.ENDPOINTS,
    *fake_media.ENDPOINTS,
    *fake_notices.ENDPOINTS,
    *fake_users.ENDPOINTS,
    *fake_oauth.ENDPOINTS,
    "openapi_quota_get",
    "clear_quota",
    "clear_quota_v2",
)
FaultKind = Literal["errcode", "status", "reset"]

_LEGACY_GRACE = 300.0  # the previous legacy token lives 5 minutes after a new one is issued
_MAX_TOKENS = 10_000  # issued tokens remembered (oldest forgotten first)
_MAX_BATCH = 100
_MSG_TYPES = frozenset(
    {"text", "image", "voice", "video", "music", "news", "mpnews", "link", "miniprogrampage"}
)
DAILY_LIMIT = 100_000  # the fake's daily quota of every API (openapi/quota/get shows it)
CLEARS_A_MONTH = 10
MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # a request body the fake reads (a 10 MB video and form)


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
        verified: bool = True,
    ) -> None:
        """A fake account `app_id` with `followers`; `clock` lets tests move time.

        `verified=False`: an unverified account, whose customer-service API (`custom/send`,
        `custom/typing`) answers 48001 as the platform's does (platform notes §7)."""
        self.verified = verified
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
        self.typing: list[tuple[float, str, str]] = []  # (time, openid, command) accepted
        # customer-service allowance per follower told of by `follower_wrote`: [left, until]
        self._allowance: dict[str, list[float]] = {}
        self.users = fake_users.FakeUsers(self._guard, self._followers)
        self.menus = fake_menus.FakeMenus(self._guard, self._followers, self.users.tag_exists)
        self.qrcodes = fake_qrcodes.FakeQRCodes(self._guard, clock)
        self.media = fake_media.FakeMedia(self._guard, clock)
        self.notices = fake_notices.FakeNotices(self._guard, self._followers, clock)
        self.oauth = fake_oauth.FakeOAuth(
            self._guard, self._followers, clock, app_id=app_id, app_secret=app_secret
        )
        self._quota_cleared: collections.Counter[str] = collections.Counter()
        self.quota_clears = 0
        self.app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        areas = (self.users, self.menus, self.qrcodes, self.media, self.notices, self.oauth)
        for area in areas:
            self.app.add_routes(area.routes())
        self.app.add_routes(
            [
                web.post("/cgi-bin/openapi/quota/get", self._quota_get),
                web.post("/cgi-bin/clear_quota", self._clear_quota),
                web.post("/cgi-bin/clear_quota/v2", self._clear_quota_v2),
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

    def follower_wrote(self, openid: str, scene: str = "message") -> None:
        """The follower sent a message (`scene="message"`: 5 customer-service messages within
        48 h) or a follow, QR scan or click (`"event"`: 3 within 1 minute), as the platform
        counts them (platform notes §7). From then on `custom/send` to them answers 45015
        outside the window and 45047 over the quota; followers never told of are not
        counted."""
        if scene not in ("message", "event"):
            raise ValueError(f"scene must be message or event, not {scene!r}")
        left, seconds = (5, 48 * 3600.0) if scene == "message" else (3, 60.0)
        self._allowance[openid] = [float(left), self._clock() + seconds]

    def follower(self, openid: str) -> FakeFollower | None:
        """A follower as the fake knows it now (remarks and tags included)."""
        return self._followers.get(openid)

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
        """Clear counters, sent messages, faults and latency (tokens, followers and what the
        operator areas hold — menus, codes, media, tags — stay)."""
        self.counters.clear()
        self.sent.clear()
        self.typing.clear()
        self._allowance.clear()
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

    async def _guard(
        self, request: web.Request, endpoint: str, *, token: bool = True
    ) -> web.StreamResponse | None:
        """Count, delay and fault the call, then check its access token (see `fake_http`)."""
        if (answer := await self._enter(request, endpoint)) is not None:
            return answer
        if token and (code := self._token_error(request.query.get("access_token"))):
            return _error(code)
        return None

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
        if not self.verified:
            return _error(48001, "api unauthorized")
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
        allowance = self._allowance.get(str(body["touser"]))
        if allowance is not None:
            if allowance[1] <= self._clock():
                return _error(45015, "response out of time limit or subscription is canceled")
            if allowance[0] < 1:
                return _error(45047, "out of response count limit")
            allowance[0] -= 1
        self.sent.append(body)
        if len(self.sent) > self.sent_limit:
            del self.sent[0]
        return _error(0, "ok")

    async def _custom_typing(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._enter(request, "custom_typing")) is not None:
            return answer
        if code := self._token_error(request.query.get("access_token")):
            return _error(code)
        if not self.verified:
            return _error(48001, "api unauthorized")
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("command") not in ("Typing", "CancelTyping"):
            return _error(47001)
        if code := self._follower_error(body.get("touser")):
            return _error(code)
        self.typing.append((self._clock(), str(body["touser"]), str(body["command"])))
        if len(self.typing) > self.sent_limit:
            del self.typing[0]
        return _error(0, "ok")

    async def _quota_get(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "openapi_quota_get")) is not None:
            return answer
        body = await _json_body(request)
        path = body.get("cgi_path") if isinstance(body, dict) else None
        endpoint = self._endpoint_of(path)
        if endpoint is None:
            return _error(76021)
        used = max(0, self.counters[endpoint] - self._quota_cleared[endpoint])
        quota = {"daily_limit": DAILY_LIMIT, "used": used, "remain": max(0, DAILY_LIMIT - used)}
        return _json_response({"errcode": 0, "errmsg": "ok", "quota": quota})

    async def _clear_quota(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "clear_quota")) is not None:
            return answer
        body = await _json_body(request)
        appid = body.get("appid") if isinstance(body, dict) else None
        if not isinstance(appid, str) or not secrets.compare_digest(appid, self.app_id):
            return _error(40013)
        return self._clear()

    async def _clear_quota_v2(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "clear_quota_v2", token=False)) is not None:
            return answer
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _error(47001)
        if code := self._credentials_error(body.get("appid"), body.get("appsecret")):
            return _error(code)
        return self._clear()

    def _clear(self) -> web.Response:
        """Reset the daily counts (10 a month, both endpoints together)."""
        if self.quota_clears >= CLEARS_A_MONTH:
            return _error(48006)
        self.quota_clears += 1
        self._quota_cleared = collections.Counter(self.counters)
        return ok()

    def _endpoint_of(self, path: object) -> str | None:
        """The counter name of an API path the fake serves (None when it serves none such)."""
        if not isinstance(path, str) or not path.startswith("/cgi-bin/"):
            return None
        for resource in self.app.router.resources():
            if resource.canonical == path:
                name = path.removeprefix("/cgi-bin/").removeprefix("message/")
                return name.replace("/", "_")
        return None

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
    """Run the fake with the demo followers: `python -m bot.testing.fake_wechat --port 8081`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--unverified",
        action="store_true",
        help="an unverified account: the customer-service API answers 48001",
    )
    args = parser.parse_args(argv)
    fake = FakeWeChat(verified=not args.unverified)
    web.run_app(fake.app, host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
