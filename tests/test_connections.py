"""The connection limits on both HTTP paths (`bot.server.connections`), over loopback sockets.

A request must arrive whole within the read timeout, an idle keep-alive connection closes, a
client that stops reading is cut off: on connections the fast path hands to aiohttp and on every
connection with `fast_path: false`. The limits are a fraction of a second here; nothing asserts
how long anything took, only what was closed and what was not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from listening_bots import WAIT, ListeningBot, listening_bot, read_until_closed

from bot.server.connections import Limits
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_TOKEN
from bot.testing.simulator import build_xml, sign_request, text_fields

SHORT = Limits(read_timeout=0.3, keepalive_timeout=0.3)
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

both_paths = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "aiohttp"])


@contextlib.asynccontextmanager
async def bot(
    fake_wechat: FakeWeChat, fake_api: str, tmp_path: Path, fast_path: bool, limits: Limits
) -> AsyncIterator[ListeningBot]:
    async with listening_bot(
        fake_wechat, fake_api, tmp_path, fast_path=fast_path, limits=limits
    ) as listening:
        yield listening


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)


@both_paths
@pytest.mark.parametrize(
    "partial",
    [
        b"\nGET /healthz HTTP/1.1\r\nX-A: a",  # the issue's: a leading empty line, then a half head
        b"GET /healthz HTTP/1.1\r\nX-A: a",
        b"POST /wechat HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n<xml>",
        b"POST /wechat HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<xml>\r\n",
    ],
    ids=["lf-then-half-head", "half-head", "half-body", "unfinished-chunks"],
)
async def test_request_that_never_arrives_whole_is_cut_off(
    fake_wechat: FakeWeChat, fake_api: str, tmp_path: Path, fast_path: bool, partial: bytes
) -> None:
    limits = Limits(read_timeout=0.3, keepalive_timeout=60.0)
    async with bot(fake_wechat, fake_api, tmp_path, fast_path, limits) as listening:
        reader, writer = await _open(listening.port)
        try:
            writer.write(partial)
            answered = await read_until_closed(reader)  # closed; the query's refusal may come first
            assert answered == b"" or answered.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        finally:
            writer.close()


@both_paths
async def test_idle_keep_alive_connection_handed_to_aiohttp_is_closed(
    fake_wechat: FakeWeChat, fake_api: str, tmp_path: Path, fast_path: bool
) -> None:
    limits = Limits(read_timeout=60.0, keepalive_timeout=0.3)
    async with bot(fake_wechat, fake_api, tmp_path, fast_path, limits) as listening:
        reader, writer = await _open(listening.port)
        try:
            writer.write(HEALTHZ)
            answered = await read_until_closed(reader)
            assert answered.startswith(b"HTTP/1.1 200 OK\r\n")  # answered, then closed when idle
        finally:
            writer.close()


@both_paths
async def test_requests_arriving_whole_keep_the_connection(
    fake_wechat: FakeWeChat, fake_api: str, tmp_path: Path, fast_path: bool
) -> None:
    async with bot(fake_wechat, fake_api, tmp_path, fast_path, Limits(1.0, 60.0)) as listening:
        reader, writer = await _open(listening.port)
        try:
            for _ in range(4):  # longer in all than the read timeout, each request whole
                writer.write(HEALTHZ)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
                assert head.startswith(b"HTTP/1.1 200 OK\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await asyncio.wait_for(reader.readexactly(length), WAIT)
                await asyncio.sleep(0.4)
            assert not reader.at_eof()
        finally:
            writer.close()


@both_paths
async def test_client_that_stops_reading_its_answers_is_cut_off(
    fake_wechat: FakeWeChat, fake_api: str, tmp_path: Path, fast_path: bool
) -> None:
    async with bot(fake_wechat, fake_api, tmp_path, fast_path, SHORT) as listening:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", listening.port))
            metrics = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            client.sendall(metrics * 300)  # hundreds of kB of answers, never read
            await _eventually(lambda: listening.aiohttp_connections == 1)
            await _eventually(lambda: listening.aiohttp_connections == 0)
            await _eventually(lambda: _reset_or_closed(client))


async def _eventually(condition: object, timeout: float = WAIT) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _reset_or_closed(client: socket.socket) -> bool:
    """The server dropped the connection: what is left to read ends in a reset or a close."""
    client.setblocking(False)
    try:
        while chunk := client.recv(1 << 20):
            del chunk
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


@both_paths
@pytest.mark.parametrize(
    ("request_bytes", "what"),
    [
        (b"GARBAGE\r\n\r\n", "Invalid method"),
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", "Invalid header value char"),
        (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n", "Got more"),
    ],
    ids=["bad-method", "nul-in-header", "header-too-long"],
)
async def test_malformed_request_is_one_warning_line_with_the_peer(
    fake_wechat: FakeWeChat,
    fake_api: str,
    tmp_path: Path,
    fast_path: bool,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    what: str,
) -> None:
    async with bot(fake_wechat, fake_api, tmp_path, fast_path, Limits()) as listening:
        caplog.clear()
        caplog.set_level("DEBUG")
        reader, writer = await _open(listening.port)
        try:
            writer.write(request_bytes)
            answered = await read_until_closed(reader)
        finally:
            writer.close()
    assert answered.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    about_it = [r for r in caplog.records if r.exc_info or "request" in r.getMessage().lower()]
    assert len(about_it) == 1, [(r.levelname, r.getMessage()) for r in about_it]
    [line] = about_it
    assert line.levelname == "WARNING" and line.exc_info is None
    assert "bad request from 127.0.0.1" in line.getMessage()
    assert what in line.getMessage()


@both_paths
async def test_compressed_push_is_refused_with_one_warning_line(
    fake_wechat: FakeWeChat,
    fake_api: str,
    tmp_path: Path,
    fast_path: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    signed = sign_request(TEST_TOKEN, build_xml(text_fields("o_gzip", "你好")))
    head = (
        f"POST /wechat?{urlencode(signed.params)} HTTP/1.1\r\nHost: a\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(signed.body)}\r\n\r\n"
    )
    async with bot(fake_wechat, fake_api, tmp_path, fast_path, Limits()) as listening:
        caplog.clear()
        reader, writer = await _open(listening.port)
        try:
            writer.write(head.encode() + signed.body + HEALTHZ)
            answered = await asyncio.wait_for(reader.readuntil(b"compressed bodies"), WAIT)
            await asyncio.sleep(0.2)  # aiohttp reads the rest of the body after answering
        finally:
            writer.close()
    assert answered.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [("WARNING", "POST /wechat refused (400): compressed bodies are not accepted")]
