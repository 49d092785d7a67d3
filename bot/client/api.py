"""The WeChat API client: tokens, profiles, customer-service sends and the operator APIs.

Every request carries a timeout. Token errors (40001/40014/42001) invalidate the token and
retry once with a fresh one; "system busy" (-1), timeouts, dropped connections and HTTP 5xx are
retried with exponential backoff and jitter, at most `max_attempts` times; every other errcode
is raised at once as a `WeChatAPIError`. Neither the token nor the secret ever reaches a log
line or an exception message.

The operator APIs are grouped by area, one module each: `api.menus`, `api.qrcodes`,
`api.media`, `api.templates`, `api.notices`, `api.users`, `api.tags`, `api.blacklist`,
`api.quota`; `api.media_files` turns local files into cached media ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, TypeVar

import aiohttp

from bot.client.blacklist import BlacklistAPI
from bot.client.caller import Download
from bot.client.errors import (
    ERR_BAD_ANSWER,
    ERR_TRANSPORT,
    LimitError,
    TransientAPIError,
    WeChatAPIError,
)
from bot.client.media import UPLOAD_TIMEOUT, MediaAPI
from bot.client.media_files import MediaFileCache
from bot.client.menus import MenuAPI
from bot.client.notices import NoticeAPI, TemplateAPI
from bot.client.qrcodes import QRCodeAPI
from bot.client.quota import QuotaAPI
from bot.client.tags import TagAPI
from bot.client.tokens import AccessTokenCache, TokenError
from bot.client.users import UserAPI
from bot.config import Config
from bot.storage.base import Storage

__all__ = [
    "ERR_BAD_ANSWER",
    "ERR_TRANSPORT",
    "TOKEN_ERRCODES",
    "APIObserver",
    "Download",
    "LimitError",
    "TransientAPIError",
    "UserInfo",
    "WeChatAPI",
    "WeChatAPIError",
    "client_for",
    "endpoint_name",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid / not latest / expired token
_BUSY = -1
_BATCH = 100  # user/info/batchget accepts at most 100 openids
_MAX_DOWNLOAD = 20 * 1024 * 1024  # the largest file the platform serves (video, 10 MB) twice over


@dataclass(frozen=True)
class UserInfo:
    """A follower's profile from `user/info` (see platform notes §1 for what is still real)."""

    openid: str
    subscribe: bool
    nickname: str  # "" when absent: the platform stopped sending real nicknames in 2021
    language: str | None  # None when absent or empty
    remark: str  # the operator's name for this follower, "" when none
    unionid: str | None
    subscribe_time: int | None
    tagid_list: tuple[int, ...]
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> UserInfo:
        """Parse one profile; raises ValueError when it has no openid."""
        openid = raw.get("openid")
        if not isinstance(openid, str) or not openid:
            raise ValueError("profile without an openid")
        tags = raw.get("tagid_list")
        tags = tags if isinstance(tags, list) else []
        return cls(
            openid=openid,
            subscribe=_int(raw.get("subscribe")) == 1,
            nickname=_str(raw.get("nickname")),
            language=_str(raw.get("language")) or None,
            remark=_str(raw.get("remark")),
            unionid=_str(raw.get("unionid")) or None,
            subscribe_time=_int(raw.get("subscribe_time")) or None,
            tagid_list=tuple(t for t in tags if isinstance(t, int) and not isinstance(t, bool)),
            raw=MappingProxyType(dict(raw)),
        )


class APIObserver(Protocol):
    """Hooks for metrics: one call per HTTP attempt, one per token fetched."""

    def on_call(self, endpoint: str, errcode: int, seconds: float) -> None:
        """An attempt at `endpoint` ended with `errcode` (ERR_TRANSPORT when no answer)."""

    def on_token_refresh(self) -> None:
        """A token was fetched from the platform."""


class _NoObserver:
    def on_call(self, endpoint: str, errcode: int, seconds: float) -> None:
        pass

    def on_token_refresh(self) -> None:
        pass


class WeChatAPI:
    """The API client of one account; share one per process (it holds the token cache)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: str,
        app_secret: str,
        storage: Storage,
        base_url: str = "https://api.weixin.qq.com",
        mp_base_url: str = "https://mp.weixin.qq.com",
        timeout: float = 5.0,
        token_endpoint: Literal["stable", "legacy"] = "stable",  # noqa: S107 -- not a secret
        max_attempts: int = 3,
        backoff: float = 0.2,
        observer: APIObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`timeout` bounds each HTTP attempt; `backoff` is the first retry's mean delay.

        `mp_base_url` serves QR-code images; `clock` (wall time) dates cached media ids.
        """
        self._session = session
        self._app_id = app_id
        self._secret = app_secret
        self._base = base_url.rstrip("/")
        self.mp_base_url = mp_base_url.rstrip("/")
        self._timeout = timeout
        self._token_endpoint = token_endpoint
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._observer: APIObserver = observer or _NoObserver()
        # the lock must outlive the holder's slowest fetch, or a second instance fetches too
        fetch_budget = self._max_attempts * timeout + backoff * 2**self._max_attempts
        self.tokens = AccessTokenCache(
            self.fetch_token,
            storage,
            app_id=app_id,
            lock_ttl=max(10.0, fetch_budget + 1.0),
            lock_wait=max(10.0, fetch_budget + 1.0),
        )
        self.menus = MenuAPI(self)
        self.qrcodes = QRCodeAPI(self)
        self.media = MediaAPI(self)
        self.templates = TemplateAPI(self)
        self.notices = NoticeAPI(self)
        self.users = UserAPI(self)
        self.tags = TagAPI(self)
        self.blacklist = BlacklistAPI(self)
        self.quota = QuotaAPI(self)
        # the uploader's lock outlives its slowest upload, or a second instance uploads too
        self.media_files = MediaFileCache(
            self.media, storage, app_id=app_id, clock=clock, lock_ttl=UPLOAD_TIMEOUT + 10.0
        )

    @property
    def app_id(self) -> str:
        """The account's AppID (clear_quota names it)."""
        return self._app_id

    async def fetch_token(self, force_refresh: bool) -> tuple[str, int]:
        """Ask the platform for a token; raises TokenError (used by `self.tokens`)."""
        if self._token_endpoint == "stable":  # noqa: S105 -- an endpoint name
            endpoint, method, path, params = "stable_token", "POST", "/cgi-bin/stable_token", None
            body: Any = {
                "grant_type": "client_credential",
                "appid": self._app_id,
                "secret": self._secret,
                "force_refresh": force_refresh,
            }
        else:  # the legacy endpoint issues a new token on every call; force_refresh is moot
            endpoint, method, path, body = "token", "GET", "/cgi-bin/token", None
            params = {
                "grant_type": "client_credential",
                "appid": self._app_id,
                "secret": self._secret,
            }
        try:
            data = await self._request(
                endpoint, method, self._base + path, params, _json(body), None, self._secret
            )
        except WeChatAPIError as exc:
            transient = isinstance(exc, TransientAPIError)
            raise TokenError(exc.errcode, exc.errmsg, transient=transient) from None
        if isinstance(data, Download):
            raise TokenError(ERR_BAD_ANSWER, "token answer is not JSON")
        errcode = _int(data.get("errcode"))
        if errcode:
            raise TokenError(errcode, _errmsg(data, self._secret))
        token, expires_in = data.get("access_token"), _int(data.get("expires_in"))
        if not isinstance(token, str) or not token or expires_in <= 0:
            raise TokenError(ERR_BAD_ANSWER, "token answer without access_token/expires_in")
        self._observer.on_token_refresh()
        return token, expires_in

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 -- a budget we enforce per attempt and overall
        attempt_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Call `path` with the access token; returns the answer, raises WeChatAPIError.

        The body is `json_body` as UTF-8 JSON, or `body` as is with `content_type` (a
        multipart upload). `timeout` bounds the whole call (retries and backoff included);
        each HTTP attempt is bounded by `attempt_timeout`, by default the client's `timeout`
        (an upload of megabytes needs longer than a JSON call).
        """
        payload = _payload(json_body, body, content_type)
        answer = await self._authorised(
            method, path, params, payload, timeout, attempt_timeout, False
        )
        if isinstance(answer, Download):
            raise WeChatAPIError(ERR_BAD_ANSWER, "a file instead of JSON", endpoint_name(path))
        return answer

    async def download(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109 -- as in call()
        attempt_timeout: float | None = None,
    ) -> Download:
        """Call `path` with the access token for a file; a JSON answer comes back as a
        `Download` of JSON (video material does that); an errcode raises WeChatAPIError."""
        payload = _payload(json_body, None, None)
        answer = await self._authorised(
            method, path, params, payload, timeout, attempt_timeout, True
        )
        if isinstance(answer, Download):
            return answer
        raw = json.dumps(answer, ensure_ascii=False).encode()
        return Download(raw, "application/json")

    async def call_with_secret(self, path: str, json_body: Mapping[str, Any]) -> dict[str, Any]:
        """POST `path` authenticated by the AppID and AppSecret instead of a token (for when
        no token can be had, e.g. clear_quota/v2); the secret is masked in every message."""
        body = {**json_body, "appid": self._app_id, "appsecret": self._secret}
        endpoint = endpoint_name(path)
        answer = await self._request(
            endpoint, "POST", self._base + path, None, _json(body), None, self._secret
        )
        if isinstance(answer, Download):  # not asked for: `binary` is off
            raise WeChatAPIError(ERR_BAD_ANSWER, "a file instead of JSON", endpoint)
        errcode = _int(answer.get("errcode"))
        if errcode:
            raise WeChatAPIError(errcode, _errmsg(answer, self._secret), endpoint)
        return answer

    async def fetch_public(self, url: str, endpoint: str) -> Download:
        """GET a file the platform serves without a token (a QR-code image), with the same
        timeouts and retries; an HTTP error or a JSON errcode raises WeChatAPIError."""
        answer = await self._request(endpoint, "GET", url, None, None, None, "", binary=True)
        if isinstance(answer, Download):
            return answer
        errcode = _int(answer.get("errcode")) or ERR_BAD_ANSWER
        raise WeChatAPIError(errcode, _errmsg(answer, ""), endpoint)

    async def _authorised(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        payload: tuple[bytes, str] | None,
        timeout: float | None,  # noqa: ASYNC109 -- as in call()
        attempt_timeout: float | None,
        binary: bool,
    ) -> dict[str, Any] | Download:
        endpoint = endpoint_name(path)
        deadline = None if timeout is None else time.monotonic() + timeout
        for token_attempt in (1, 2):
            try:
                token = await _within(self.tokens.get(), deadline)
            except TokenError as exc:
                cls = TransientAPIError if exc.transient else WeChatAPIError
                raise cls(exc.errcode, exc.errmsg, "token") from None
            except TimeoutError:
                raise TransientAPIError(
                    ERR_TRANSPORT, "timed out getting a token", "token"
                ) from None
            query = {**(params or {}), "access_token": token}
            data = await self._request(
                endpoint,
                method,
                self._base + path,
                query,
                payload,
                deadline,
                token,
                binary,
                attempt_timeout,
            )
            if isinstance(data, Download):
                return data
            errcode = _int(data.get("errcode"))
            if errcode == 0:
                return data
            if errcode in TOKEN_ERRCODES:
                log.info("%s: token refused (errcode %d); dropping it", endpoint, errcode)
                await self.tokens.invalidate(token)
                if token_attempt == 1:
                    continue
            raise WeChatAPIError(errcode, _errmsg(data, token), endpoint)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def get_user_info(
        self,
        openid: str,
        lang: str = "zh_CN",
        *,
        timeout: float | None = None,  # noqa: ASYNC109 -- passed on to call()
    ) -> UserInfo:
        """One follower's profile (`subscribe` False for someone who does not follow)."""
        data = await self.call(
            "GET", "/cgi-bin/user/info", params={"openid": openid, "lang": lang}, timeout=timeout
        )
        return self._user_info(data, "user_info")

    async def batch_get_user_info(
        self, openids: Sequence[str], lang: str = "zh_CN"
    ) -> list[UserInfo]:
        """Profiles of `openids` in the platform's order, fetched 100 per call."""
        profiles: list[UserInfo] = []
        for start in range(0, len(openids), _BATCH):
            chunk = openids[start : start + _BATCH]
            body = {"user_list": [{"openid": o, "lang": lang} for o in chunk]}
            data = await self.call("POST", "/cgi-bin/user/info/batchget", json_body=body)
            answers = data.get("user_info_list")
            if not isinstance(answers, list):
                raise WeChatAPIError(ERR_BAD_ANSWER, "no user_info_list", "user_info_batchget")
            profiles.extend(self._user_info(a, "user_info_batchget") for a in answers)
        return profiles

    async def send_custom_message(self, payload: Mapping[str, Any]) -> None:
        """Send a customer-service message (`{"touser":…, "msgtype":…, <msgtype>: {…}}`)."""
        await self.call("POST", "/cgi-bin/message/custom/send", json_body=dict(payload))

    async def send_text(self, openid: str, content: str) -> None:
        """Send a text through the customer-service API."""
        await self.send_custom_message(
            {"touser": openid, "msgtype": "text", "text": {"content": content}}
        )

    async def typing(self, openid: str, typing: bool = True) -> None:
        """Show (or cancel) the typing indicator to the follower."""
        command = "Typing" if typing else "CancelTyping"
        await self.call(
            "POST",
            "/cgi-bin/message/custom/typing",
            json_body={"touser": openid, "command": command},
        )

    @staticmethod
    def _user_info(data: Any, endpoint: str) -> UserInfo:
        try:
            return UserInfo.from_raw(data)
        except (ValueError, TypeError, AttributeError):
            raise WeChatAPIError(ERR_BAD_ANSWER, "malformed profile", endpoint) from None

    async def _request(
        self,
        endpoint: str,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        payload: tuple[bytes, str] | None,
        deadline: float | None,
        credential: str,
        binary: bool = False,
        attempt_timeout: float | None = None,
    ) -> dict[str, Any] | Download:
        """One logical request: the decoded answer, retrying transient failures.

        Errcodes other than -1 are left to the caller; `credential` is kept out of messages.
        With `binary`, an answer that is not JSON comes back as a `Download`.
        """
        data, headers = None, None
        if payload is not None:
            data, headers = payload[0], {"Content-Type": payload[1]}
        failure = ""
        errcode = ERR_TRANSPORT
        for attempt in range(1, self._max_attempts + 1):
            this_attempt = attempt_timeout or self._timeout
            if deadline is not None:
                this_attempt = min(this_attempt, deadline - time.monotonic())
                if this_attempt <= 0:
                    break
            started = time.monotonic()
            errcode = ERR_TRANSPORT
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=this_attempt),
                ) as resp:
                    status = resp.status
                    kind = resp.content_type
                    disposition = resp.headers.get("Content-Disposition", "")
                    body = await _read_bounded(resp, endpoint)
                if status >= 500:
                    failure = f"HTTP {status}"
                elif binary and status == 200 and not _is_json_type(kind):
                    self._observer.on_call(endpoint, 0, time.monotonic() - started)
                    return Download(body, kind, _filename(disposition))
                else:
                    answer = _decode(body) if status == 200 else None
                    if answer is None:
                        self._observer.on_call(endpoint, ERR_BAD_ANSWER, time.monotonic() - started)
                        raise WeChatAPIError(
                            ERR_BAD_ANSWER, f"unusable answer (HTTP {status})", endpoint
                        )
                    errcode = _int(answer.get("errcode"))
                    if errcode != _BUSY:
                        self._observer.on_call(endpoint, errcode, time.monotonic() - started)
                        return answer
                    failure = f"errcode -1: {_errmsg(answer, credential)}"
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                # never str(exc): aiohttp puts the full URL (token, secret) in some messages
                failure = type(exc).__name__
            except aiohttp.ClientError as exc:
                self._observer.on_call(endpoint, ERR_TRANSPORT, time.monotonic() - started)
                raise WeChatAPIError(ERR_TRANSPORT, type(exc).__name__, endpoint) from None
            self._observer.on_call(endpoint, errcode, time.monotonic() - started)
            if attempt == self._max_attempts:
                break
            delay = self._backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            if deadline is not None and time.monotonic() + delay >= deadline:
                break
            log.warning(
                "%s %s: %s (attempt %d of %d); retrying in %.2fs",
                method, endpoint, failure, attempt, self._max_attempts, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
        raise TransientAPIError(errcode, failure or "no time left for an attempt", endpoint)


def client_for(
    config: Config,
    session: aiohttp.ClientSession,
    storage: Storage,
    observer: APIObserver | None = None,
) -> WeChatAPI:
    """The account's client as `config` sets it up (`serve` and the operator commands)."""
    return WeChatAPI(
        session,
        app_id=config.app_id,
        app_secret=config.app_secret,
        storage=storage,
        base_url=config.api_base_url,
        mp_base_url=config.mp_base_url,
        timeout=config.api_timeout,
        token_endpoint="legacy" if config.token_endpoint == "legacy" else "stable",  # noqa: S105
        max_attempts=config.api_max_attempts,
        observer=observer,
    )


def endpoint_name(path: str) -> str:
    """A short, bounded name for an API path: "/cgi-bin/message/custom/send" -> "custom_send"."""
    name = path.split("?", 1)[0].strip("/").removeprefix("cgi-bin/").removeprefix("message/")
    return name.replace("/", "_")


async def _within(awaitable: Awaitable[T], deadline: float | None) -> T:
    """Await with an optional monotonic deadline (TimeoutError when it passes)."""
    if deadline is None:
        return await awaitable
    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
        return await awaitable


async def _read_bounded(resp: aiohttp.ClientResponse, endpoint: str) -> bytes:
    """The whole body, refused beyond `_MAX_DOWNLOAD` bytes (no answer the platform sends is)."""
    if resp.content_length is not None and resp.content_length > _MAX_DOWNLOAD:
        raise WeChatAPIError(ERR_BAD_ANSWER, "answer too large", endpoint)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > _MAX_DOWNLOAD:
            raise WeChatAPIError(ERR_BAD_ANSWER, "answer too large", endpoint)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: Any) -> tuple[bytes, str] | None:
    return _payload(body, None, None)


def _payload(
    json_body: Any, body: bytes | None, content_type: str | None
) -> tuple[bytes, str] | None:
    """The request's bytes and Content-Type."""
    if body is not None:
        return body, content_type or "application/octet-stream"
    if json_body is None:
        return None
    # UTF-8 text, not \\uXXXX escapes: what the platform expects (platform notes §4)
    data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
    return data, "application/json; charset=utf-8"


def _is_json_type(content_type: str) -> bool:
    # the platform labels JSON errors text/plain at times
    return content_type in ("application/json", "text/plain", "text/json")


def _filename(disposition: str) -> str:
    """The filename of a Content-Disposition header ("" when none)."""
    for part in disposition.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "filename":
            return value.strip().strip('"')[:255]
    return ""


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _int(value: object) -> int:
    """An integer field of an answer (0 when absent or not a number)."""
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(str(value))
    except ValueError:
        return 0


def _errmsg(answer: Mapping[str, Any], credential: str) -> str:
    """The platform's errmsg, bounded and with the credential masked should it be echoed."""
    errmsg = _str(answer.get("errmsg"))[:300]
    return errmsg.replace(credential, "***") if credential else errmsg


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
