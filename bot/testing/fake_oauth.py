"""The fake platform's web authorization: the authorize page, the code exchange, sns/userinfo.

`GET /connect/oauth2/authorize` plays WeChat's consent screen (Allow / Deny) and redirects to the
redirect URI with `code` and `state` (Deny: `state` alone). WeChat knows who is looking at the
page; the fake learns it from `fake_user=<openid>` (the emulator adds it) or lets the visitor
pick a follower. `fake_snapshot=1` plays a snapshot page (§9): the grant says
`is_snapshotuser: 1` for a virtual openid. Codes live 5 minutes and work once; the tokens they
buy are not the account's tokens.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from bot.testing.fake_followers import FakeFollower
from bot.testing.fake_http import Guard, error, json_response

ENDPOINTS = ("oauth_authorize", "oauth_consent", "sns_access_token", "sns_userinfo", "sns_auth")
CODE_TTL = 300.0  # the platform's: 5 minutes, once
SNS_TOKEN_TTL = 7200
MAX_CODES = 10_000  # codes (and tokens) remembered, oldest forgotten first
MAX_STATE = 128
_STATE = re.compile(r"[A-Za-z0-9]*")
_SCOPES = ("snsapi_base", "snsapi_userinfo")

# What WeChat's authorize page shows for a bad request ("Oops! Something went wrong:(")
PAGE_ERRORS = {
    10003: "redirect_uri域名与后台配置不一致",
    10005: "此公众号并没有这些scope的权限",
    10010: "scope不能为空",
    10011: "redirect_uri不能为空",
    10012: "appid不能为空",
    10016: "不支持微信开放平台的Appid，请使用公众号Appid",
    40013: "invalid appid",
    40117: "invalid response_type",
    40118: "invalid state",
}
SNS_ERRMSG = {
    40029: "invalid code",
    40163: "code been used",
    42003: "code expired",
    48001: "api unauthorized",
}


@dataclass
class _Code:
    openid: str
    scope: str
    snapshot: bool
    expires_at: float
    used: bool = False


@dataclass(frozen=True)
class _SnsToken:
    openid: str
    scope: str
    snapshot: bool
    expires_at: float


class FakeOAuth:
    """The fake's web-authorization area; `app_id`/`app_secret` are the account's."""

    def __init__(
        self,
        guard: Guard,
        followers: Mapping[str, FakeFollower],
        clock: Callable[[], float],
        *,
        app_id: str,
        app_secret: str,
    ) -> None:
        """`followers` is the fake's own table (shared, so later additions show)."""
        self._guard = guard
        self._followers = followers
        self._clock = clock
        self._app_id = app_id
        self._secret = app_secret
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _SnsToken] = {}
        self.domains: frozenset[str] | None = None
        """The account's 网页授权域名 (None: any host, as tests on loopback need)."""
        self.verified_service_account = True
        """False: a subscription (or unverified) account, whose authorize page answers 10005."""

    def routes(self) -> list[web.RouteDef]:
        """The area's routes."""
        return [
            web.get("/connect/oauth2/authorize", self._authorize),
            web.post("/connect/oauth2/authorize", self._consent),
            web.get("/sns/oauth2/access_token", self._access_token),
            web.get("/sns/userinfo", self._userinfo),
            web.get("/sns/auth", self._auth),
        ]

    def issue_code(
        self, openid: str, scope: str = "snsapi_userinfo", snapshot: bool = False
    ) -> str:
        """A code as if `openid` had consented (tests that skip the page)."""
        code = "code_" + secrets.token_urlsafe(18)
        _remember(self._codes, code, _Code(openid, scope, snapshot, self._clock() + CODE_TTL))
        return code

    # -- the authorize page ----------------------------------------------------------------

    def _request_error(self, query: Mapping[str, str]) -> int:
        """0 when the authorize request is one WeChat accepts, else its error number."""
        appid, redirect = query.get("appid", ""), query.get("redirect_uri", "")
        scope, state = query.get("scope", ""), query.get("state", "")
        if not appid:
            return 10012
        if not secrets.compare_digest(appid.encode(), self._app_id.encode()):
            return 40013
        if not redirect:
            return 10011
        url = urlsplit(redirect)
        if url.scheme not in ("http", "https") or not url.hostname:
            return 10003
        if self.domains is not None and url.hostname not in self.domains:
            return 10003
        if query.get("response_type") != "code":
            return 40117
        if not scope:
            return 10010
        if scope not in _SCOPES or not self.verified_service_account:
            return 10005
        if len(state.encode()) > MAX_STATE or not _STATE.fullmatch(state):
            return 40118
        return 0

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "oauth_authorize", token=False)) is not None:
            return answer
        query = request.query
        if code := self._request_error(query):
            return _error_page(f"{code} {PAGE_ERRORS[code]}")
        user = query.get("fake_user", "")
        snapshot = query.get("fake_snapshot") == "1"
        if query["scope"] == "snsapi_base" and user:
            return self._redirect(query, user, "snsapi_base", snapshot)  # silent: no consent
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in (
                "appid",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
                "fake_snapshot",
            )
        )
        if user in self._followers:
            who = (
                f'<input type="hidden" name="fake_user" value="{html.escape(user)}">'
                f"<p class=who>{html.escape(self._followers[user].wechat_nickname or user)}</p>"
            )
        else:
            options = "".join(
                f'<option value="{html.escape(f.openid)}">'
                f"{html.escape(f.wechat_nickname or f.openid)} ({html.escape(f.openid)})</option>"
                for f in self._followers.values()
            )
            who = (
                "<label>你是哪位微信用户（仅模拟器）· Who are you (fake only)"
                f'<select name="fake_user">{options}</select></label>'
            )
        body = (
            '<form method="post" action="/connect/oauth2/authorize">'
            f"{hidden}{who}<h1>申请获取你的昵称、头像</h1>"
            "<p>Request for your nickname and profile photo</p>"
            '<button name="decision" value="allow" class="allow">允许 · Allow</button>'
            '<button name="decision" value="deny" class="deny">拒绝 · Deny</button></form>'
        )
        return _page("微信授权 · WeChat authorization", body)

    async def _consent(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "oauth_consent", token=False)) is not None:
            return answer
        form = await request.post()
        query = {k: v for k, v in form.items() if isinstance(v, str)}
        if code := self._request_error(query):
            return _error_page(f"{code} {PAGE_ERRORS[code]}")
        user = query.get("fake_user", "")
        if user not in self._followers:
            return _error_page("unknown user")
        if query.get("decision") != "allow":
            return _location(query["redirect_uri"], {"state": query.get("state", "")})
        return self._redirect(query, user, query["scope"], query.get("fake_snapshot") == "1")

    def _redirect(
        self, query: Mapping[str, str], openid: str, scope: str, snapshot: bool
    ) -> web.StreamResponse:
        if snapshot:
            openid = "o_snapshot_" + secrets.token_hex(6)  # virtual until 使用完整服务
        code = self.issue_code(openid, scope, snapshot)
        return _location(query["redirect_uri"], {"code": code, "state": query.get("state", "")})

    # -- the API -----------------------------------------------------------------------------

    async def _access_token(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "sns_access_token", token=False)) is not None:
            return answer
        query = request.query
        if not secrets.compare_digest(query.get("appid", "").encode(), self._app_id.encode()):
            return error(40013)
        if not secrets.compare_digest(query.get("secret", "").encode(), self._secret.encode()):
            return error(40125)
        if query.get("grant_type") != "authorization_code":
            return error(40002, "invalid grant_type")
        entry = self._codes.get(query.get("code", ""))
        if entry is None:
            return error(40029, SNS_ERRMSG[40029])
        if entry.used:
            return error(40163, SNS_ERRMSG[40163])
        entry.used = True
        if self._clock() >= entry.expires_at:
            return error(42003, SNS_ERRMSG[42003])
        token = "sns_" + secrets.token_urlsafe(24)
        now = self._clock()
        _remember(
            self._tokens,
            token,
            _SnsToken(entry.openid, entry.scope, entry.snapshot, now + SNS_TOKEN_TTL),
        )
        grant: dict[str, Any] = {
            "access_token": token,
            "expires_in": SNS_TOKEN_TTL,
            "refresh_token": "snsr_" + secrets.token_urlsafe(24),
            "openid": entry.openid,
            "scope": entry.scope,
        }
        if entry.snapshot:
            grant["is_snapshotuser"] = 1
        follower = self._followers.get(entry.openid)
        if entry.scope == "snsapi_userinfo" and follower is not None and follower.unionid:
            grant["unionid"] = follower.unionid
        return json_response(grant)

    def _token_error(self, query: Mapping[str, str]) -> tuple[int, _SnsToken | None]:
        token = self._tokens.get(query.get("access_token", ""))
        if token is None:
            return 40001, None
        if self._clock() >= token.expires_at:
            return 42001, None
        if query.get("openid", "") != token.openid:
            return 40003, None
        return 0, token

    async def _userinfo(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "sns_userinfo", token=False)) is not None:
            return answer
        code, token = self._token_error(request.query)
        if token is None:
            return error(code)
        if token.scope != "snsapi_userinfo" or token.snapshot:
            return error(48001, SNS_ERRMSG[48001])
        follower = self._followers.get(token.openid)
        info: dict[str, Any] = {
            "openid": token.openid,
            "nickname": follower.wechat_nickname if follower else "",
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
        }
        if follower is not None and follower.unionid:
            info["unionid"] = follower.unionid
        return json_response(info)

    async def _auth(self, request: web.Request) -> web.StreamResponse:
        if (answer := await self._guard(request, "sns_auth", token=False)) is not None:
            return answer
        code, _token = self._token_error(request.query)
        return error(code)


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    if len(table) >= MAX_CODES:
        del table[next(iter(table))]
    table[key] = value


def _location(redirect_uri: str, params: Mapping[str, str]) -> web.StreamResponse:
    joiner = "&" if "?" in redirect_uri else "?"
    raise web.HTTPFound(redirect_uri.split("#", 1)[0] + joiner + urlencode(params))


_PAGE_STYLE = (
    "body{margin:0;background:#ededed;font:16px/1.5 -apple-system,'PingFang SC',sans-serif}"
    "main{max-width:480px;margin:0 auto;min-height:100vh;background:#fff;padding:48px 24px;"
    "box-sizing:border-box;text-align:center}h1{font-size:20px;font-weight:500}"
    ".who{font-weight:600}.err{color:#fa5151}label{display:block;margin:0 0 16px}"
    "select{display:block;margin:8px auto;font-size:16px}"
    "button{display:block;width:184px;margin:12px auto;padding:10px;border:0;border-radius:8px;"
    "font-size:17px}.allow{background:#07c160;color:#fff}.deny{background:#f2f2f2;color:#06ae56}"
)


def _error_page(problem: str) -> web.Response:
    """WeChat's page for a bad authorize request ("出错了"), with the platform's number."""
    return _page("出错了 · Something went wrong", f"<p class=err>{html.escape(problem)}</p>", 400)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=(
            '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>"
        ),
        content_type="text/html",
        charset="utf-8",
    )
