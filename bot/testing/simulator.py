"""Test helpers for users of the framework and for our own tests.

Build WeChat pushes, sign them with the production signing functions (and encrypt them in
safe mode), send them through the real HTTP path, and read the reply back:

    reply = await client.send_text("o_demo_wang", "你好")
    assert reply.content == "你好！欢迎关注Demo。"
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp

from bot.wechat.crypto import MessageCrypto
from bot.wechat.replies import parse_reply
from bot.wechat.signature import sha1_signature, verify_msg_signature
from bot.wechat.xml import parse_body

Mode = Literal["plain", "compatible", "safe"]

_msg_ids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)


def next_msg_id() -> str:
    """A fresh MsgId (unique within the process)."""
    return str(next(_msg_ids))


def cdata(value: str) -> str:
    """`value` as CDATA, with any `]]>` split so it survives."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: Mapping[str, Any]) -> str:
    """An `<xml>` document: str values in CDATA, ints bare, mappings nested."""
    parts = ["<xml>"]
    _append_fields(parts, fields)
    parts.append("</xml>")
    return "".join(parts)


def _append_fields(parts: list[str], fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        if isinstance(value, Mapping):
            parts.append(f"<{name}>")
            _append_fields(parts, value)
            parts.append(f"</{name}>")
        elif isinstance(value, list):
            for item in value:
                parts.append(f"<{name}>")
                _append_fields(parts, item)
                parts.append(f"</{name}>")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}>{cdata(str(value))}</{name}>")


def text_fields(
    openid: str,
    content: str,
    *,
    account: str = "gh_test_account",
    msg_id: str | None = None,
    create_time: int | None = None,
) -> dict[str, Any]:
    """The fields of a text message from `openid`."""
    return {
        "ToUserName": account,
        "FromUserName": openid,
        "CreateTime": create_time if create_time is not None else int(time.time()),
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id or next_msg_id(),
    }


def event_fields(
    openid: str,
    event: str,
    key: str | None = None,
    *,
    account: str = "gh_test_account",
    create_time: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The fields of an event from `openid` (`subscribe`, `CLICK`, …)."""
    fields: dict[str, Any] = {
        "ToUserName": account,
        "FromUserName": openid,
        "CreateTime": create_time if create_time is not None else int(time.time()),
        "MsgType": "event",
        "Event": event,
    }
    if key is not None:
        fields["EventKey"] = key
    fields.update(extra)
    return fields


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A push as WeChat would send it: query parameters and body."""

    params: dict[str, str]
    body: bytes

    def url(self, base: str) -> str:
        """`base` with the query string."""
        return f"{base}?{urlencode(self.params)}"


def sign_request(
    token: str,
    body_xml: str,
    *,
    mode: Mode = "plain",
    crypto: MessageCrypto | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    openid: str | None = None,
) -> SignedRequest:
    """Sign (and in safe/compatible mode encrypt) a push exactly as WeChat does."""
    ts = timestamp or str(int(time.time()))
    nc = nonce or str(secrets.randbelow(10**10))
    params = {"signature": sha1_signature(token, ts, nc), "timestamp": ts, "nonce": nc}
    if openid:
        params["openid"] = openid
    if mode == "plain":
        return SignedRequest(params, body_xml.encode())
    if crypto is None:
        raise ValueError(f"{mode} mode needs a MessageCrypto")
    encrypt = crypto.encrypt(body_xml)
    fields = parse_body(body_xml.encode())
    params["encrypt_type"] = "aes"
    params["msg_signature"] = sha1_signature(token, ts, nc, encrypt)
    if mode == "safe":
        envelope = {"ToUserName": fields.get("ToUserName", ""), "Encrypt": encrypt}
    else:
        envelope = {**fields, "Encrypt": encrypt}
    return SignedRequest(params, build_xml(envelope).encode())


@dataclass(frozen=True, slots=True)
class BotReply:
    """A reply as a follower would get it."""

    status: int
    body: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    encrypted: bool = False

    @property
    def is_success(self) -> bool:
        """The bot had nothing to say (`success` or an empty body)."""
        return self.status == 200 and self.body in ("success", "")

    @property
    def msg_type(self) -> str | None:
        """The reply's MsgType."""
        value = self.fields.get("MsgType")
        return str(value) if value is not None else None

    @property
    def content(self) -> str | None:
        """A text reply's Content."""
        value = self.fields.get("Content")
        return str(value) if value is not None else None


def open_reply(status: int, body: str, *, token: str, crypto: MessageCrypto | None) -> BotReply:
    """Parse (and if encrypted verify and decrypt) a webhook answer."""
    if status != 200 or body in ("success", ""):
        return BotReply(status, body)
    fields = parse_reply(body)
    if "Encrypt" in fields and "MsgType" not in fields:
        if crypto is None:
            raise ValueError("encrypted reply but no MessageCrypto to open it")
        envelope = [fields.get(k) for k in ("Encrypt", "TimeStamp", "Nonce", "MsgSignature")]
        if not all(isinstance(part, str) for part in envelope):
            raise ValueError("encrypted reply lacks Encrypt, TimeStamp, Nonce or MsgSignature")
        encrypt, timestamp, nonce, signature = map(str, envelope)
        if not verify_msg_signature(token, timestamp, nonce, encrypt, signature):
            raise ValueError("reply MsgSignature does not verify")
        inner = crypto.decrypt(encrypt).decode()
        return BotReply(status, inner, parse_reply(inner), encrypted=True)
    return BotReply(status, body, fields)


class WeChatSimulator:
    """Sends signed pushes to a running bot over HTTP, as WeChat would."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        token: str,
        mode: Mode = "plain",
        crypto: MessageCrypto | None = None,
        account: str = "gh_test_account",
    ) -> None:
        self.session = session
        self.url = url
        self.token = token
        self.mode = mode
        self.crypto = crypto
        self.account = account

    async def send_fields(self, fields: Mapping[str, Any], **sign: Any) -> BotReply:
        """Send one push built from `fields`."""
        request = sign_request(
            self.token,
            build_xml(fields),
            mode=self.mode,
            crypto=self.crypto,
            openid=str(fields.get("FromUserName", "")) or None,
            **sign,
        )
        return await self.post(request)

    async def post(self, request: SignedRequest) -> BotReply:
        """Send a prepared request and open the answer."""
        async with self.session.post(
            self.url,
            params=request.params,
            data=request.body,
            headers={"Content-Type": "text/xml"},
        ) as response:
            body = await response.text()
            return open_reply(response.status, body, token=self.token, crypto=self.crypto)

    async def send_text(self, openid: str, content: str, **kw: Any) -> BotReply:
        """A text message from `openid`."""
        return await self.send_fields(text_fields(openid, content, account=self.account, **kw))

    async def send_event(
        self, openid: str, event: str, key: str | None = None, **extra: Any
    ) -> BotReply:
        """An event from `openid`."""
        return await self.send_fields(
            event_fields(openid, event, key, account=self.account, **extra)
        )

    async def follow(self, openid: str, scene: str | None = None) -> BotReply:
        """A subscribe event (through a parameter QR code when `scene` is given)."""
        if scene is None:
            return await self.send_event(openid, "subscribe")
        return await self.send_event(openid, "subscribe", f"qrscene_{scene}", Ticket="TICKET")
