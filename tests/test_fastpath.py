"""The lean HTTP/1.1 path (`bot.server.fastpath`) over real loopback sockets.

Pushes it answers itself; every request it hands, with its bytes, to aiohttp on the same
port; malformed heads; timeouts; shutdown; and random bytes, which never get a 5xx or a hang.
Requests are written byte for byte and answers parsed here, so every read has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import urlencode

import aiohttp
import counting_handlers
import pytest
import redis_fixtures
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from listening_bots import bot_config

from bot.config import Config
from bot.server import batch, fastpath
from bot.server.batch import Pending, answer_batch
from bot.server.connections import Limits
from bot.server.fastpath import MAX_BATCH, FastServer, WebhookProtocol
from bot.server.framing import read_head
from bot.server.serve import listen, make_runner
from bot.storage.base import ClaimTerms, PushClaim, PushClaimed
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_AES_KEY, TEST_TOKEN
from bot.testing.simulator import (
    BotReply,
    SignedRequest,
    WeChatSimulator,
    build_xml,
    open_reply,
    sign_request,
    text_fields,
)
from bot.webhook import pipeline as webhook
from bot.webhook.app import create_app
from bot.webhook.pipeline import Admitted, Answer
from bot.webhook.services import Services
from bot.wechat.crypto import MessageCrypto
from bot.wechat.signature import sha1_signature

OPENID = "o_demo_wang"
ACCOUNT_ID = "gh_test_account"
GREETING = "你好！欢迎关注Test Account。"  # the greeting's answer to "你好" from o_demo_wang
SLOW = ["sample_handlers", "handlers.greeting"]  # `slow <seconds>` sleeps, then answers
WAIT = 5.0  # the longest any one read may take: a server that hangs fails the test
QUIET = 0.3  # how long "nothing more arrives" is watched for

_nonces = itertools.count(10**9)


# -- the server under test -------------------------------------------------------------------------


@dataclass
class Served:
    """A bot behind a FastServer on a loopback port, its aiohttp runner as the fallback."""

    config: Config
    fast: FastServer
    runner: web.AppRunner
    port: int
    crypto: MessageCrypto | None
    cleaned_up: bool = False

    def sign(
        self, content: str = "你好", *, openid: str = OPENID, nonce: str | None = None
    ) -> SignedRequest:
        """A push of a text from `openid`, signed (and in safe mode encrypted) as WeChat does."""
        return sign_request(
            TEST_TOKEN,
            build_xml(text_fields(openid, content)),
            mode="safe" if self.crypto else "plain",
            crypto=self.crypto,
            nonce=nonce or str(next(_nonces)),  # fixed length: fuzzed positions reproduce
        )

    def target(self, request: SignedRequest) -> str:
        """The request target of a push: the webhook path and the signed query."""
        return f"{self.config.webhook_path}?{urlencode(request.params)}"

    def push(
        self,
        content: str = "你好",
        *,
        openid: str = OPENID,
        nonce: str | None = None,
        headers: Iterable[bytes] = (),
    ) -> bytes:
        """A whole push as bytes on the wire, with `headers` (raw lines) added to its head."""
        request = self.sign(content, openid=openid, nonce=nonce)
        return http_request("POST", self.target(request), request.body, headers=headers)

    def reply(self, response: Response) -> BotReply:
        """A push's answer, opened (and decrypted) as a follower's client would."""
        return open_reply(response.status, response.text, token=TEST_TOKEN, crypto=self.crypto)

    async def stop(self, grace: float = 1.0) -> None:
        """Shut the fast path down (again, harmlessly) and clean the app up once."""
        await self.fast.shutdown(grace)
        if not self.cleaned_up:
            self.cleaned_up = True
            await self.runner.cleanup()


class Serve(Protocol):
    """The `serve` fixture: start a bot behind a FastServer."""

    def __call__(
        self,
        *,
        keepalive_timeout: float = 30.0,
        read_timeout: float = 30.0,
        safe: bool = False,
        **settings: Any,
    ) -> Awaitable[Served]: ...


@pytest.fixture
async def serve(
    fake_wechat: FakeWeChat, fake_api: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """A factory of bots served by a FastServer on 127.0.0.1 (port 0), stopped after the test."""
    started: list[Served] = []

    async def start(
        *,
        keepalive_timeout: float = 30.0,
        read_timeout: float = 30.0,
        safe: bool = False,
        **settings: Any,
    ) -> Served:
        data_dir = tmp_path / f"bot{len(started)}"
        data_dir.mkdir()
        config = bot_config(
            fake_wechat, fake_api, data_dir, safe=safe, shutdown_grace=3.0, **settings
        )
        limits = Limits(read_timeout=read_timeout, keepalive_timeout=keepalive_timeout)
        runner = make_runner(create_app(config), config, limits)
        await runner.setup()
        fast = await listen(runner, config, limits)
        assert isinstance(fast, FastServer)
        port = int(cast(socket.socket, fast.sockets[0]).getsockname()[1])
        crypto = MessageCrypto(TEST_AES_KEY, config.app_id) if safe else None
        served = Served(config, fast, runner, port, crypto)
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        await served.stop()


# -- raw HTTP --------------------------------------------------------------------------------------


def http_request(
    method: str,
    target: str,
    body: bytes = b"",
    *,
    headers: Iterable[bytes] = (),
    version: bytes = b"HTTP/1.1",
    content_length: bool = True,
) -> bytes:
    """One request, exactly as written: raw header lines, then Content-Length unless told not."""
    lines = [b"%s %s %s" % (method.encode(), target.encode(), version), b"Host: 127.0.0.1"]
    lines.extend(headers)
    if content_length:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer as read off the socket."""

    version: str
    status: int
    reason: str
    fields: tuple[tuple[str, str], ...]  # (lower-cased name, value), in the order sent
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of a header sent at most once (a repeated one fails the test)."""
        values = [value for key, value in self.fields if key == name]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    @property
    def text(self) -> str:
        return self.body.decode()


async def read_response(reader: asyncio.StreamReader, timeout: float = WAIT) -> Response:
    """The next answer: head, then a Content-Length body (or everything until the close)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    status, _, reason = rest.partition(" ")
    fields = []
    for line in lines:
        name, _, value = line.partition(":")
        fields.append((name.strip().lower(), value.strip()))
    response = Response(version, int(status), reason, tuple(fields), b"")
    length = response.header("content-length")
    if response.status < 200 or response.status in (204, 304):
        return response
    if length is not None:
        body = await asyncio.wait_for(reader.readexactly(int(length)), timeout)
    else:
        body = await asyncio.wait_for(reader.read(), timeout)
    return replace(response, body=body)


async def read_rest(reader: asyncio.StreamReader, timeout: float = WAIT) -> bytes:
    """Everything until the server closes (a reset counts as a close)."""
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def read_responses_until_closed(reader: asyncio.StreamReader) -> list[Response]:
    """Every answer the server sends before it closes."""
    stream = asyncio.StreamReader()
    stream.feed_data(await read_rest(reader))
    stream.feed_eof()
    responses = []
    with contextlib.suppress(asyncio.IncompleteReadError):  # a body cut short ends the list
        while not stream.at_eof():
            responses.append(await read_response(stream))
    return responses


async def assert_quiet(reader: asyncio.StreamReader) -> None:
    """Nothing more arrives, and the connection stays open."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), QUIET)
    assert not reader.at_eof()


@contextlib.asynccontextmanager
async def connect(
    port: int, *, sock: socket.socket | None = None
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw connection to 127.0.0.1:`port`, closed afterwards."""
    if sock is None:
        opening = asyncio.open_connection("127.0.0.1", port, limit=2**20)
    else:
        opening = asyncio.open_connection(sock=sock, limit=2**20)
    reader, writer = await asyncio.wait_for(opening, WAIT)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def exchange(served: Served, data: bytes, count: int = 1) -> list[Response]:
    """Write `data` on a new connection and read `count` answers."""
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        return [await read_response(reader) for _ in range(count)]


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until `predicate()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def assert_greeting(served: Served, response: Response, openid: str = OPENID) -> None:
    """A 200 carrying the greeting's text reply to `openid`."""
    assert response.status == 200, response.body
    reply = served.reply(response)
    assert reply.msg_type == "text"
    assert reply.content == GREETING
    assert reply.fields["ToUserName"] == openid
    assert reply.fields["FromUserName"] == ACCOUNT_ID


# -- pushes the fast path answers itself -----------------------------------------------------------


async def test_signed_push_is_answered_with_the_reply_aiohttp_gives(serve: Serve) -> None:
    served = await serve()
    site = web.TCPSite(served.runner, "127.0.0.1", 0)  # the same app through aiohttp alone
    await site.start()
    aiohttp_port = int(served.runner.addresses[0][1])
    async with connect(served.port) as (reader, writer):
        writer.write(served.push())
        fast = await read_response(reader)
        assert len(served.fast.connections) == 1  # answered here, not handed to aiohttp
    async with connect(aiohttp_port) as (reader, writer):
        writer.write(served.push())
        via_aiohttp = await read_response(reader)
    assert_greeting(served, fast)
    assert_greeting(served, via_aiohttp)
    assert (fast.version, fast.reason) == ("HTTP/1.1", "OK")
    assert fast.header("content-type") == "application/xml; charset=utf-8"
    assert fast.header("content-type") == via_aiohttp.header("content-type")
    assert {name for name, _ in fast.fields} == {name for name, _ in via_aiohttp.fields}
    assert fast.header("content-length") == str(len(fast.body))
    assert fast.body.startswith(b"<xml>") and fast.body.endswith(b"</xml>")
    assert fast.header("connection") is None
    date = fast.header("date")
    assert date is not None
    assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 5
    fast_fields = {k: v for k, v in served.reply(fast).fields.items() if k != "CreateTime"}
    aiohttp_fields = {
        k: v for k, v in served.reply(via_aiohttp).fields.items() if k != "CreateTime"
    }
    assert fast_fields == aiohttp_fields


async def test_safe_mode_push_gets_an_encrypted_reply(serve: Serve) -> None:
    served = await serve(safe=True)
    request = served.sign()
    assert request.params["encrypt_type"] == "aes" and b"<Encrypt>" in request.body
    async with connect(served.port) as (reader, writer):
        writer.write(http_request("POST", served.target(request), request.body))
        response = await read_response(reader)
        assert len(served.fast.connections) == 1
    assert b"<Encrypt>" in response.body and "欢迎" not in response.text
    reply = served.reply(response)
    assert reply.encrypted
    assert reply.content == GREETING
    assert reply.fields["ToUserName"] == OPENID


async def test_client_session_pushes_share_one_keep_alive_connection(serve: Serve) -> None:
    served = await serve(safe=True)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"http://127.0.0.1:{served.port}{served.config.webhook_path}"
        wechat = WeChatSimulator(session, url, token=TEST_TOKEN, mode="safe", crypto=served.crypto)
        for _ in range(3):
            reply = await wechat.send_text(OPENID, "你好")
            assert reply.encrypted and reply.content == GREETING
        assert len(served.fast.connections) == 1


@pytest.mark.parametrize("count", [2, 5])
async def test_pipelined_pushes_in_one_write_are_answered_in_order(
    serve: Serve, count: int
) -> None:
    served = await serve()
    openids = [f"o_pipelined_{i}" for i in range(count)]
    async with connect(served.port) as (reader, writer):
        writer.write(b"".join(served.push(openid=openid) for openid in openids))
        responses = [await read_response(reader) for _ in openids]
        await assert_quiet(reader)
    for openid, response in zip(openids, responses, strict=True):
        assert_greeting(served, response, openid)


async def test_push_written_a_byte_at_a_time_is_answered_once(serve: Serve) -> None:
    served = await serve()
    data = served.push()
    split = data.index(b"\r\n\r\n") + 4
    head, body = data[:split], data[split:]
    async with connect(served.port) as (reader, writer):
        for i in range(len(head)):
            writer.write(head[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.write(body[:7])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body[7:])
        assert_greeting(served, await read_response(reader))
        await assert_quiet(reader)
        assert len(served.fast.connections) == 1


async def test_a_body_trickling_in_is_not_parsed_again_for_every_read(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an unsigned client trickling a body must not cost a head parse (and a copy) per read
    reads: list[int] = []
    real_read_head = read_head

    def counted(buf: bytes) -> object:
        reads.append(len(buf))
        return real_read_head(buf)

    monkeypatch.setattr(fastpath, "read_head", counted)
    served = await serve()
    data = served.push()
    split = data.index(b"\r\n\r\n") + 4
    async with connect(served.port) as (reader, writer):
        writer.write(data[:split])
        await writer.drain()
        await eventually(lambda: len(reads) >= 1)
        for i in range(split, len(data) - 1):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)  # each byte its own read
        writer.write(data[-1:])
        assert_greeting(served, await read_response(reader))
    assert len(reads) <= 3, f"{len(reads)} head parses for one push"


@pytest.mark.parametrize("connection", [None, b"keep-alive", b"Keep-Alive"])
async def test_keep_alive_connection_serves_push_after_push(
    serve: Serve, connection: bytes | None
) -> None:
    served = await serve()
    headers = [b"Connection: " + connection] if connection else []
    async with connect(served.port) as (reader, writer):
        for _ in range(3):
            writer.write(served.push(headers=headers))
            response = await read_response(reader)
            assert_greeting(served, response)
            assert response.header("connection") is None
        await assert_quiet(reader)
        assert len(served.fast.connections) == 1


async def test_body_of_exactly_max_body_bytes_is_served_here(serve: Serve) -> None:
    served = await serve(max_body_bytes=1024)
    fields = text_fields(OPENID, "你好", msg_id="7700001")
    size = len(build_xml(fields).encode())
    fields["Content"] = "你好" + " " * (1024 - size)  # the greeting ignores the spaces
    request = sign_request(TEST_TOKEN, build_xml(fields), nonce=str(next(_nonces)))
    assert len(request.body) == 1024
    async with connect(served.port) as (reader, writer):
        writer.write(http_request("POST", served.target(request), request.body))
        assert_greeting(served, await read_response(reader))
        assert len(served.fast.connections) == 1


async def test_fast_path_pushes_are_counted_in_metrics(serve: Serve) -> None:
    served = await serve()
    (response,) = await exchange(served, served.push())
    assert_greeting(served, response)
    (metrics,) = await exchange(served, http_request("GET", "/metrics", content_length=False))
    assert metrics.status == 200
    assert 'wechat_bot_requests_total{msg_type="text",outcome="replied"} 1.0' in metrics.text


@pytest.mark.parametrize("nonce", ["12 34", "100%", "a+b", "a&b=c", "中文"])
async def test_query_is_decoded_as_aiohttp_decodes_it(serve: Serve, nonce: str) -> None:
    served = await serve()
    request = served.sign(nonce=nonce)  # urlencode writes `+` and %XX escapes
    assert request.params["nonce"] == nonce
    async with connect(served.port) as (reader, writer):
        writer.write(http_request("POST", served.target(request), request.body))
        assert_greeting(served, await read_response(reader))
        assert len(served.fast.connections) == 1


@pytest.mark.parametrize(("first", "status"), [("good", 200), ("bad", 403)])
async def test_first_of_repeated_query_parameters_wins(
    serve: Serve, first: str, status: int
) -> None:
    served = await serve()
    request = served.sign()
    signatures = {"good": request.params["signature"], "bad": "0" * 40}
    second = "bad" if first == "good" else "good"
    query = urlencode(request.params) + f"&signature={signatures[second]}"
    query = query.replace(request.params["signature"], signatures[first], 1)
    target = f"{served.config.webhook_path}?{query}"
    (response,) = await exchange(served, http_request("POST", target, request.body))
    assert response.status == status


# -- refusals --------------------------------------------------------------------------------------


def _without(params: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != name}


REFUSALS: list[Any] = [
    pytest.param(
        lambda p, b: (_without(p, "signature"), b), 403, "missing signature\n", id="unsigned"
    ),
    pytest.param(
        lambda p, b: ({**p, "signature": "f" * 40}, b), 403, "invalid signature\n", id="bad-sig"
    ),
    pytest.param(
        lambda p, b: (_without(p, "timestamp"), b),
        400,
        "missing timestamp or nonce\n",
        id="no-timestamp",
    ),
    pytest.param(
        lambda p, b: (p, b"<xml><ToUserName>a</ToUserName>"),
        400,
        "bad message: ",
        id="bad-xml",
    ),
    pytest.param(
        lambda p, b: (
            {**p, "timestamp": "1000", "signature": sha1_signature(TEST_TOKEN, "1000", p["nonce"])},
            b,
        ),
        403,
        "timestamp outside the accepted window\n",
        id="stale",
    ),
]


@pytest.mark.parametrize(("spoil", "status", "reason"), REFUSALS)
async def test_refused_push_gets_its_4xx_and_the_connection_stays_usable(
    serve: Serve,
    spoil: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
    status: int,
    reason: str,
) -> None:
    served = await serve()
    request = served.sign()
    params, body = spoil(request.params, request.body)
    target = f"{served.config.webhook_path}?{urlencode(params)}"
    async with connect(served.port) as (reader, writer):
        writer.write(http_request("POST", target, body))
        refused = await read_response(reader)
        assert refused.status == status
        assert refused.text.startswith(reason)
        assert refused.header("content-type") == "text/plain; charset=utf-8"
        assert refused.header("connection") is None
        writer.write(served.push())
        assert_greeting(served, await read_response(reader))
        assert len(served.fast.connections) == 1


async def test_nonce_replayed_with_another_body_is_403_on_the_same_connection(
    serve: Serve,
) -> None:
    served = await serve()
    async with connect(served.port) as (reader, writer):
        writer.write(served.push(nonce="424242"))
        assert_greeting(served, await read_response(reader))
        writer.write(served.push("另一条", nonce="424242"))
        replayed = await read_response(reader)
        assert (replayed.status, replayed.text) == (403, "nonce already used\n")
        writer.write(served.push())
        assert_greeting(served, await read_response(reader))


async def test_json_push_with_a_lone_surrogate_is_400_before_any_handler(
    serve: Serve, fake_wechat: FakeWeChat
) -> None:
    served = await serve()
    json_push = (
        r'{"ToUserName": "gh_1", "FromUserName": "o_\ud800", "CreateTime": 1700000000,'
        r' "MsgType": "text", "Content": "你好", "MsgId": "5"}'
    )
    request = sign_request(TEST_TOKEN, json_push, nonce=str(next(_nonces)))
    (response,) = await exchange(served, http_request("POST", served.target(request), request.body))
    assert (response.status, response.text) == (400, "bad message: encoding\n")
    assert fake_wechat.counters["user_info"] == 0


async def test_two_followers_reusing_a_msg_id_each_get_their_own_answer(serve: Serve) -> None:
    served = await serve(handlers=SLOW)

    def push(openid: str, content: str) -> bytes:
        fields = text_fields(openid, content, msg_id="777")
        request = sign_request(TEST_TOKEN, build_xml(fields), nonce=str(next(_nonces)))
        return http_request("POST", served.target(request), request.body)

    # one batch and then one by one, both through the fast path
    async with connect(served.port) as (reader, writer):
        writer.write(push("o_demo_alice", "echo from Alice") + push("o_demo_lin", "echo from Lin"))
        alice, lin = (
            served.reply(await read_response(reader)),
            served.reply(await read_response(reader)),
        )
        writer.write(push("o_demo_wang", "echo from Wang"))
        wang = served.reply(await read_response(reader))
        writer.write(push("o_demo_lin", "echo from Lin"))  # WeChat's retry, a fresh nonce
        retry = served.reply(await read_response(reader))
    assert [(r.content, r.fields["ToUserName"]) for r in (alice, lin, wang)] == [
        ("from Alice", "o_demo_alice"),
        ("from Lin", "o_demo_lin"),
        ("from Wang", "o_demo_wang"),
    ]
    assert retry.body == lin.body
    assert served.fast.services.metrics.requests.counts[("text", "duplicate")] == 1


# -- Connection: close, half-close -----------------------------------------------------------------


async def test_connection_close_is_answered_then_the_socket_closed(serve: Serve) -> None:
    served = await serve()
    async with connect(served.port) as (reader, writer):
        # a second push after the `close` one is never answered
        writer.write(served.push(headers=[b"Connection: close"]) + served.push())
        response = await read_response(reader)
        assert_greeting(served, response)
        assert response.header("connection") == "close"
        assert await read_rest(reader) == b""


async def test_refusal_with_connection_close_also_closes(serve: Serve) -> None:
    served = await serve()
    data = http_request(
        "POST", served.config.webhook_path, b"<xml/>", headers=[b"Connection: close"]
    )
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        response = await read_response(reader)
        assert (response.status, response.header("connection")) == (403, "close")
        assert await read_rest(reader) == b""


@pytest.mark.parametrize("signed", [True, False], ids=["answered-later", "refused-at-once"])
async def test_push_then_half_close_still_gets_its_answer(serve: Serve, signed: bool) -> None:
    served = await serve()
    data = served.push() if signed else http_request("POST", served.config.webhook_path, b"x")
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        writer.write_eof()
        response = await read_response(reader)
        if signed:
            assert_greeting(served, response)
        else:
            assert response.status == 403
        assert await read_rest(reader) == b""


async def test_pipelined_pushes_then_half_close_are_all_answered(serve: Serve) -> None:
    served = await serve(handlers=SLOW)
    async with connect(served.port) as (reader, writer):
        writer.write(served.push("slow 0.3") + served.push("echo second"))
        writer.write_eof()
        responses = await read_responses_until_closed(reader)
    assert [served.reply(r).content for r in responses] == ["done after 0.3s", "second"]


# -- hand-offs to aiohttp on the same port ---------------------------------------------------------


async def test_handshake_is_handed_to_aiohttp(serve: Serve) -> None:
    served = await serve()
    ts, nonce = str(int(time.time())), "8801"
    query = {
        "signature": sha1_signature(TEST_TOKEN, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": "echo-7788",
    }
    target = f"{served.config.webhook_path}?{urlencode(query)}"
    async with connect(served.port) as (reader, writer):
        writer.write(http_request("GET", target, content_length=False))
        response = await read_response(reader)
        assert (response.status, response.text) == (200, "echo-7788")
        assert not served.fast.connections  # aiohttp's now
        writer.write(served.push())  # later pushes on it are aiohttp's to answer too
        assert_greeting(served, await read_response(reader))


async def test_healthz_and_metrics_through_a_client_session(serve: Serve) -> None:
    served = await serve()
    async with aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{served.port}"
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            assert (await resp.json())["status"] == "ok"
        async with session.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            assert "wechat_bot_requests_total" in await resp.text()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/other", 404),
        ("POST", "/wechat/", 404),
        ("PUT", "/wechat", 405),
        ("DELETE", "/wechat", 405),
        ("POST", "/healthz", 405),
    ],
)
async def test_other_paths_and_methods_are_answered_by_aiohttp(
    serve: Serve, method: str, path: str, status: int
) -> None:
    served = await serve()
    request = served.sign()
    target = f"{path}?{urlencode(request.params)}"
    (response,) = await exchange(served, http_request(method, target, request.body))
    assert response.status == status


async def test_chunked_push_is_answered_by_aiohttp(serve: Serve) -> None:
    served = await serve()
    request = served.sign()
    body = request.body
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    data = http_request(
        "POST",
        served.target(request),
        chunks,
        headers=[b"Transfer-Encoding: chunked"],
        content_length=False,
    )
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        assert_greeting(served, await read_response(reader))
        assert not served.fast.connections


async def test_expect_100_continue_is_answered_by_aiohttp(serve: Serve) -> None:
    served = await serve()
    data = served.push(headers=[b"Expect: 100-continue"])
    split = data.index(b"\r\n\r\n") + 4
    async with connect(served.port) as (reader, writer):
        writer.write(data[:split])
        interim = await read_response(reader)
        assert interim.status == 100
        writer.write(data[split:])
        assert_greeting(served, await read_response(reader))
        assert not served.fast.connections


async def test_http_1_0_push_is_answered_by_aiohttp_then_closed(serve: Serve) -> None:
    served = await serve()
    request = served.sign()
    data = http_request("POST", served.target(request), request.body, version=b"HTTP/1.0")
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        response = await read_response(reader)
        assert_greeting(served, response)
        assert response.version == "HTTP/1.0"
        assert await read_rest(reader) == b""


@pytest.mark.parametrize(
    "headers",
    [
        [b"Connection: upgrade"],
        [b"Connection: Upgrade", b"Upgrade: websocket"],
        [b"Connection: keep-alive, Upgrade", b"Upgrade: h2c"],
        [b"Connection: TE"],
    ],
    ids=["connection-upgrade", "websocket", "h2c", "connection-te"],
)
async def test_upgrade_and_other_connection_options_are_answered_by_aiohttp(
    serve: Serve, headers: list[bytes]
) -> None:
    served = await serve()
    async with connect(served.port) as (reader, writer):
        writer.write(served.push(headers=headers))
        assert_greeting(served, await read_response(reader))
        assert not served.fast.connections


async def test_long_head_of_short_lines_is_served_by_aiohttp(serve: Serve) -> None:
    served = await serve()
    headers = [b"X-Pad-%d: %s" % (i, b"a" * 100) for i in range(90)]  # 9.5 kB of head
    async with connect(served.port) as (reader, writer):
        writer.write(served.push(headers=headers))
        assert_greeting(served, await read_response(reader))
        assert not served.fast.connections


@pytest.mark.parametrize("target", ["/we%63hat?{query}", "/wechat?{query}#fragment"])
async def test_odd_webhook_targets_are_served_by_aiohttp(serve: Serve, target: str) -> None:
    served = await serve()
    request = served.sign()
    data = http_request("POST", target.format(query=urlencode(request.params)), request.body)
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        assert_greeting(served, await read_response(reader))
        assert not served.fast.connections


@pytest.mark.parametrize("leading", [b"\r\n", b"\n", b"\r\n\r\n\n"], ids=["crlf", "lf", "several"])
async def test_empty_lines_before_a_push_are_skipped_here(serve: Serve, leading: bytes) -> None:
    served = await serve()
    async with connect(served.port) as (reader, writer):
        writer.write(leading + served.push())
        assert_greeting(served, await read_response(reader))
        assert len(served.fast.connections) == 1  # answered here, not handed to aiohttp


@pytest.mark.parametrize(
    "headers",
    [
        [b"Host: 127.0.0.2"],  # a second Host
        [b"Content-Encoding: identity"],
        [b"X-Pad-%d: 1" % i for i in range(40)],  # more headers than WeChat ever sends
    ],
    ids=["two-hosts", "content-encoding", "forty-headers"],
)
async def test_pushes_outside_the_fast_paths_policy_are_answered_by_aiohttp(
    serve: Serve, headers: list[bytes]
) -> None:
    served = await serve()
    async with connect(served.port) as (reader, writer):
        writer.write(served.push(headers=headers))
        response = await read_response(reader)
        assert not served.fast.connections
    if headers[0].startswith(b"Host"):
        assert response.status == 400  # aiohttp: "Duplicate 'Host' header found"
    else:
        assert_greeting(served, response)


async def test_push_without_host_is_400_as_aiohttp_answers_it(serve: Serve) -> None:
    served = await serve()
    data = served.push().replace(b"Host: 127.0.0.1\r\n", b"", 1)
    (response,) = await exchange(served, data)
    assert response.status == 400


async def test_push_then_healthz_in_one_write_are_answered_in_order(serve: Serve) -> None:
    served = await serve()
    healthz = http_request("GET", "/healthz", content_length=False)
    push, then_healthz = await exchange(served, served.push() + healthz, 2)
    assert_greeting(served, push)
    assert then_healthz.status == 200
    assert then_healthz.header("content-type") == "application/json; charset=utf-8"


async def test_healthz_then_push_in_one_write_are_answered_in_order(serve: Serve) -> None:
    served = await serve()
    healthz = http_request("GET", "/healthz", content_length=False)
    first, push = await exchange(served, healthz + served.push(), 2)
    assert first.status == 200 and b'"status": "ok"' in first.body
    assert_greeting(served, push)


async def test_slow_push_pipelined_with_a_hand_off_keeps_the_order(serve: Serve) -> None:
    served = await serve(handlers=SLOW)
    healthz = http_request("GET", "/healthz", content_length=False)
    data = served.push("slow 0.2") + healthz + served.push("echo after")
    slow, health, echo = await exchange(served, data, 3)
    assert served.reply(slow).content == "done after 0.2s"
    assert health.status == 200
    assert served.reply(echo).content == "after"


async def test_body_over_max_body_bytes_is_413_from_aiohttp(serve: Serve) -> None:
    served = await serve(max_body_bytes=1024)
    request = served.sign("你好" + " " * 1100)
    assert len(request.body) > 1024
    (response,) = await exchange(served, http_request("POST", served.target(request), request.body))
    assert (response.status, response.text) == (413, "body over 1024 bytes\n")


# -- malformed heads -------------------------------------------------------------------------------

MALFORMED: list[Any] = [
    pytest.param(lambda n: [b"X-Trace : 1", b"Content-Length: %d" % n], id="space-before-colon"),
    pytest.param(lambda n: [b"X-Trace: 1\nContent-Length: %d" % n], id="bare-lf"),
    pytest.param(lambda n: [b"X-Trace: a\x00b", b"Content-Length: %d" % n], id="nul-in-value"),
    pytest.param(lambda n: [b"Content-Length: %d" % n] * 2, id="content-length-twice"),
    pytest.param(
        lambda n: [b"Content-Length: %d" % n, b"Content-Length: %d" % (n + 1)],
        id="content-length-differs",
    ),
    pytest.param(lambda n: [b"Content-Length: ten"], id="content-length-not-a-number"),
    pytest.param(lambda n: [b"Content-Length: +%d" % n], id="content-length-signed"),
    pytest.param(
        lambda n: [b"Content-Length: %d" % n, b"Transfer-Encoding: chunked"],
        id="content-length-and-chunked",
    ),
    pytest.param(lambda n: [b"X-Trace: 1", b" folded", b"Content-Length: %d" % n], id="obs-fold"),
    pytest.param(
        lambda n: [b"X-Trace: " + b"a" * 9000, b"Content-Length: %d" % n], id="head-over-8190"
    ),
]


@pytest.mark.parametrize("head", MALFORMED)
async def test_malformed_head_gets_a_4xx_never_a_5xx_or_a_hang(
    serve: Serve, head: Callable[[int], list[bytes]]
) -> None:
    served = await serve()
    request = served.sign()
    data = http_request(
        "POST",
        served.target(request),
        request.body,
        headers=head(len(request.body)),
        content_length=False,
    )
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        responses = await read_responses_until_closed(reader)
    assert len(responses) <= 1
    assert all(400 <= r.status < 500 for r in responses), [r.status for r in responses]
    (after,) = await exchange(served, served.push())  # and the server serves on
    assert_greeting(served, after)


@pytest.mark.parametrize("kind", ["push", "healthz"])
async def test_head_with_bare_lf_line_endings_gets_a_400_at_once(serve: Serve, kind: str) -> None:
    served = await serve(read_timeout=30.0)
    if kind == "push":
        data = served.push()
    else:
        data = http_request("GET", "/healthz", content_length=False)
    head_end = data.index(b"\r\n\r\n") + 4
    data = data[:head_end].replace(b"\r\n", b"\n") + data[head_end:]
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        response = await read_response(reader, timeout=2.0)  # aiohttp alone answers at once
    assert response.status == 400


# -- timeouts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("pushes", [0, 1])
async def test_idle_keep_alive_connection_is_closed(serve: Serve, pushes: int) -> None:
    served = await serve(keepalive_timeout=0.5)
    async with connect(served.port) as (reader, writer):
        for _ in range(pushes):
            writer.write(served.push())
            assert_greeting(served, await read_response(reader))
        idle_from = time.monotonic()
        assert await read_rest(reader, timeout=3.0) == b""
        assert time.monotonic() - idle_from >= 0.4


async def test_busy_keep_alive_connection_is_not_closed(serve: Serve) -> None:
    served = await serve(keepalive_timeout=0.6)
    async with connect(served.port) as (reader, writer):
        until = time.monotonic() + 1.8
        while time.monotonic() < until:
            writer.write(served.push())
            assert_greeting(served, await read_response(reader))
            await asyncio.sleep(0.15)
        assert not reader.at_eof()


@pytest.mark.parametrize("sent", ["half-head", "head-and-half-body"])
async def test_request_arriving_too_slowly_is_cut_off(serve: Serve, sent: str) -> None:
    served = await serve(read_timeout=0.5)
    data = served.push()
    head_end = data.index(b"\r\n\r\n") + 4
    cut = head_end // 2 if sent == "half-head" else head_end + 20
    async with connect(served.port) as (reader, writer):
        writer.write(data[:cut])
        started = time.monotonic()
        assert await read_rest(reader, timeout=3.0) == b""
        assert time.monotonic() - started >= 0.4


async def test_handler_in_flight_is_not_cut_off_by_the_timeouts(serve: Serve) -> None:
    served = await serve(handlers=SLOW, keepalive_timeout=0.3, read_timeout=0.3)
    async with connect(served.port) as (reader, writer):
        writer.write(served.push("slow 1.5"))
        response = await read_response(reader)
    assert served.reply(response).content == "done after 1.5s"


# -- reading paused while the client does not read -------------------------------------------------


async def test_client_reading_late_still_gets_every_pipelined_answer(serve: Serve) -> None:
    served = await serve(handlers=["counting_handlers"], max_body_bytes=2048)
    listening = cast(socket.socket, served.fast.sockets[0])
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # accepted sockets inherit
    count = 200
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", served.port))
        client.setblocking(False)
        async with connect(served.port, sock=client) as (reader, writer):
            writer.write(b"".join(served.push("x" * 1500) for _ in range(count)))
            await asyncio.sleep(0.5)  # the server's writes back up before the client reads
            with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, OSError):
                while answered < count:
                    response = await read_response(reader, timeout=2.0)
                    assert response.status == 200
                    answered += 1
    counting_handlers.received.clear()
    assert answered == count


# -- shutdown --------------------------------------------------------------------------------------


async def _push_in_flight(
    served: Served, content: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and start a slow push on it; returns (reader, writer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(served.push(content))
    await eventually(lambda: any(c.task is not None for c in served.fast.connections))
    return reader, writer


async def test_shutdown_answers_the_push_in_flight_then_closes(serve: Serve) -> None:
    served = await serve(handlers=SLOW)
    reader, writer = await _push_in_flight(served, "slow 0.5")
    try:
        stopping = asyncio.create_task(served.fast.shutdown(3.0))
        response = await read_response(reader)
        assert served.reply(response).content == "done after 0.5s"
        assert response.header("connection") == "close"
        assert await read_rest(reader) == b""
        await asyncio.wait_for(stopping, WAIT)
    finally:
        writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", served.port)


async def test_shutdown_past_the_reply_budget_answers_success(
    serve: Serve, fake_wechat: FakeWeChat
) -> None:
    served = await serve(handlers=SLOW, reply_budget=0.3, profile_timeout=0.1)
    reader, writer = await _push_in_flight(served, "slow 0.8")
    try:
        stopping = asyncio.create_task(served.fast.shutdown(3.0))
        response = await read_response(reader)
        assert (response.status, response.text) == (200, "success")
        assert response.header("connection") == "close"
        assert await read_rest(reader) == b""
        await asyncio.wait_for(stopping, WAIT)
    finally:
        writer.close()
    await served.stop()  # the app's cleanup lets the handler finish and sends its reply
    assert fake_wechat.sent == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": "done after 0.8s"}}
    ]


async def test_shutdown_past_its_grace_drops_the_connection_and_replies_late(
    serve: Serve, fake_wechat: FakeWeChat
) -> None:
    served = await serve(handlers=SLOW)
    reader, writer = await _push_in_flight(served, "slow 0.8")
    try:
        await asyncio.wait_for(served.fast.shutdown(0.1), WAIT)
        assert await read_rest(reader) == b""  # no passive answer
    finally:
        writer.close()
    await served.stop()
    assert fake_wechat.sent == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": "done after 0.8s"}}
    ]


async def test_shutdown_closes_idle_connections_and_stops_listening(serve: Serve) -> None:
    served = await serve()
    async with connect(served.port) as (reader, writer):
        writer.write(served.push())
        assert_greeting(served, await read_response(reader))
        started = time.monotonic()
        await asyncio.wait_for(served.fast.shutdown(3.0), WAIT)
        assert await read_rest(reader) == b""
        assert time.monotonic() - started < 1.0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", served.port)


# -- pushes answered in batches --------------------------------------------------------------------


class FakeTransport:
    """A connection's transport that keeps what is written (no socket: the loop is ours)."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def fake_connections(served: Served, count: int) -> list[tuple[WebhookProtocol, FakeTransport]]:
    """`count` connections to the served FastServer, over fake transports."""
    connections = []
    for _ in range(count):
        protocol, transport = WebhookProtocol(served.fast), FakeTransport()
        protocol.connection_made(cast(asyncio.Transport, transport))
        connections.append((protocol, transport))
    return connections


async def answers_on(transport: FakeTransport) -> list[Response]:
    """Every answer written to `transport`."""
    stream = asyncio.StreamReader()
    stream.feed_data(transport.data)
    stream.feed_eof()
    responses = []
    while not stream.at_eof():
        responses.append(await read_response(stream))
    return responses


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the fast path answers."""
    sizes: list[int] = []
    answer = answer_batch

    def recorded(bot: Services, path: str, batch: list[Pending], parse: Any, *flush: Any) -> None:
        sizes.append(len(batch))
        answer(bot, path, batch, parse, *flush)

    monkeypatch.setattr(fastpath, "answer_batch", recorded)
    return sizes


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_pushes_read_in_one_loop_iteration_are_answered_as_one_batch(
    serve: Serve, batch_sizes: list[int], safe: bool
) -> None:
    served = await serve(safe=safe)
    connections = fake_connections(served, 4)
    openids = [f"o_batch_{i}" for i in range(len(connections))]
    for (protocol, transport), openid in zip(connections, openids, strict=True):
        protocol.data_received(served.push(openid=openid))
        assert transport.data == b""  # answered once the loop iteration's reads are done
    await eventually(lambda: all(transport.data for _, transport in connections))
    assert batch_sizes == [4]
    for (_, transport), openid in zip(connections, openids, strict=True):
        [response] = await answers_on(transport)
        assert_greeting(served, response, openid)
        assert served.reply(response).encrypted is safe


async def test_pushes_are_answered_in_arrival_order_a_batch_per_loop_iteration(
    serve: Serve, batch_sizes: list[int]
) -> None:
    served = await serve()
    connections = fake_connections(served, MAX_BATCH + 5)
    first, late = connections[:-1], connections[-1]
    for i, (protocol, _) in enumerate(first):
        protocol.data_received(served.push(openid=f"o_order_{i}"))
    await asyncio.sleep(0)  # one loop iteration: the first batch
    assert batch_sizes == [MAX_BATCH]  # four left for the next
    late[0].data_received(served.push(openid="o_late"))  # behind the four still waiting
    await eventually(lambda: all(transport.data for _, transport in connections))
    assert batch_sizes == [MAX_BATCH, 5]
    for i, (_, transport) in enumerate(first):
        [response] = await answers_on(transport)
        assert_greeting(served, response, f"o_order_{i}")
    assert_greeting(served, (await answers_on(late[1]))[0], "o_late")


async def test_each_step_runs_over_the_whole_batch_before_the_next(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await serve(safe=True)
    steps: list[str] = []

    def recording(name: str) -> None:
        step = getattr(batch, name)

        def recorded(*args: Any) -> Any:
            steps.append(name)
            return step(*args)

        monkeypatch.setattr(batch, name, recorded)

    for name in ("check_query", "admit", "answer_message", "conclude"):
        recording(name)
    connections = fake_connections(served, 3)
    for i, (protocol, _) in enumerate(connections):
        protocol.data_received(served.push(openid=f"o_step_{i}"))
    await eventually(lambda: all(transport.data for _, transport in connections))
    assert steps == [
        *["check_query"] * 3,
        *["admit"] * 3,
        *["answer_message"] * 3,
        *["conclude"] * 3,
    ]
    for i, (_, transport) in enumerate(connections):
        [response] = await answers_on(transport)
        assert_greeting(served, response, f"o_step_{i}")


async def test_refusals_and_a_waiting_handler_leave_the_rest_of_the_batch_answered(
    serve: Serve, batch_sizes: list[int]
) -> None:
    served = await serve(handlers=SLOW)
    first = served.sign(openid="o_first", nonce="4242424242")
    bad = served.sign(openid="o_bad")
    bad.params["signature"] = "0" * 40
    pushes = [
        http_request("POST", served.target(first), first.body),
        served.push("slow 0.3", openid="o_slow"),
        http_request("POST", served.target(bad), bad.body),
        served.push(openid="o_other", nonce="4242424242"),  # the first push's nonce again
        served.push(openid="o_last"),
    ]
    connections = fake_connections(served, len(pushes))
    for (protocol, _), push in zip(connections, pushes, strict=True):
        protocol.data_received(push)
    slow_transport = connections[1][1]
    others = [transport for i, (_, transport) in enumerate(connections) if i != 1]
    await eventually(lambda: all(transport.data for transport in others))
    assert slow_transport.data == b""  # its handler is still asleep
    [greeted], [refused], [replayed], [last] = [await answers_on(t) for t in others]
    assert served.reply(greeted).fields["ToUserName"] == "o_first"
    assert (refused.status, refused.text) == (403, "invalid signature\n")
    assert (replayed.status, replayed.text) == (403, "nonce already used\n")
    assert served.reply(last).fields["ToUserName"] == "o_last"
    await eventually(lambda: bool(slow_transport.data))
    [slow] = await answers_on(slow_transport)
    assert served.reply(slow).content == "done after 0.3s"
    assert batch_sizes == [5]


async def test_a_step_failing_on_one_push_answers_500_to_that_push_only(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve()

    def failing(bot: Services, admitted: Admitted, *rest: Any) -> Answer:
        if admitted.msg.from_user == "o_unlucky":
            raise RuntimeError("a bug")
        return webhook.conclude(bot, admitted, *rest)

    monkeypatch.setattr(batch, "conclude", failing)
    openids = ["o_before", "o_unlucky", "o_after"]
    connections = fake_connections(served, len(openids))
    for (protocol, _), openid in zip(connections, openids, strict=True):
        protocol.data_received(served.push(openid=openid))
    await eventually(lambda: all(transport.data for _, transport in connections))
    (_, before), (_, unlucky), (_, after) = connections
    assert_greeting(served, (await answers_on(before))[0], "o_before")
    assert_greeting(served, (await answers_on(after))[0], "o_after")
    [failed] = await answers_on(unlucky)
    assert (failed.status, failed.header("connection")) == (500, "close")
    assert unlucky.closed and not before.closed and not after.closed
    assert "POST /wechat: unexpected failure" in caplog.text


redis_url = redis_fixtures.redis_url


async def test_a_batch_waiting_for_its_shared_claim_holds_its_pushes_then_answers_them_all(
    serve: Serve, redis_url: str, monkeypatch: pytest.MonkeyPatch, batch_sizes: list[int]
) -> None:
    served = await serve(redis_url=redis_url)
    storage = served.fast.services.storage
    gate = asyncio.Event()
    run = uuid.uuid4().hex[:8]  # the session's Redis is shared: keys of this run only
    claimed: list[int] = []
    claim_pushes = storage.claim_pushes

    async def slow_claims(
        claims: Sequence[PushClaim], terms: ClaimTerms, writes: Sequence[tuple[str, bytes]] = ()
    ) -> list[PushClaimed]:
        claimed.append(len(claims))
        await gate.wait()
        return await claim_pushes(claims, terms, writes)

    monkeypatch.setattr(storage, "claim_pushes", slow_claims)
    connections = fake_connections(served, 3)
    for i, (protocol, _) in enumerate(connections):
        protocol.data_received(served.push(openid=f"o_held_{run}_{i}", nonce=f"{run}{i}"))
    await eventually(lambda: claimed == [3])  # one claim for the batch, sent at once
    await asyncio.sleep(0.05)
    for protocol, transport in connections:
        assert transport.data == b""
        assert not protocol.waiting_in_batch and protocol.task is not None  # held: shutdown waits
    gate.set()
    await eventually(lambda: all(transport.data for _, transport in connections))
    for i, (protocol, transport) in enumerate(connections):
        assert_greeting(served, (await answers_on(transport))[0], f"o_held_{run}_{i}")
        assert protocol.task is None
    assert batch_sizes == [3]


async def test_batches_read_while_a_shared_claim_is_in_flight_go_together_in_the_next(
    serve: Serve, redis_url: str, monkeypatch: pytest.MonkeyPatch, batch_sizes: list[int]
) -> None:
    served = await serve(redis_url=redis_url)
    storage = served.fast.services.storage
    gate = asyncio.Event()
    claimed: list[int] = []
    claim_pushes = storage.claim_pushes

    async def gated_claims(
        claims: Sequence[PushClaim], terms: ClaimTerms, writes: Sequence[tuple[str, bytes]] = ()
    ) -> list[PushClaimed]:
        claimed.append(len(claims))
        await gate.wait()
        return await claim_pushes(claims, terms, writes)

    monkeypatch.setattr(storage, "claim_pushes", gated_claims)
    run = uuid.uuid4().hex[:8]
    connections = fake_connections(served, 7)
    for n, group in enumerate((connections[:3], connections[3:5], connections[5:])):
        for i, (protocol, _) in enumerate(group):
            protocol.data_received(served.push(openid=f"o_{run}_{n}_{i}", nonce=f"{run}{n}{i}"))
        await eventually(partial(lambda want: len(batch_sizes) == want, n + 1))  # one a batch
    await asyncio.sleep(0.05)
    assert batch_sizes == [3, 2, 2]
    assert claimed == [3]  # the first in flight; the two batches after it wait
    gate.set()
    await eventually(lambda: all(transport.data for _, transport in connections))
    assert claimed == [3, 4]  # the two waiting batches in one claim
    for n, group in enumerate((connections[:3], connections[3:5], connections[5:])):
        for i, (_, transport) in enumerate(group):
            assert_greeting(served, (await answers_on(transport))[0], f"o_{run}_{n}_{i}")


async def test_shutdown_waits_for_a_held_push_that_goes_on_to_wait_for_its_handler(
    serve: Serve, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = await serve(redis_url=redis_url, handlers=SLOW)
    storage = served.fast.services.storage
    claim_pushes = storage.claim_pushes

    async def slow_claims(
        claims: Sequence[PushClaim], terms: ClaimTerms, writes: Sequence[tuple[str, bytes]] = ()
    ) -> list[PushClaimed]:
        await asyncio.sleep(0.1)
        return await claim_pushes(claims, terms, writes)

    monkeypatch.setattr(storage, "claim_pushes", slow_claims)
    run = uuid.uuid4().hex[:8]
    [(protocol, transport)] = fake_connections(served, 1)
    protocol.data_received(served.push("slow 0.3", openid=f"o_{run}", nonce=run))
    await asyncio.sleep(0.01)  # held for its claim
    await served.fast.shutdown(3.0)  # the claim, then the handler, end well within the grace
    [response] = await answers_on(transport)
    assert (response.status, served.reply(response).content) == (200, "done after 0.3s")


async def test_a_batch_failing_as_a_whole_answers_500_to_each_of_its_pushes(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve()
    [(answered, answered_transport)] = fake_connections(served, 1)
    answered.data_received(served.push(openid="o_answered"))
    await eventually(lambda: bool(answered_transport.data))
    answer = answer_batch

    def half_then_broken(
        bot: Services, path: str, pushes: list[Pending], parse: Any, *flush: Any
    ) -> None:
        answer(bot, path, pushes[:1], parse, *flush)
        raise RuntimeError("a bug")

    monkeypatch.setattr(fastpath, "answer_batch", half_then_broken)
    connections = fake_connections(served, 3)
    for i, (protocol, _) in enumerate(connections):
        protocol.data_received(served.push(openid=f"o_broken_{i}"))
    await eventually(lambda: all(transport.data for _, transport in connections))
    first, *failed = [transport for _, transport in connections]
    assert_greeting(served, (await answers_on(first))[0], "o_broken_0")
    for transport in failed:
        [response] = await answers_on(transport)
        assert response.status == 500 and transport.closed
    assert not any(protocol.waiting_in_batch for protocol, _ in connections)
    assert "unexpected failure in a batch" in caplog.text
    assert_greeting(served, (await answers_on(answered_transport))[0], "o_answered")


async def test_shutdown_answers_pushes_still_waiting_for_their_batch(serve: Serve) -> None:
    served = await serve()
    [(protocol, transport)] = fake_connections(served, 1)
    protocol.data_received(served.push())
    await asyncio.wait_for(served.fast.shutdown(1.0), WAIT)  # before the batch's turn
    [response] = await answers_on(transport)
    assert_greeting(served, response)
    assert response.header("connection") == "close" and transport.closed


# -- random input ----------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
Mutation = tuple[str, int, bytes]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "cut", "append"]),
        st.integers(min_value=0, max_value=2**16),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, mutations: Sequence[Mutation]) -> bytes:
    """`data` changed by each mutation in turn (positions wrap around its length)."""
    for kind, where, chunk in mutations:
        at = where % (len(data) + 1)
        if kind == "insert":
            data = data[:at] + chunk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(chunk) :]
        elif kind == "replace":
            data = data[:at] + chunk + data[at + len(chunk) :]
        elif kind == "cut":
            data = data[:at]
        else:
            data += chunk
    return data


@pytest.fixture
async def fuzzed(serve: Serve) -> Served:
    """One server for every example of a property test."""
    return await serve(read_timeout=2.0)


async def _never_a_5xx_and_serving_after(served: Served, data: bytes) -> None:
    async with connect(served.port) as (reader, writer):
        writer.write(data)
        writer.write_eof()
        responses = await read_responses_until_closed(reader)
    assert all(r.status < 500 for r in responses), [(r.status, r.body) for r in responses]
    (after,) = await exchange(served, served.push())
    assert_greeting(served, after)


@FUZZ
@given(data=st.binary(max_size=400))
async def test_random_bytes_never_get_a_5xx(fuzzed: Served, data: bytes) -> None:
    await _never_a_5xx_and_serving_after(fuzzed, data)


@FUZZ
@given(body=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
async def test_random_signed_bodies_never_get_a_5xx(fuzzed: Served, body: bytes) -> None:
    target = fuzzed.target(fuzzed.sign())
    await _never_a_5xx_and_serving_after(fuzzed, http_request("POST", target, body))


@FUZZ
@given(mutations=MUTATIONS)
async def test_mutated_pushes_never_get_a_5xx(fuzzed: Served, mutations: list[Mutation]) -> None:
    push = fuzzed.push()
    await _never_a_5xx_and_serving_after(fuzzed, mutate(push, mutations))


# Requests assembled from the pieces the fast path decides on: what it must serve, what it must
# hand off, and near misses of both.
REQUEST_LINES = st.sampled_from(
    [
        b"POST {target} HTTP/1.1",
        b"POST {target} HTTP/1.0",
        b"POST {target}#x HTTP/1.1",
        b"POST  {target} HTTP/1.1",
        b"post {target} HTTP/1.1",
        b"GET {target} HTTP/1.1",
        b"POST /healthz HTTP/1.1",
        b"POST {target} HTTP/2",
    ]
)
HEADER_LINES = st.sampled_from(
    [
        b"Content-Length: {n}",
        b"content-length:{n}\t",
        b"Content-Length: {n+1}",
        b"Content-Length: 0",
        b"Content-Length: x",
        b"Transfer-Encoding: chunked",
        b"Connection: close",
        b"Connection: keep-alive",
        b"Connection: upgrade",
        b"Upgrade: websocket",
        b"Expect: 100-continue",
        b"X-Nul: a\x00b",
        b"X-Obs: \xff",
        b" folded",
        b"X-Space : 1",
    ]
)
Piece = tuple[bytes, list[bytes], bytes, int]
PIECES = st.lists(
    st.tuples(
        REQUEST_LINES,
        st.lists(HEADER_LINES, max_size=4),
        st.sampled_from([b"\r\n", b"\r\n", b"\n"]),
        st.sampled_from([0, 0, 5]),  # bytes cut off the end of the body
    ),
    min_size=1,
    max_size=3,
)


def assemble(served: Served, pieces: Sequence[Piece]) -> bytes:
    """The requests `pieces` describe, each with a freshly signed push's query and body."""
    data = b""
    for request_line, header_lines, end, cut in pieces:
        request = served.sign()
        body = request.body[: len(request.body) - cut]
        values = {
            b"{target}": served.target(request).encode(),
            b"{n}": b"%d" % len(body),
            b"{n+1}": b"%d" % (len(body) + 1),
        }
        lines = []
        for line in [request_line, *header_lines]:
            for name, value in values.items():
                line = line.replace(name, value)
            lines.append(line)
        data += end.join(lines) + end + end + body
    return data


@FUZZ
@given(pieces=PIECES)
async def test_assembled_requests_never_get_a_5xx(fuzzed: Served, pieces: list[Piece]) -> None:
    await _never_a_5xx_and_serving_after(fuzzed, assemble(fuzzed, pieces))
