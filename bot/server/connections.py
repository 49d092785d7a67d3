"""The connection limits, kept on every connection aiohttp serves (and by the fast path itself).

A request must arrive whole within `read_timeout`; an idle keep-alive connection closes after
`keepalive_timeout`; a client that stops reading its answers is cut off once its answers have
waited `read_timeout`. aiohttp has no limit on how long a head or a body may take to arrive, so
its protocol runs behind `GuardedConnection`, which follows the requests' framing with llhttp
(the same parser, with the same leniencies, that aiohttp uses) to know when one has begun and
when it has arrived whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

log = logging.getLogger(__name__)

READ_TIMEOUT = 30.0  # a request must arrive whole within this (slow senders are cut off)
KEEPALIVE_TIMEOUT = 75.0  # idle keep-alive connections close after this (aiohttp's default)

ProtocolFactory = Callable[[], asyncio.Protocol]


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a request may take to arrive, and an idle connection may stay open (seconds)."""

    read_timeout: float = READ_TIMEOUT
    keepalive_timeout: float = KEEPALIVE_TIMEOUT


DEFAULT_LIMITS = Limits()


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, cut off when a request arrives too slowly or the
    client stops reading its answers."""

    def __init__(self, inner: asyncio.Protocol, limits: Limits) -> None:
        self._inner = inner
        self._limits = limits
        self._transport: asyncio.Transport | None = None
        self._parser: HttpRequestParser | None = self._new_parser()
        self._arriving: asyncio.TimerHandle | None = None  # a request has begun to arrive
        self._stalled: asyncio.TimerHandle | None = None  # the client does not read

    def _new_parser(self) -> HttpRequestParser:
        parser = HttpRequestParser(self)
        # aiohttp's own C parser is llhttp with these leniencies: follow what it accepts
        parser.set_dangerous_leniencies(
            lenient_headers=True,
            lenient_optional_cr_before_lf=True,
            lenient_spaces_after_chunk_size=True,
        )
        return parser

    # asyncio.Protocol, passed on to aiohttp's

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._follow(data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._arriving, self._stalled):
            if timer is not None:
                timer.cancel()
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._stalled is None:
            self._stalled = self._cut_after(self._limits.read_timeout)
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        self._inner.resume_writing()

    # llhttp's callbacks: where requests begin and end

    def on_message_begin(self) -> None:
        if self._arriving is None:
            self._arriving = self._cut_after(self._limits.read_timeout)

    def on_message_complete(self) -> None:
        if self._arriving is not None:
            self._arriving.cancel()
            self._arriving = None

    def _follow(self, data: bytes) -> None:
        if self._parser is None:
            return
        try:
            self._parser.feed_data(data)
        except (HttpParserError, HttpParserUpgrade):
            # Not HTTP this parser can follow (aiohttp answers 400 and closes), or an upgrade
            # (aiohttp declines it): the connection has `read_timeout` left, from now or from
            # the start of the request that is still arriving.
            self._parser = None
            self.on_message_begin()

    def _cut_after(self, seconds: float) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(seconds, self._cut)

    def _cut(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def guarded(factory: ProtocolFactory, limits: Limits) -> ProtocolFactory:
    """`factory`'s protocols (aiohttp's), each behind a `GuardedConnection`."""
    return lambda: GuardedConnection(factory(), limits)


class BadRequestLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, with a request it cannot parse logged as one WARNING line.

    aiohttp logs each malformed request with a full ERROR traceback (and a bad first method at
    DEBUG); those are what a request carries, not failures of the bot. Anything else it logs
    (a handler's unexpected exception) stays as it is.
    """

    def __init__(self) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        if not self._bad_request(args, kwargs):
            super().exception(msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        if not self._bad_request(args, kwargs):
            super().debug(msg, *args, **kwargs)

    def _bad_request(self, args: tuple[object, ...], kwargs: dict[str, Any]) -> bool:
        exc = kwargs.get("exc_info")
        if isinstance(exc, RequestPayloadError):
            # the rest of a body aiohttp reads after answering, and cannot decode (a gzip that
            # is not): that request already has its answer and its line
            log.debug("undecodable body after the answer: %s", exc)
            return True
        if not isinstance(exc, HttpProcessingError):
            return False
        peer = args[0] if args else "a client"  # "Error handling request from %s", remote
        what = (exc.message or type(exc).__name__).strip().splitlines()[0].rstrip(":")
        log.warning("bad request from %s (%d): %s", peer, exc.code, what)
        return True


class AiohttpServer:
    """The listening socket when every request goes through aiohttp (`fast_path: false`)."""

    def __init__(self, fallback: ProtocolFactory) -> None:
        self.fallback = fallback
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.fallback, host, port, reuse_address=True, backlog=128
        )

    @property
    def sockets(self) -> tuple[object, ...]:
        """The listening sockets (for the port a test asked the OS for)."""
        return tuple(self._server.sockets) if self._server is not None else ()

    async def shutdown(self, grace: float) -> None:
        """Stop listening; the runner's cleanup then finishes aiohttp's connections."""
        if self._server is not None:
            self._server.close()
