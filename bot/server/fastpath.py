"""The webhook's lean HTTP/1.1 path: WeChat's pushes without aiohttp's per-request machinery.

WeChat's pushes are all alike: `POST <webhook path>?<signed query>` with a Content-Length body
on a keep-alive connection. `WebhookProtocol` answers exactly those itself: the head read by
llhttp (`bot.server.framing`), judged ours by `bot.server.policy`, the body sliced from the
buffer, the push queued, and the answer written with one `write`. The queue is answered in
arrival order, `MAX_BATCH` pushes per loop iteration, each step of the pipeline over the whole
batch (`bot.server.batch`).

Anything else (another path or method, a chunked body, `Expect`, an upgrade, HTTP/1.0, an
oversized, odd or malformed head) hands the connection, with every byte not yet answered, to
aiohttp's own protocol behind `bot.server.connections`' limits, which serves it from then on
exactly as `web.run_app` would: the handshake, /healthz, /metrics, 4xx answers.

Why it exists: aiohttp's request handling alone costs most of the per-message budget that the
performance target leaves (README "Performance"). Set `fast_path: false` to serve everything
through aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote_plus

from aiohttp.http import SERVER_SOFTWARE

from bot.server.batch import Pending, answer_batch
from bot.server.connections import DEFAULT_LIMITS, Limits, ProtocolFactory
from bot.server.framing import MAX_HEAD, Unread, read_head
from bot.server.policy import fast_request
from bot.webhook.pipeline import TEXT, Answer
from bot.webhook.services import Services

log = logging.getLogger(__name__)

MAX_QUEUED = 64  # answers queued before they are written anyway
_SWEEP_INTERVAL = 1.0
MAX_BATCH = 16  # pushes answered per loop iteration, in arrival order (README "Performance")


def parse_query(raw: bytes) -> dict[str, str]:
    """A request target's query as a dict: first value wins, `+` and %XX decoded (as yarl)."""
    text = raw.decode("ascii")  # llhttp admits only visible ASCII in a query
    escaped = "%" in text or "+" in text
    query: dict[str, str] = {}
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if escaped:
            name, value = unquote_plus(name), unquote_plus(value)
        if name not in query:
            query[name] = value
    return query


class FastServer:
    """The listening socket: fast pushes here, everything else through aiohttp's `fallback`."""

    def __init__(
        self,
        services: Services,
        fallback: ProtocolFactory,
        *,
        path: str,
        max_body: int,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.services = services
        self.fallback = fallback
        self.path = path
        self.raw_path = path.encode("ascii")
        self.max_body = max_body
        self.keepalive_timeout = limits.keepalive_timeout
        self.read_timeout = limits.read_timeout
        self.connections: set[WebhookProtocol] = set()
        self.closing = False
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._heads: dict[tuple[int, str, bool], bytes] = {}
        self._outbox: list[tuple[asyncio.Transport, bytes, bool]] = []
        self._pending: list[Pending] = []  # pushes waiting for their answer, in arrival order
        self._batching = False
        self._second = -1
        self._date = b""

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: WebhookProtocol(self), host, port, reuse_address=True, backlog=128
        )
        self._sweeper = loop.call_later(_SWEEP_INTERVAL, self._sweep)

    @property
    def sockets(self) -> tuple[object, ...]:
        """The listening sockets (for the port a test asked the OS for)."""
        return tuple(self._server.sockets) if self._server is not None else ()

    def head(self, status: int, content_type: str, length: int, close: bool) -> bytes:
        """The response head; all but Content-Length and Date cached."""
        key = (status, content_type, close)
        prefix = self._heads.get(key)
        if prefix is None:
            phrase = HTTPStatus(status).phrase
            prefix = (
                f"HTTP/1.1 {status} {phrase}\r\n"
                f"Content-Type: {content_type}; charset=utf-8\r\n"
                f"Server: {SERVER_SOFTWARE}\r\n" + ("Connection: close\r\n" if close else "")
            ).encode("ascii")
            self._heads[key] = prefix
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._date = formatdate(second, usegmt=True).encode("ascii")
        return b"%bContent-Length: %d\r\nDate: %b\r\n\r\n" % (prefix, length, self._date)

    @property
    def queued(self) -> int:
        """Answers made but not yet written."""
        return len(self._outbox)

    def enqueue(self, connection: WebhookProtocol, raw_query: bytes, body: bytes) -> None:
        """Queue a push; it is answered in arrival order, `MAX_BATCH` per loop iteration."""
        pending = self._pending
        if not pending and not self._batching:
            asyncio.get_running_loop().call_soon(self.serve_batch)
        pending.append(Pending(connection, raw_query, body, time.perf_counter()))

    def serve_batch(self, limit: int = MAX_BATCH) -> None:
        """Answer the first `limit` queued pushes (`bot.server.batch`), then write every answer.

        The rest wait for the next loop iteration, ahead of whatever is read meanwhile: a
        push waits for those that arrived before it and no others, so latencies stay even
        (bench/README.md, "Measured": the batch size against the p99).
        """
        pending = self._pending
        batch = pending[:limit]
        del pending[:limit]
        self._batching = True
        try:
            answer_batch(self.services, self.path, batch, parse_query, self.flush_now)
        except Exception:  # each push's failures are its own: this would be a bug in the batch
            log.exception("POST %s: unexpected failure in a batch", self.path)
            for pending_push in batch:
                connection = cast(WebhookProtocol, pending_push.asker)
                if connection.waiting_in_batch:
                    connection.fail()
        finally:
            self._batching = False
            self.flush_now()
            if pending:  # those left, and pipelined pushes queued as their turn came
                asyncio.get_running_loop().call_soon(self.serve_batch)

    def send(self, transport: asyncio.Transport, data: bytes, close: bool) -> None:
        """Queue an answer; the queue is written when the batch ends (else once this loop
        iteration's reads are done).

        Answering every ready connection first and then writing all the answers, instead of a
        write after each, lets the interpreter's and the kernel's work each run in one stretch,
        not interleaved per request (bench/README.md, "Measured").
        """
        outbox = self._outbox
        if not outbox and not self._batching:  # a batch writes its answers when it ends
            asyncio.get_running_loop().call_soon(self.flush_now)
        outbox.append((transport, data, close))
        if len(outbox) >= MAX_QUEUED:
            self.flush_now()  # bounded: many connections at once must not wait for them all

    def flush_now(self) -> None:
        """Write every queued answer now (before a hand-off, a close or a half-close)."""
        outbox, self._outbox = self._outbox, []
        for transport, data, close in outbox:
            if not transport.is_closing():
                transport.write(data)
                if close:
                    transport.close()

    def _sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        for connection in list(self.connections):
            connection.check_timeouts(now)
        if not self.closing:
            self._sweeper = asyncio.get_running_loop().call_later(_SWEEP_INTERVAL, self._sweep)

    async def shutdown(self, grace: float) -> None:
        """Stop listening, answer what is in flight (up to `grace` s), close the connections."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close_when_idle()
        self.serve_batch(len(self._pending))  # pushes already read, answered with a close
        ends = asyncio.get_running_loop().time() + max(0.0, grace)
        # Asked again until nothing waits: a push held for its batch's shared claim goes on
        # to wait for its handler once the claim is answered.
        while busy := {c.task for c in self.connections if c.task is not None}:
            remaining = ends - asyncio.get_running_loop().time()
            done, left = await asyncio.wait(busy, timeout=max(0.0, remaining))
            if left and not done:  # the grace is over
                for task in left:
                    task.cancel()  # the ledger sends a cancelled push's reply late
                await asyncio.wait(left, timeout=1.0)
                break
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


class WebhookProtocol(asyncio.Protocol):
    """One connection: pushes answered in order, one at a time; the rest goes to aiohttp."""

    def __init__(self, server: FastServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        # while a push's head is read and its body still arrives: the bytes that make the whole
        # request, the chunks read since, their length (joined once, not copied per read)
        self._need = 0
        self._more: list[bytes] = []
        self._have = 0
        # the push being answered, if it waits: its handler's task, or its batch's claim
        self.task: asyncio.Future[Any] | None = None
        self._queued = False  # a push of this connection waits in the server's batch
        self._close_after = False
        self._eof = False
        self._handed_to: asyncio.Protocol | None = None
        self._writing_paused = False
        self._reading_paused = False
        self._last = 0.0  # loop time of the last answer (or the connection's start)
        self._answers = 0
        self._answers_seen = 0
        self._partial_since = 0.0  # loop time an unfinished request started arriving, or 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._last = asyncio.get_running_loop().time()
        self._server.connections.add(self)
        if self._server.closing:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # A push still being answered runs on: its answer stays in the ledger for WeChat's retry.
        self._transport = None
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._need:  # a body still arriving: kept aside until the request is whole
            self._more.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            self._join_more()
        else:
            self._buf = self._buf + data if self._buf else data
        self._process()

    def _join_more(self) -> None:
        if self._need:
            self._buf = b"".join([self._buf, *self._more])
            self._more.clear()
            self._need = self._have = 0

    def eof_received(self) -> bool | None:
        # The client sent all it will: answer every complete request, then close.
        self._eof = True
        self._join_more()
        self._process()
        if self._handed_to is not None:  # aiohttp took the connection: its rules from now on
            return self._handed_to.eof_received()
        if self._idle and not self._writing_paused:
            self._server.flush_now()  # answers queued for this connection go out first
            return None  # the transport closes once they are written
        return True  # closed after the answers still to come (`_finish_if_eof`)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._process()
        self._finish_if_eof()

    # the server's sweep and shutdown

    def check_timeouts(self, now: float) -> None:
        """Close a connection idle past keep-alive, or sending a request too slowly."""
        if self._answers != self._answers_seen:
            self._answers_seen = self._answers
            self._last = now
        if not self._idle or self._transport is None:
            return
        server = self._server
        if self._writing_paused:
            if now - self._last > server.read_timeout:
                self.abort()  # not reading its answers
        elif self._buf:
            if self._partial_since and now - self._partial_since > server.read_timeout:
                self.abort()
        elif now - self._last > server.keepalive_timeout and not server.queued:
            self._transport.close()

    def close_when_idle(self) -> None:
        """Shutdown: close now if idle, else after the answer in flight."""
        self._close_after = True
        if self._idle and self._transport is not None:
            self._server.flush_now()
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()

    # requests

    @property
    def waiting_in_batch(self) -> bool:
        """A push of this connection waits in the server's batch for its answer."""
        return self._queued

    @property
    def _idle(self) -> bool:
        """No push of this connection is waiting for its answer."""
        return self.task is None and not self._queued

    def _process(self) -> None:
        """Serve what the buffer holds, one push at a time, then pause or resume reading."""
        if self._idle and not self._writing_paused:
            self._serve_buffer()
        transport = self._transport
        if transport is None:
            return  # closed, or handed to aiohttp
        # Reading waits while a full buffer cannot be served (a push in flight, or a client
        # not reading its answers); it resumes once the buffer is served down.
        full = len(self._buf) > self._server.max_body + MAX_HEAD
        if full and not self._reading_paused and (not self._idle or self._writing_paused):
            transport.pause_reading()
            self._reading_paused = True
        elif self._reading_paused and not full:
            transport.resume_reading()
            self._reading_paused = False

    def _serve_buffer(self) -> None:
        server = self._server
        while self._buf and self._transport is not None and not self._close_after:
            # RFC 9112 2.2: empty lines before a request line are skipped, as llhttp does
            buf = self._buf = self._buf.lstrip(b"\r\n")
            if not buf:
                self._wait_for_more()
                return
            head = read_head(buf)
            if head is Unread.INCOMPLETE:
                self._wait_for_more()
                return
            if head is Unread.MALFORMED:
                self._hand_off()  # aiohttp answers 400
                return
            request = fast_request(head, server.raw_path, server.max_body)
            if request is None:
                self._hand_off()
                return
            total = head.size + request.length
            if len(buf) < total:
                self._wait_for_more()
                self._need, self._have = total, len(buf)  # the rest is read without parsing
                return
            body = buf[head.size : total]
            self._buf = buf[total:]
            self._partial_since = 0.0
            if request.close:
                self._close_after = True
            self._queued = True
            server.enqueue(self, request.raw_query, body)
            return

    def _wait_for_more(self) -> None:
        if not self._partial_since:
            self._partial_since = asyncio.get_running_loop().time()

    # bot.batch.Asker: the batch's answers

    def respond(self, answer: Answer) -> None:
        """Write the answer to the push waiting for it; serve what came after it."""
        self._queued = False
        self.task = None
        self._write(answer)
        if self._buf or self._eof or self._reading_paused:  # else there is nothing to serve
            self._process()
            self._finish_if_eof()

    def fail(self) -> None:
        """A bug answered the queued push: 500, and the connection closes."""
        self._queued = False
        self.task = None
        self._fail()

    def follow(self, task: asyncio.Future[Answer]) -> None:
        """The queued push's handler waits for something: its answer comes from `task`."""
        self._queued = False
        self.task = task
        task.add_done_callback(self._answered)

    def hold(self, task: asyncio.Future[None]) -> None:
        """The queued push's batch waits for its shared claim: `respond` (or `fail`, or
        `follow`) comes before `task` is done."""
        self._queued = False
        self.task = task
        task.add_done_callback(self._released)

    def _released(self, task: asyncio.Future[None]) -> None:
        if self.task is not task:
            return  # answered (or following its handler's task) meanwhile
        self.task = None
        if task.cancelled():
            self.abort()  # shutdown past its grace: the ledger sends the reply late
            return
        exc = task.exception()
        log.error(
            "POST %s: a batch ended without answering a push", self._server.path, exc_info=exc
        )
        self._fail()

    def _answered(self, task: asyncio.Future[Answer]) -> None:
        self.task = None
        if task.cancelled():
            self.abort()  # shutdown past its grace: the ledger sends the reply late
            return
        exc = task.exception()
        if exc is not None:
            log.error("POST %s: unexpected failure", self._server.path, exc_info=exc)
            self._fail()
            return
        self.respond(task.result())

    def _finish_if_eof(self) -> None:
        transport = self._transport
        if self._eof and self._idle and not self._writing_paused and transport is not None:
            self._server.flush_now()
            transport.close()

    def _fail(self) -> None:
        # Nothing a request carries gets here (handle_push contains its failures): a bug.
        self._close_after = True
        self._write(Answer(500, TEXT, "internal error\n"))

    def _write(self, answer: Answer) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status, content_type, text = answer
        body = text.encode()
        close = self._close_after
        server = self._server
        server.send(transport, server.head(status, content_type, len(body), close) + body, close)
        self._answers += 1  # the sweep turns this into `_last` (a second's precision is plenty)

    def _hand_off(self) -> None:
        """aiohttp's protocol takes the connection, and every byte not yet answered."""
        transport = self._transport
        if transport is None:
            return
        self._server.flush_now()  # answers already made go out before aiohttp's
        self._server.connections.discard(self)
        self._transport = None
        protocol = self._handed_to = self._server.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        buf, self._buf = self._buf, b""
        if buf:
            protocol.data_received(buf)
