"""Which requests the fast path answers itself: exactly the pushes WeChat sends, nothing else.

`POST <webhook path>?<query>` over HTTP/1.1 with exactly one Host, a Content-Length body no
larger than `max_body_bytes`, no Transfer-Encoding, Expect, Upgrade or Content-Encoding, a
Connection header absent or one of `close` and `keep-alive`, and at most `MAX_HEADERS` headers.
Every other request (the handshake, /healthz, /metrics, chunked or compressed bodies, HTTP/1.0,
a missing Host...) is aiohttp's, with its own answers: one server's rules for everything odd.
"""

from __future__ import annotations

from typing import NamedTuple

from bot.server.framing import RequestHead

MAX_HEADERS = 32  # WeChat sends about six
_REFUSED = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"})
_DECIDING = _REFUSED | {b"host", b"content-length", b"connection"}  # the rest do not matter


class FastRequest(NamedTuple):
    """A push the fast path answers: its raw query, its body's length, close after answering."""

    raw_query: bytes
    length: int
    close: bool


def fast_request(head: RequestHead, path: bytes, max_body: int) -> FastRequest | None:
    """`head` as a push the fast path answers, or None: aiohttp's to answer."""
    if head.method != b"POST" or head.version != "1.1" or len(head.headers) > MAX_HEADERS:
        return None
    target_path, _, query = head.target.partition(b"?")
    if target_path != path or b"#" in query:
        return None
    hosts = 0
    length: int | None = None
    close = False
    for raw_name, value in head.headers:
        name = raw_name.lower()
        if name not in _DECIDING:
            continue
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            length = int(value)  # llhttp let through only one, and only digits
        elif name == b"connection":
            token = value.strip().lower()
            if token not in (b"close", b"keep-alive"):
                return None
            close = close or token == b"close"
        else:
            return None  # Transfer-Encoding, Expect, Upgrade, Content-Encoding
    if hosts != 1 or length is None or length > max_body:
        return None  # aiohttp answers 400 for the Host, 413 for the length
    return FastRequest(query, length, close)
