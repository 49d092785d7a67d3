"""The platform's web-authorization endpoints: the code exchange and `sns/userinfo`.

The access token these return belongs to one follower and one page view: the callback uses it
for exactly one `sns/userinfo` call and drops it. Nothing here logs a code, a token or a name.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

MAX_ANSWER_BYTES = 16 * 1024  # a grant or a profile is a few hundred bytes
MAX_NICKNAME = 64  # characters kept of a nickname (WeChat allows about 20)


class OAuthError(Exception):
    """The platform refused (`errcode` > 0) or could not be reached (`errcode` -2)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


UNREACHABLE = -2
"""`OAuthError.errcode` when no usable answer came (timeout, connection, HTTP error, not JSON)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What the code exchange returned: the follower and a one-use token (never stored)."""

    openid: str
    access_token: str
    scope: str
    snapshot_user: bool

    def __repr__(self) -> str:
        return f"Grant(openid={self.openid!r}, scope={self.scope!r}, token=***)"


class OAuthClient:
    """`sns/oauth2/access_token` and `sns/userinfo` with a timeout on each call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: str,
        app_secret: str,
        base_url: str,
        timeout: float,
    ) -> None:
        """`base_url`: the API host (`api_base_url`); `timeout`: seconds per call."""
        self._session = session
        self._app_id = app_id
        self._secret = app_secret
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    async def exchange(self, code: str) -> Grant:
        """Trade the code for a grant (the platform accepts each code once)."""
        answer = await self._get(
            "/sns/oauth2/access_token",
            {
                "appid": self._app_id,
                "secret": self._secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        openid, token = answer.get("openid"), answer.get("access_token")
        if not isinstance(openid, str) or not openid or not isinstance(token, str) or not token:
            raise OAuthError(UNREACHABLE, "the grant has no openid or access_token")
        scope = answer.get("scope")
        return Grant(
            openid=openid,
            access_token=token,
            scope=scope if isinstance(scope, str) else "",
            snapshot_user=answer.get("is_snapshotuser") == 1,
        )

    async def nickname(self, grant: Grant, lang: str = "zh_CN") -> str:
        """The follower's nickname from `sns/userinfo` ("" when the platform gives none)."""
        answer = await self._get(
            "/sns/userinfo",
            {"access_token": grant.access_token, "openid": grant.openid, "lang": lang},
        )
        if answer.get("openid") not in (None, grant.openid):
            raise OAuthError(UNREACHABLE, "sns/userinfo answered for another openid")
        nickname = answer.get("nickname")
        return clean_nickname(nickname) if isinstance(nickname, str) else ""

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.get(self._base + path, params=params) as response:
                    if response.status != 200:
                        raise OAuthError(UNREACHABLE, f"HTTP {response.status}")
                    body = await response.content.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise OAuthError(UNREACHABLE, f"no answer within {self._timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise OAuthError(UNREACHABLE, type(exc).__name__) from None
        if len(body) > MAX_ANSWER_BYTES:
            raise OAuthError(UNREACHABLE, "answer too large")
        try:
            answer = json.loads(body)
        except ValueError:
            raise OAuthError(UNREACHABLE, "answer is not JSON") from None
        if not isinstance(answer, dict):
            raise OAuthError(UNREACHABLE, "answer is not a JSON object")
        errcode = answer.get("errcode", 0)
        if errcode not in (0, None):
            code = errcode if isinstance(errcode, int) else UNREACHABLE
            raise OAuthError(code, str(answer.get("errmsg", ""))[:200])
        return answer


def clean_nickname(raw: str) -> str:
    """A nickname fit to greet with: control characters removed, spaces folded, bounded."""
    printable = "".join(c if c.isprintable() else " " for c in raw)
    return " ".join(printable.split())[:MAX_NICKNAME]
